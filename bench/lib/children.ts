/**
 * Child processes of a benchmark run: every child is started in its own process group (so nginx
 * workers and node's helpers die with it), optionally pinned to one CPU with `taskset -c`, registered,
 * and killed by `killAll()` (SIGTERM to the group, SIGKILL after 1 s). `installCleanup()` runs
 * `killAll()` on exit, SIGINT, SIGTERM and uncaught errors, so no child outlives the bench.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** Last ~8 KiB of stdout+stderr, for error messages. */
  output(): string;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** Stops this child's process group; resolves once it exited (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<Child>();
let pinningAvailable: boolean | undefined;

/** True when `taskset` exists and the machine has at least 2 CPUs (core 0 and core 1). */
export function canPin(cpus: number): boolean {
  pinningAvailable ??= spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
  return pinningAvailable && cpus >= 2;
}

/** Pins the current process (every thread) to `cpu`, so the orchestrator stays off the proxy's core. */
export function pinSelf(cpu: number): void {
  spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

export interface StartOptions {
  /** CPU to pin to with `taskset -c`; undefined = unpinned. */
  readonly cpu?: number | undefined;
  readonly env?: NodeJS.ProcessEnv;
  /** Keep stdout/stderr (tail only). Default true; false sends them to /dev/null. */
  readonly capture?: boolean;
  /** Open an IPC channel (child.process.send / 'message'). Default false. */
  readonly ipc?: boolean;
}

export function start(name: string, command: string, args: readonly string[], options: StartOptions = {}): Child {
  const argv =
    options.cpu === undefined ? [command, ...args] : ['taskset', '-c', String(options.cpu), command, ...args];
  const capture = options.capture ?? true;
  const proc = spawn(argv[0]!, argv.slice(1), {
    detached: true,
    stdio: [
      'ignore',
      capture ? 'pipe' : 'ignore',
      capture ? 'pipe' : 'ignore',
      ...(options.ipc === true ? ['ipc' as const] : []),
    ],
    env: options.env ?? process.env,
  });
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-8192);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<number | string>((resolve) => {
    proc.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    proc.once('error', (error) => {
      tail += `\nspawn error: ${error.message}`;
      resolve('spawn-error');
    });
  });
  const pid = proc.pid ?? -1;
  const child: Child = {
    name,
    pid,
    process: proc,
    output: () => tail,
    exited,
    stop: async (graceMs = 1000) => {
      if (proc.exitCode === null && proc.signalCode === null && pid > 0) {
        signalGroup(pid, 'SIGTERM');
        const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      // The leader may exit before its group (nginx workers): make sure nothing of it is left.
      signalGroup(pid, 'SIGKILL');
      live.delete(child);
    },
  };
  live.add(child);
  exited.then(() => {
    if (proc.exitCode !== null || proc.signalCode !== null) live.delete(child);
  });
  return child;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Group already gone.
  }
}

/** Stops every registered child. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((c) => c.stop(1000)));
}

let installed = false;

/** Kills every child when the bench ends in any way. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  const syncKill = () => {
    for (const c of live) signalGroup(c.pid, 'SIGKILL');
  };
  process.on('exit', syncKill);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping children\n`);
      void killAll().finally(() => process.exit(130));
    });
  }
  process.on('uncaughtException', (error) => {
    process.stderr.write(`bench: ${error.stack ?? error.message}\n`);
    void killAll().finally(() => process.exit(1));
  });
  process.on('unhandledRejection', (error) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    void killAll().finally(() => process.exit(1));
  });
}

/** utime+stime of `pid` and all its descendants, in seconds (from /proc/PID/stat, CLK_TCK ticks). */
let clockTicks: number | undefined;

export function cpuSeconds(pid: number): number {
  clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
  const ticks = clockTicks;
  const stats = new Map<number, { ppid: number; cpu: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${entry}/stat`, 'latin1');
    } catch {
      continue;
    }
    // Fields after the parenthesised command (which may contain spaces): state is field 3.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(rest[1]);
    const cpu = Number(rest[11]) + Number(rest[12]); // fields 14 (utime) and 15 (stime)
    stats.set(Number(entry), { ppid, cpu });
  }
  let total = 0;
  const todo = [pid];
  const seen = new Set<number>();
  while (todo.length > 0) {
    const p = todo.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    total += stats.get(p)?.cpu ?? 0;
    for (const [child, s] of stats) if (s.ppid === p) todo.push(child);
  }
  return total / ticks;
}
