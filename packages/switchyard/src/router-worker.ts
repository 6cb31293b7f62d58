/**
 * One HTTP worker of `switchyard --workers N` (started by worker-cluster.ts through worker-main.ts): a
 * Router replica that serves traffic on the listeners the cluster shares. It never reads subscription
 * packets and never decides anything about the table: it applies the primary's changes in order
 * (worker-messages.ts) and reports drained nodes, its applied sequence number and its metrics.
 *
 * Lifecycle: `start()` says hello, applies the snapshot, opens the access log and binds the listeners
 * (on a bind failure it reports `failed` with the error's code); `close()` stops accepting, drains
 * in-flight requests (bounded by --shutdown-timeout), flushes the access log and is safe twice. The
 * worker closes itself when the primary says `stop`, on SIGINT/SIGTERM, and when the IPC channel goes
 * (the primary died: a worker never outlives it).
 */
import {
  AccessLog,
  applyTableChange,
  formatAddress,
  Router,
  routerMetricFamilies,
  type TableChange,
  tableDigest,
} from '@switchyard/router';
import type { Logger } from 'pino';
import type { SwitchyardConfig } from './cli-options.js';
import { WorkerError } from './errors.js';
import { dropPrivileges, type PrivilegeConfig, type ProcessIds } from './privilege-drop.js';
import { routerOptionsFor } from './router-settings.js';
import {
  type Bound,
  isPrimaryMessage,
  type PrimaryMessage,
  RUNTIME_REPORT_MS,
  sharedNow,
  type WorkerMessage,
} from './worker-messages.js';

/** The IPC channel to the primary (process.send in a forked worker). */
export interface PrimaryChannel {
  send(message: WorkerMessage): void;
  onMessage(listener: (message: PrimaryMessage) => void): void;
  onDisconnect(listener: () => void): void;
}

export interface RouterWorkerOptions {
  readonly config: SwitchyardConfig;
  readonly logger: Logger;
  readonly channel: PrimaryChannel;
  readonly clock?: () => number;
  /** The process id functions `--uid`/`--gid` use (default node:process; injected in tests). */
  readonly processIds?: ProcessIds;
}

export class RouterWorker {
  readonly router: Router;
  private readonly channel: PrimaryChannel;
  private readonly logger: Logger;
  private readonly accessLog: AccessLog | undefined;
  private readonly privileges: PrivilegeConfig | undefined;
  private readonly processIds: ProcessIds | undefined;
  /** Sequence number of the last change applied (0 before the snapshot). */
  private applied = 0;
  /** 1 after SY_WORKER_DESYNC: the process exits with it so that the primary restarts this worker. */
  exitCode = 0;
  private synced = false;
  private snapshotReceived: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private readonly closedListeners: (() => void)[] = [];
  private reportTimer: NodeJS.Timeout | undefined;

  constructor(options: RouterWorkerOptions) {
    const { config } = options;
    this.channel = options.channel;
    this.privileges = config.privileges;
    this.processIds = options.processIds;
    this.logger = options.logger.child({ component: 'router-worker' });
    this.router = new Router(routerOptionsFor(config, options.logger, options.clock ?? Date.now));
    const op = config.operator;
    this.accessLog =
      op.accessLog === 'off' ? undefined : new AccessLog({ destination: op.accessLog, sampleRate: op.accessLogSample });
    this.router.onNodeDrained((key, address) => this.channel.send({ t: 'drained', key, address, seq: this.applied }));
    this.router.runtime.trackChanges();
    this.router.ops.metrics.trackHosts();
    this.router.ops.health.on((event) => this.channel.send({ t: 'health', event }));
  }

