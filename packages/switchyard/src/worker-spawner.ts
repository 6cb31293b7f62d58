/**
 * Embedded mode (`--spawn CMD --processes N`): runs N copies of CMD, each on its own endpoint, and
 * tells the owner when a worker becomes routable and when it is gone.
 *
 * Per worker:
 *  - endpoint: a unix socket `<tmpdir>/worker-<i>.sock` when CMD uses `{socket}` (same path on every
 *    restart, a stale file is removed first), else a fresh free TCP port of 127.0.0.1 on every start;
 *  - command: `/bin/sh -c CMD` with `{port}`, `{socket}` and `{worker}` replaced, environment PORT,
 *    SWITCHYARD_SOCKET (unix only) and SWITCHYARD_WORKER (0..N-1) added; its own process group, so
 *    stopping it reaches the processes CMD starts; that group is recorded with the spawner's reaper
 *    (spawn-reaper.ts), which stops it if switchyard dies without stopping it (SIGKILL, hard crash);
 *  - ids: with `--uid`/`--gid` (`credentials`) the worker is spawned with those ids (as root, before
 *    switchyard itself drops them; a restart by the unprivileged switchyard asks for its own ids) and
 *    the socket directory is owned by them, so the app can bind there;
 *  - ready: the endpoint accepts a connection (polled every 50 ms) → `onReady`; not ready within
 *    `readyTimeoutMs` (30 s) → killed and restarted like a crash;
 *  - exit: `onGone` (if it was ready), then a restart after RestartBackoff's delay (100 ms doubling to
 *    10 s, reset after 30 s of healthy run; restart-backoff.ts).
 *
 * Lifecycle: constructor does no I/O; `start()` launches every worker and resolves once each one was
 * ready or has exited at least once; `close()` stops restarts, sends SIGTERM to every worker's process
 * group, SIGKILL after `graceMs` (10 s), resolves when all exited and the reaper is gone (it is told
 * first, so it signals only groups that still have members); safe twice. Time (clock and
 * scheduler) is injected so the backoff is tested without sleeping.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { UpstreamTarget } from '@switchyard/router';
import type { Logger } from 'pino';
import { RestartBackoff, type RestartBackoffOptions } from './restart-backoff.js';
import { SpawnReaper, type SpawnReaperOptions } from './spawn-reaper.js';
import type { SpawnConfig } from './uwsgi-compat-options.js';

export interface WorkerEndpoint {
  readonly index: number;
  /** Node address: `127.0.0.1:PORT` or the socket path. */
  readonly address: string;
  readonly target: UpstreamTarget;
  readonly protocol: 'http' | 'uwsgi';
  readonly pid: number;
}

export interface Scheduler {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface WorkerSpawnerOptions {
  readonly config: SpawnConfig;
  readonly onReady: (worker: WorkerEndpoint) => void;
  readonly onGone: (worker: WorkerEndpoint) => void;
  readonly logger: Logger;
  /** ms clock. Default Date.now. */
  readonly clock?: () => number;
  /** Timers for restart delays. Default the global timers. */
  readonly scheduler?: Scheduler;
  readonly backoff?: RestartBackoffOptions;
  /** SIGTERM → SIGKILL grace on close, ms. Default 10_000. */
  readonly graceMs?: number;
  /** Longest time a started worker may take to accept connections, ms. Default 30_000. */
  readonly readyTimeoutMs?: number;
  /** Where workers' stdout/stderr go. Default 'inherit'. */
  readonly stdio?: 'inherit' | 'ignore';
  /** `--uid`/`--gid`: the ids workers run as and own the socket directory with; undefined = inherit. */
  readonly credentials?: { readonly uid: number | undefined; readonly gid: number | undefined } | undefined;
  /** Reaper settings (spawn-reaper.ts); defaults: /bin/sh, 5 s grace. */
  readonly reaper?: Omit<SpawnReaperOptions, 'logger'>;
}

interface WorkerSlot {
  readonly index: number;
  readonly backoff: RestartBackoff;
  child: ChildProcess | undefined;
  endpoint: WorkerEndpoint | undefined;
  ready: boolean;
  startedAt: number;
  restartTimer: unknown;
  readyTimer: NodeJS.Timeout | undefined;
  exited: Promise<void>;
  /** Settles start(): first readiness or first exit. */
  settle: (() => void) | undefined;
  restarts: number;
}

const POLL_MS = 50;

export class WorkerSpawner {
  private readonly options: WorkerSpawnerOptions;
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly scheduler: Scheduler;
  private readonly slots: WorkerSlot[] = [];
  private readonly reaper: SpawnReaper;
  private dir: string | undefined;
  private stopping = false;
  private closing: Promise<void> | undefined;

