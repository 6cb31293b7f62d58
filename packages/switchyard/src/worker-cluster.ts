/**
 * The primary of `switchyard --workers N`: forks N HTTP worker processes (node:cluster; the listening
 * sockets are shared and connections handed out round-robin) and keeps their tables equal to its own.
 * The primary alone owns the subscription socket, the registry, the admin API and the table; its Router
 * binds no listener and is the source of every change (router/table-replica.ts).
 *
 * Guarantees:
 *  - Order: every change gets a sequence number when it is made; batches go out once per event-loop turn
 *    over each worker's ordered IPC channel; a worker applies each change once, in order, and exits on a
 *    gap (SY_WORKER_DESYNC) to be restarted with a snapshot. A joining worker gets the snapshot before
 *    any batch and before it binds, so it never serves from a partial table.
 *  - Drain: the primary reports a node drained (registry removal, admin delete) only when every worker
 *    that was serving when the drain began has reported no request in flight to it (or has exited);
 *    worker-drains.ts.
 *  - Crash: a worker that dies is restarted with exponential backoff (restart-backoff.ts); the others
 *    keep serving; the new one starts from a snapshot.
 *  - Lag: the time from a change to a worker's acknowledgement that it applied it is recorded per change
 *    batch (`switchyard_worker_table_lag_seconds`, `stats().lag`).
 *
 * `start()` resolves once every worker listens; if one fails (its code, e.g. SY_BIND_FAILED, is kept)
 * or exits first, the others are stopped and start() rejects. `close()` stops every worker (each drains
 * its requests, bounded by `shutdownGraceMs`, then is killed) and is safe twice.
 */
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { MetricFamily, Router, TableChange } from '@switchyard/router';
import { TableFeed, tableDigest } from '@switchyard/router';
import type { Logger } from 'pino';
import { WorkerError } from './errors.js';
import { RestartBackoff } from './restart-backoff.js';
import { WorkerDrains } from './worker-drains.js';
import { LagRecorder } from './worker-lag.js';
import type { Bound, PrimaryMessage, WorkerAnswer, WorkerMessage } from './worker-messages.js';
import { isWorkerMessage, SNAPSHOT_CHUNK, sharedNow } from './worker-messages.js';
import { WorkerReports } from './worker-reports.js';

export interface WorkerClusterOptions {
  /** Worker processes, >= 1. */
  readonly count: number;
  /** Router arguments each worker parses (the primary's own command line, without node and script). */
  readonly argv: readonly string[];
  /** The primary's router: the table every worker replicates. */
  readonly router: Router;
  readonly logger: Logger;
  /** Grace for a stopping worker's in-flight requests, ms; it is killed this + 5 s after `stop`. */
  readonly shutdownGraceMs: number;
  /** Worker entry script. Default: this package's dist/worker-main.js. */
  readonly exec?: string;
  /** Most changes per message (snapshot chunks and change batches). Default SNAPSHOT_CHUNK. */
  readonly snapshotChunk?: number;
  /**
   * A listening worker not heard from (it reports every RUNTIME_REPORT_MS) for this long is stalled: it
   * is killed and restarted, so that a hung process neither serves nor holds the primary's queue. ms,
   * default 10_000.
   */
  readonly stallMs?: number;
  /** Longest wait for every worker to listen at start (and for a restarted one), ms. Default 30_000. */
  readonly startTimeoutMs?: number;
}

type Phase = 'forked' | 'synced' | 'listening' | 'stopping';

interface Member {
  readonly id: number;
  readonly worker: Worker;
  readonly startedAt: number;
  phase: Phase;
  http: readonly Bound[];
  https: readonly Bound[];
  /** Date.now() of the last message from the worker. */
  lastHeard: number;
}

const DEFAULT_EXEC = fileURLToPath(new URL('../dist/worker-main.js', import.meta.url));