  /**
   * Handshake, snapshot, listeners, then `--uid`/`--gid`. Rejects (after reporting `failed`) when a
   * listener cannot bind or the ids cannot be switched to (SY_PRIVILEGE_DROP_FAILED).
   */
  async start(): Promise<void> {
    let ids: { uid: number; gid: number };
    const snapshot = new Promise<void>((resolve) => {
      this.snapshotReceived = resolve;
    });
    this.channel.onMessage((message) => this.receive(message));
    this.channel.onDisconnect(() => {
      if (this.closing === undefined) this.logger.warn('primary gone: closing');
      void this.close();
    });
    this.channel.send({ t: 'hello' });
    await snapshot;
    if (!this.synced) return; // closed before the snapshot came
    try {
      await this.accessLog?.start();
      if (this.accessLog !== undefined) this.router.ops.accessLog = this.accessLog;
      await this.router.start();
      // The access log is open and the listeners are bound: nothing needs root any more. A worker
      // restarted by an already unprivileged primary has these ids from birth (a no-op then).
      ids = dropPrivileges(this.privileges, this.processIds);
    } catch (error) {
      const e = error as { code?: string; message: string; option?: string };
      this.channel.send({ t: 'failed', code: e.code ?? 'SY_WORKER_FAILED', message: e.message, option: e.option });
      await this.close();
      throw error;
    }
    this.reportTimer = setInterval(() => this.report(), RUNTIME_REPORT_MS);
    this.reportTimer.unref();
    this.channel.send({
      t: 'listening',
      http: this.router.addresses().map(bound),
      https: this.router.httpsAddresses().map(bound),
    });
    this.logger.info(
      {
        http: this.router.addresses().map((a) => formatAddress(a.address, a.port)),
        hosts: this.router.table.hostCount,
        seq: this.applied,
        uid: ids.uid,
        gid: ids.gid,
      },
      'worker ready',
    );
  }

  /** Stops accepting, drains, flushes the access log. Safe twice. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Called once the worker has closed (the entry point exits then). */
  onClosed(listener: () => void): void {
    this.closedListeners.push(listener);
  }

  private async shutdown(): Promise<void> {
    this.snapshotReceived?.();
    if (this.reportTimer !== undefined) clearInterval(this.reportTimer);
    await this.router.close();
    this.router.ops.accessLog = undefined;
    await this.accessLog?.close();
    for (const listener of this.closedListeners) listener();
  }

  private receive(message: unknown): void {
    if (!isPrimaryMessage(message)) return;
    switch (message.t) {
      case 'snapshot':
        if (this.snapshotReceived === undefined || this.synced) return;
        for (const change of message.changes) applyTableChange(this.router, change, true);
        if (message.last) {
          this.applied = message.seq;
          this.synced = true;
          this.snapshotReceived();
          this.snapshotReceived = undefined;
        }
        return;
      case 'changes':
        this.applyBatch(message.first, message.at, message.changes);
        return;
      case 'ask':
        this.channel.send({
          t: 'answer',
          id: message.id,
          seq: this.applied,
          answer:
            message.what === 'metrics'
              ? { what: 'metrics', families: routerMetricFamilies(this.router) }
              : { what: 'digest', digest: tableDigest(this.router) },
        });
        return;
      case 'stop':
        void this.close();
        return;
    }
  }

  private report(): void {
    const router = this.router;
    const m = router.ops.metrics;
    this.channel.send({
      t: 'runtime',
      report: {
        changes: router.runtime.takeChanges(),
        stats: router.ownStats(),
        hosts: m.takeHostChanges(),
        requests: {
          total: m.total,
          ok: m.ok,
          outcomes: Object.fromEntries(m.outcomes),
          bytesIn: m.bytesIn,
          bytesOut: m.bytesOut,
        },
        websockets: router.tunnels.stats(),
      },
    });
  }

  /** Applies changes `first`, `first + 1`, ... skipping those already applied; a gap is fatal. */
  private applyBatch(first: number, at: number, changes: readonly TableChange[]): void {
    if (!this.synced) return; // the snapshot (sent before this batch) covers it
    if (first > this.applied + 1) {
      const error = new WorkerError('SY_WORKER_DESYNC', `missed changes ${this.applied + 1}..${first - 1}`);
      this.logger.error({ code: error.code, applied: this.applied, first }, error.message);
      this.exitCode = 1;
      this.synced = false;
      void this.close();
      return;
    }
    for (let i = this.applied + 1 - first; i < changes.length; i++) {
      applyTableChange(this.router, changes[i]!);
    }
    const last = first + changes.length - 1;
    if (last > this.applied) {
      this.applied = last;
      this.channel.send({ t: 'applied', seq: last, lagMs: Math.max(0, sharedNow() - at) });
    }
  }
}

function bound(a: { address: string; port: number; family: string }): Bound {
  return { address: a.address, port: a.port, family: a.family };
}