  constructor(options: WorkerSpawnerOptions) {
    this.options = options;
    this.logger = options.logger.child({ component: 'spawn' });
    this.clock = options.clock ?? Date.now;
    this.scheduler = options.scheduler ?? {
      setTimeout: (cb, ms) => setTimeout(cb, ms),
      clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
    };
    this.reaper = new SpawnReaper({ ...options.reaper, logger: options.logger });
  }

  /** Launches every worker; resolves once each was ready or exited once. */
  async start(): Promise<void> {
    if (this.slots.length > 0 || this.stopping) return;
    this.reaper.start();
    const ids = this.options.credentials;
    if (this.options.config.transport === 'unix') {
      this.dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-spawn-'));
      if (ids !== undefined) chownSync(this.dir, ids.uid ?? -1, ids.gid ?? -1);
    }
    const settled: Promise<void>[] = [];
    for (let i = 0; i < this.options.config.processes; i++) {
      const slot: WorkerSlot = {
        index: i,
        backoff: new RestartBackoff(this.options.backoff),
        child: undefined,
        endpoint: undefined,
        ready: false,
        startedAt: 0,
        restartTimer: undefined,
        readyTimer: undefined,
        exited: Promise.resolve(),
        settle: undefined,
        restarts: 0,
      };
      this.slots.push(slot);
      settled.push(new Promise<void>((resolve) => (slot.settle = resolve)));
      await this.launch(slot);
    }
    await Promise.all(settled);
  }

  /** Workers currently routable. */
  readyWorkers(): WorkerEndpoint[] {
    return this.slots.flatMap((s) => (s.ready && s.endpoint !== undefined ? [s.endpoint] : []));
  }

  /** Restarts so far, per worker index. */
  restartCounts(): number[] {
    return this.slots.map((s) => s.restarts);
  }

  /** The restart delay each worker waits (or last waited), ms. */
  backoffDelays(): number[] {
    return this.slots.map((s) => s.backoff.current);
  }

  private async launch(slot: WorkerSlot): Promise<void> {
    slot.restartTimer = undefined;
    if (this.stopping) return;
    const config = this.options.config;
    let target: UpstreamTarget;
    let address: string;
    if (config.transport === 'unix') {
      address = path.join(this.dir!, `worker-${slot.index}.sock`);
      rmSync(address, { force: true });
      target = { kind: 'unix', path: address };
    } else {
      const port = await freePort();
      address = `127.0.0.1:${port}`;
      target = { kind: 'tcp', host: '127.0.0.1', port };
    }
    if (this.stopping) return;
    const port = target.kind === 'tcp' ? String(target.port) : '';
    const command = config.command
      .replaceAll('{port}', port)
      .replaceAll('{socket}', target.kind === 'unix' ? target.path : '')
      .replaceAll('{worker}', String(slot.index));
    const env: NodeJS.ProcessEnv = { ...process.env, SWITCHYARD_WORKER: String(slot.index) };
    if (target.kind === 'tcp') env.PORT = port;
    else env.SWITCHYARD_SOCKET = target.path;
    const stdio = this.options.stdio ?? 'inherit';
    const ids = this.options.credentials;
    const child = spawn('/bin/sh', ['-c', command], {
      env,
      detached: true,
      stdio: ['ignore', stdio, stdio],
      ...(ids?.uid === undefined ? {} : { uid: ids.uid }),
      ...(ids?.gid === undefined ? {} : { gid: ids.gid }),
    });
    if (child.pid !== undefined) this.reaper.track(child.pid);
    slot.child = child;
    slot.ready = false;
    slot.startedAt = this.clock();
    slot.endpoint = { index: slot.index, address, target, protocol: config.protocol, pid: child.pid ?? 0 };
    slot.exited = new Promise<void>((resolve) => {
      child.once('error', (error) => {
        this.logger.error({ worker: slot.index, err: error }, 'worker could not be started');
        resolve();
        this.handleExit(slot, child, null, null);
      });
      child.once('exit', (code, signal) => {
        resolve();
        this.handleExit(slot, child, code, signal);
      });
    });
    this.logger.info({ worker: slot.index, pid: child.pid, address }, 'worker started');
    this.pollReady(slot, child);
  }