export class WorkerCluster {
  private readonly options: WorkerClusterOptions;
  private readonly logger: Logger;
  private readonly router: Router;
  private readonly members = new Map<number, Member>();
  private readonly backoff = new RestartBackoff();
  private readonly lag = new LagRecorder();
  /** The workers' runtime reports, aggregated for the admin views (worker-reports.ts). */
  readonly reports: WorkerReports;
  private feed: TableFeed | undefined;
  private seq = 0;
  private batch: TableChange[] = [];
  private batchFirst = 1;
  private batchStartedAt = 0;
  private flushScheduled = false;
  private drains: WorkerDrains | undefined;
  private readonly requests = new Map<number, (seq: number, answer: WorkerAnswer | undefined) => void>();
  private requestId = 0;
  private nextWorkerId = 1;
  private restarts = 0;
  private stalls = 0;
  private watchdog: NodeJS.Timeout | undefined;
  private started = false;
  private closing: Promise<void> | undefined;
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private startWaiters: { resolve: () => void; reject: (error: Error) => void } | undefined;

  constructor(options: WorkerClusterOptions) {
    this.options = options;
    this.router = options.router;
    this.reports = new WorkerReports(options.router);
    this.logger = options.logger.child({ component: 'worker-cluster' });
  }

  /** Forks the workers and resolves once all listen. Rejects with the first worker's startup error. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.feed = new TableFeed(this.router, (change) => this.record(change));
    this.drains = new WorkerDrains(this.router);
    const ready = new Promise<void>((resolve, reject) => {
      this.startWaiters = { resolve, reject };
    });
    for (let i = 0; i < this.options.count; i++) this.fork();
    this.watchdog = setInterval(() => this.checkStalls(), Math.min(1000, (this.options.stallMs ?? 10_000) / 2));
    this.watchdog.unref();
    const timeout = setTimeout(
      () => this.startFailed(new WorkerError('SY_WORKER_FAILED', 'workers did not all listen in time')),
      this.options.startTimeoutMs ?? 30_000,
    );
    try {
      await ready;
    } catch (error) {
      await this.close();
      throw error;
    } finally {
      clearTimeout(timeout);
    }
  }

  /** Stops every worker (each drains first). Safe twice. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Addresses the workers listen on (the same for every worker: the sockets are shared). */
  addresses(): { http: readonly Bound[]; https: readonly Bound[] } {
    for (const m of this.members.values()) if (m.phase === 'listening') return { http: m.http, https: m.https };
    return { http: [], https: [] };
  }

  /** Router metric families of every listening worker (those that answer within 1 s). */
  async metrics(): Promise<MetricFamily[][]> {
    const answers = await this.ask('metrics');
    return answers.map(({ answer }) => (answer.what === 'metrics' ? [...answer.families] : []));
  }

  /**
   * Each listening worker's table digest and applied sequence number, with the primary's: once the
   * workers have applied everything (`seq` equal), every digest equals `primary`.
   */
  async digests(): Promise<{ primary: string; seq: number; workers: { pid: number; seq: number; digest: string }[] }> {
    const answers = await this.ask('digest');
    return {
      primary: tableDigest(this.router),
      seq: this.seq,
      workers: answers.map(({ m, seq, answer }) => ({
        pid: m.worker.process.pid ?? 0,
        seq,
        digest: answer.what === 'digest' ? answer.digest : '',
      })),
    };
  }

  private async ask(what: 'metrics' | 'digest'): Promise<{ m: Member; seq: number; answer: WorkerAnswer }[]> {
    const asks = [...this.members.values()]
      .filter((m) => m.phase === 'listening')
      .map(
        (m) =>
          new Promise<{ m: Member; seq: number; answer: WorkerAnswer } | undefined>((resolve) => {
            const requestId = ++this.requestId;
            const timer = setTimeout(() => {
              this.requests.delete(requestId);
              resolve(undefined);
            }, 1000);
            this.requests.set(requestId, (seq, answer) => {
              clearTimeout(timer);
              this.requests.delete(requestId);
              resolve(answer === undefined ? undefined : { m, seq, answer });
            });
            this.send(m, { t: 'ask', id: requestId, what });
          }),
      );
    const answers = await Promise.all(asks);
    return answers.filter((a) => a !== undefined);
  }

