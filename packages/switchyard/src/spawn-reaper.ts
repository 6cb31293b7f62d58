/**
 * The `--spawn` workers' dead-man switch: they must not outlive switchyard, even when it is SIGKILLed
 * or crashes hard (no exit handler runs then). Each worker leads its own process group, so
 * `process.kill(-pid)` on a graceful stop reaches everything CMD starts; this covers the ungraceful
 * case, without native code.
 *
 * Contract:
 *  - One reaper per spawner: a POSIX `sh` script (a few hundred KB, not a second Node), started
 *    detached (its own process group, so a terminal's Ctrl-C reaches switchyard, which stops gracefully,
 *    and never the reaper; it ignores SIGHUP and SIGINT too). Its stdin is a pipe whose only writer is
 *    switchyard (the parent's end is close-on-exec, so workers do not hold it open).
 *  - Lines: `+PGID` when a worker starts, `-PGID` once that group is empty (checked when the leader
 *    exits, then every `probeMs` until no member is left). A group id cannot be recycled while any
 *    member lives, so a recorded group is always ours; a forgotten one is never signalled.
 *  - End of the pipe (switchyard died, or `close()`): SIGTERM to every still-recorded group, then
 *    SIGKILL to those still alive after `graceSeconds` (5). No recorded group left → it exits at once.
 *  - Limit: a process that leaves its group (setsid/setpgid, e.g. a daemonizing server) escapes, as it
 *    escapes the graceful stop.
 *  - A reaper that cannot start, or dies, is logged and changes nothing else: workers are served and
 *    stopped gracefully as before, only the SIGKILL guarantee is lost.
 *  - `close()` (after the workers were stopped) ends the pipe and resolves once the reaper exited
 *    (it is SIGKILLed if it is still there `graceSeconds + 5` s later); safe twice.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger } from 'pino';

export interface SpawnReaperOptions {
  readonly logger: Logger;
  /** Shell that runs the reaper script. Default '/bin/sh'. */
  readonly shell?: string;
  /** SIGTERM → SIGKILL grace after the pipe ends, whole seconds. Default 5. */
  readonly graceSeconds?: number;
  /** How often a group whose leader exited is checked for remaining members, ms. Default 1000. */
  readonly probeMs?: number;
}

/**
 * The reaper program; `$1` is the grace in seconds. Group ids are kept in a space-delimited list
 * (` 12 34 `); ids ≤ 1 and malformed lines are ignored, so it can never signal its own group or init.
 */
export const REAPER_SCRIPT = `trap '' HUP INT
grace=\${1:-5}
groups=' '
while IFS= read -r line; do
  id=\${line#?}
  case $id in ''|*[!0-9]*) continue ;; esac
  [ "$id" -gt 1 ] || continue
  case $line in
    +*) groups="$groups$id " ;;
    -*) case $groups in *" $id "*) groups="\${groups%% $id *} \${groups#* $id }" ;; esac ;;
  esac
done
live=
for id in $groups; do kill -s TERM -- "-$id" 2>/dev/null && live=1; done
[ -n "$live" ] || exit 0
waited=0
while [ "$waited" -lt "$grace" ]; do
  sleep 1
  waited=$((waited + 1))
  live=
  for id in $groups; do kill -s 0 -- "-$id" 2>/dev/null && live=1; done
  [ -n "$live" ] || exit 0
done
for id in $groups; do kill -s KILL -- "-$id" 2>/dev/null; done
exit 0
`;

export class SpawnReaper {
  private readonly logger: Logger;
  private readonly options: SpawnReaperOptions;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  /** Groups whose leader exited while members remained: forgotten once empty. */
  private readonly lingering = new Set<number>();
  private probeTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: SpawnReaperOptions) {
    this.options = options;
    this.logger = options.logger.child({ component: 'spawn-reaper' });
  }

  /** The reaper's pid while it runs, else undefined. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the reaper; a failure is logged, never thrown. Call before the first `track()`. */
  start(): void {
    if (this.child !== undefined || this.closing !== undefined) return;
    const grace = String(this.options.graceSeconds ?? 5);
    let child: ChildProcess;
    try {
      child = spawn(this.options.shell ?? '/bin/sh', ['-c', REAPER_SCRIPT, 'switchyard-reaper', grace], {
        detached: true,
        stdio: ['pipe', 'ignore', 'ignore'],
      });
    } catch (error) {
      this.logger.error({ err: error }, 'reaper could not be started: workers would outlive a killed switchyard');
      return;
    }
    this.child = child;
    child.stdin?.on('error', () => undefined); // a dead reaper is reported by 'exit' / 'error'
    this.exited = new Promise<void>((resolve) => {
      const gone = (): void => {
        if (this.child === child) this.child = undefined;
        resolve();
      };
      child.once('error', (error) => {
        this.logger.error({ err: error }, 'reaper could not be started: workers would outlive a killed switchyard');
        gone();
      });
      child.once('exit', (code, signal) => {
        if (this.closing === undefined) {
          this.logger.warn({ code, signal }, 'reaper exited: workers would outlive a killed switchyard');
        }
        gone();
      });
    });
    // The reaper must never keep switchyard alive; close() re-references it while waiting.
    child.unref();
    this.logger.debug({ pid: child.pid }, 'reaper started');
  }

  /** Records a worker's process group (its leader's pid): the reaper stops it if switchyard dies. */
  track(pgid: number): void {
    this.send(`+${pgid}`);
  }

  /** The group's leader exited: the group is forgotten as soon as no member is left. */
  release(pgid: number): void {
    if (!groupAlive(pgid)) {
      this.send(`-${pgid}`);
      return;
    }
    this.lingering.add(pgid);
    this.probeTimer ??= setInterval(() => this.probeLingering(), this.options.probeMs ?? 1000).unref();
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.probeLingering();
    if (this.probeTimer !== undefined) clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    const child = this.child;
    if (child === undefined) return;
    child.ref();
    child.stdin?.end();
    const limit = setTimeout(() => child.kill('SIGKILL'), ((this.options.graceSeconds ?? 5) + 5) * 1000);
    await this.exited;
    clearTimeout(limit);
  }

  private probeLingering(): void {
    for (const pgid of this.lingering) {
      if (groupAlive(pgid)) continue;
      this.lingering.delete(pgid);
      this.send(`-${pgid}`);
    }
    if (this.lingering.size === 0 && this.probeTimer !== undefined) {
      clearInterval(this.probeTimer);
      this.probeTimer = undefined;
    }
  }

  private send(line: string): void {
    const stdin = this.child?.stdin;
    if (stdin === undefined || stdin === null || stdin.destroyed || stdin.writableEnded) return;
    stdin.write(`${line}\n`);
  }
}

/** True while any process of the group exists (EPERM: it exists, owned by someone else). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