  private pollReady(slot: WorkerSlot, child: ChildProcess): void {
    const deadline = this.clock() + (this.options.readyTimeoutMs ?? 30_000);
    const attempt = (): void => {
      slot.readyTimer = undefined;
      if (slot.child !== child || this.stopping) return;
      const endpoint = slot.endpoint!;
      const t = endpoint.target;
      const socket = t.kind === 'tcp' ? net.connect(t.port, t.host) : net.connect(t.path);
      socket.once('connect', () => {
        socket.destroy();
        if (slot.child !== child || this.stopping) return;
        slot.ready = true;
        this.logger.info({ worker: slot.index, address: endpoint.address }, 'worker ready');
        this.options.onReady(endpoint);
        slot.settle?.();
        slot.settle = undefined;
      });
      socket.once('error', () => {
        socket.destroy();
        if (slot.child !== child || this.stopping) return;
        if (this.clock() > deadline) {
          this.logger.error({ worker: slot.index }, 'worker did not accept connections in time: restarting it');
          killGroup(child, 'SIGKILL');
          return;
        }
        slot.readyTimer = setTimeout(attempt, POLL_MS);
      });
    };
    attempt();
  }

  private handleExit(slot: WorkerSlot, child: ChildProcess, code: number | null, signal: string | null): void {
    if (slot.child !== child) return;
    slot.child = undefined;
    if (slot.readyTimer !== undefined) clearTimeout(slot.readyTimer);
    slot.readyTimer = undefined;
    const endpoint = slot.endpoint!;
    if (endpoint.pid > 0) this.reaper.release(endpoint.pid);
    if (slot.ready) {
      slot.ready = false;
      this.options.onGone(endpoint);
    }
    slot.settle?.();
    slot.settle = undefined;
    if (this.stopping) return;
    const delay = slot.backoff.next(slot.startedAt, this.clock());
    this.logger.warn({ worker: slot.index, pid: endpoint.pid, code, signal, restartInMs: delay }, 'worker exited');
    slot.restarts++;
    slot.restartTimer = this.scheduler.setTimeout(() => void this.launch(slot), delay);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    for (const slot of this.slots) {
      if (slot.restartTimer !== undefined) this.scheduler.clearTimeout(slot.restartTimer);
      slot.restartTimer = undefined;
      if (slot.readyTimer !== undefined) clearTimeout(slot.readyTimer);
      if (slot.ready && slot.endpoint !== undefined) {
        slot.ready = false;
        this.options.onGone(slot.endpoint);
      }
      slot.settle?.();
    }
    const running = this.slots.filter((s) => s.child !== undefined);
    for (const slot of running) killGroup(slot.child!, 'SIGTERM');
    const all = Promise.all(running.map((s) => s.exited));
    const timer = setTimeout(() => {
      for (const slot of running) if (slot.child !== undefined) killGroup(slot.child, 'SIGKILL');
    }, this.options.graceMs ?? 10_000);
    await all;
    clearTimeout(timer);
    if (this.dir !== undefined) rmSync(this.dir, { recursive: true, force: true });
    await this.reaper.close();
  }
}

/** Signals the worker's whole process group (it was spawned detached, as its leader). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