  /** Cluster families for /metrics: workers, restarts, table lag histogram. */
  families(): MetricFamily[] {
    return [
      {
        name: 'switchyard_workers',
        help: 'HTTP worker processes listening.',
        type: 'gauge',
        values: [{ value: this.listeningCount() }],
      },
      {
        name: 'switchyard_worker_restarts_total',
        help: 'HTTP workers restarted after they died (stalled ones included).',
        type: 'counter',
        values: [{ value: this.restarts }],
      },
      {
        name: 'switchyard_worker_stalls_total',
        help: 'HTTP workers killed because they stopped answering (SY_WORKER_STALLED).',
        type: 'counter',
        values: [{ value: this.stalls }],
      },
      this.lag.family(),
    ];
  }

  stats(): {
    workers: number;
    listening: number;
    restarts: number;
    stalls: number;
    seq: number;
    lag: ReturnType<LagRecorder['summary']>;
    pids: number[];
  } {
    return {
      workers: this.options.count,
      listening: this.listeningCount(),
      restarts: this.restarts,
      stalls: this.stalls,
      seq: this.seq,
      lag: this.lag.summary(),
      pids: [...this.members.values()].map((m) => m.worker.process.pid ?? 0),
    };
  }

  // --- replication ---------------------------------------------------------------------------------

  private record(change: TableChange): void {
    const seq = ++this.seq;
    if (this.batch.length === 0) {
      this.batchFirst = seq;
      this.batchStartedAt = sharedNow();
    }
    this.batch.push(change);
    this.drains?.track(change, seq, this.servingIds());
    // A burst (a fleet announcing at once) goes out in bounded messages, not one huge one per turn.
    if (this.batch.length >= (this.options.snapshotChunk ?? SNAPSHOT_CHUNK)) {
      this.flush();
      return;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Sends the batch (if any) to every synced worker; the scheduled flush then finds it empty. */
  private flush(): void {
    this.flushScheduled = false;
    if (this.batch.length === 0) return;
    const message: PrimaryMessage = {
      t: 'changes',
      first: this.batchFirst,
      at: this.batchStartedAt,
      changes: this.batch,
    };
    this.batch = [];
    for (const m of this.members.values()) if (m.phase === 'synced' || m.phase === 'listening') this.send(m, message);
  }

  // --- workers -------------------------------------------------------------------------------------

  private fork(): void {
    const workerId = this.nextWorkerId++;
    cluster.setupPrimary({ exec: this.options.exec ?? DEFAULT_EXEC, args: [...this.options.argv] });
    const worker = cluster.fork({ SWITCHYARD_WORKER_ID: String(workerId) });
    const now = Date.now();
    const m: Member = { id: workerId, worker, startedAt: now, phase: 'forked', http: [], https: [], lastHeard: now };
    this.members.set(workerId, m);
    worker.on('message', (message: unknown) => {
      if (isWorkerMessage(message)) this.receive(m, message);
    });
    worker.on('exit', (code, signal) => this.exited(m, code, signal));
    worker.on('error', (error) => this.logger.warn({ worker: workerId, err: error }, 'worker channel error'));
  }

  private receive(m: Member, message: WorkerMessage): void {
    m.lastHeard = Date.now();
    switch (message.t) {
      case 'hello':
        if (m.phase !== 'forked') return;
        this.sendSnapshot(m);
        m.phase = 'synced';
        return;
      case 'listening':
        m.phase = 'listening';
        m.http = message.http;
        m.https = message.https;
        if (this.startWaiters !== undefined && this.listeningCount() === this.options.count) {
          this.startWaiters.resolve();
          this.startWaiters = undefined;
        }
        return;
      case 'failed':
        this.startFailed(new WorkerError(message.code, message.message, message.option));
        return;
      case 'drained':
        this.drains?.drained(m.id, message.key, message.address, message.seq);
        return;
      case 'applied':
        this.lag.observe(message.lagMs);
        return;
      case 'runtime':
        this.reports.apply(m.id, message.report);
        return;
      case 'health':
        this.reports.health(m.id, message.event);
        return;
      case 'answer':
        this.requests.get(message.id)?.(message.seq, message.answer);
        return;
    }
  }

  private exited(m: Member, code: number | null, signal: string | null): void {
    this.members.delete(m.id);
    this.reports.drop(m.id);
    this.drains?.workerGone(m.id);
    if (this.closing !== undefined || m.phase === 'stopping') return;
    if (this.startWaiters !== undefined) {
      this.startFailed(
        new WorkerError('SY_WORKER_FAILED', `worker ${m.id} exited (code ${code}, signal ${signal}) before listening`),
      );
      return;
    }
    const now = Date.now();
    const delay = this.backoff.next(m.startedAt, now);
    this.restarts++;
    this.logger.error(
      { worker: m.id, pid: m.worker.process.pid, code, signal, restartInMs: delay },
      'worker died: restarting it',
    );
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (this.closing === undefined) this.fork();
    }, delay);
    this.restartTimers.add(timer);
  }

  /**
   * The whole table, in chunks, all sent in this turn (so before any later batch). Flushes nothing:
   * changes still waiting in the batch are in the snapshot too, and the worker skips them by number.
   */
  private sendSnapshot(m: Member): void {
    const changes = this.feed!.snapshot();
    const chunk = this.options.snapshotChunk ?? SNAPSHOT_CHUNK;
    for (let i = 0; i === 0 || i < changes.length; i += chunk) {
      const last = i + chunk >= changes.length;
      this.send(m, { t: 'snapshot', seq: this.seq, changes: changes.slice(i, i + chunk), last });
    }
  }

  private startFailed(error: Error): void {
    const waiters = this.startWaiters;
    this.startWaiters = undefined;
    waiters?.reject(error);
  }

  /** Workers holding the table (snapshot applied): those a drain waits for and change batches go to. */
  private *servingIds(): IterableIterator<number> {
    for (const m of this.members.values()) if (m.phase === 'synced' || m.phase === 'listening') yield m.id;
  }

  private listeningCount(): number {
    let n = 0;
    for (const m of this.members.values()) if (m.phase === 'listening') n++;
    return n;
  }

  private send(m: Member, message: PrimaryMessage): void {
    if (!m.worker.isConnected()) return;
    m.worker.send(message, (error: Error | null) => {
      if (error !== null) this.logger.warn({ worker: m.id, err: error }, 'could not send to worker');
    });
  }

  /** Kills workers that stopped answering (listening) or never got to listen; `exited` restarts them. */
  private checkStalls(): void {
    const now = Date.now();
    const stallMs = this.options.stallMs ?? 10_000;
    const startMs = this.options.startTimeoutMs ?? 30_000;
    for (const m of this.members.values()) {
      const stalled =
        m.phase === 'listening' ? now - m.lastHeard > stallMs : m.phase !== 'stopping' && now - m.startedAt > startMs;
      if (!stalled || m.worker.isDead()) continue;
      this.stalls++;
      this.logger.error(
        { worker: m.id, pid: m.worker.process.pid, code: 'SY_WORKER_STALLED', silentMs: now - m.lastHeard },
        'worker stalled: killing it',
      );
      m.worker.process.kill('SIGKILL');
    }
  }

  private async shutdown(): Promise<void> {
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    for (const timer of this.restartTimers) clearTimeout(timer);
    this.restartTimers.clear();
    this.startFailed(new WorkerError('SY_WORKER_FAILED', 'closed while starting'));
    const exits = [...this.members.values()].map(
      (m) =>
        new Promise<void>((resolve) => {
          m.phase = 'stopping';
          if (m.worker.isDead()) {
            resolve();
            return;
          }
          const kill = setTimeout(() => m.worker.process.kill('SIGKILL'), this.options.shutdownGraceMs + 5000);
          m.worker.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          this.send(m, { t: 'stop' });
          if (!m.worker.isConnected()) m.worker.process.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
    this.feed?.close();
    for (const answer of this.requests.values()) answer(0, undefined);
  }
}
