/**
 * What the workers of `--workers N` report, gathered on the primary so that its admin API, dashboard and
 * uWSGI stats server show the cluster, not the primary's idle router:
 *  - node runtime (requests, failures, bytes, in-flight, per-host hits) → the primary's ClusterRuntime;
 *  - router counters → `Router.stats()` (setRemoteStats);
 *  - per-host traffic (requests by status class) → the primary's host records, as sums;
 *  - request totals and WebSocket tunnels → the `requests` and `websockets` sections of `GET /v1/stats`;
 *  - outlier ejections (passive health is per worker) → the node's `ejection` in admin views while any
 *    worker has it ejected, and an event in the primary's event log for each ejection and readmission.
 *
 * Figures are at most one report interval (RUNTIME_REPORT_MS) old. A worker that exits is dropped: its
 * counters leave the sums with it.
 */
import {
  ClusterRuntime,
  type EjectionState,
  type HealthEvent,
  type Router,
  type TunnelStats,
} from '@switchyard/router';
import type { RuntimeReport } from './worker-messages.js';

interface HostTraffic {
  readonly requests: number;
  readonly classes: readonly number[];
}

export class WorkerReports {
  private readonly router: Router;
  /** The primary router's runtime when it is a ClusterRuntime (else node runtime is not aggregated). */
  private readonly runtime: ClusterRuntime | undefined;
  private readonly reports = new Map<number, RuntimeReport>();
  /** worker → host key → its counts. */
  private readonly hosts = new Map<number, Map<string, HostTraffic>>();
  /** node id → worker → ejection. */
  private readonly ejections = new Map<string, Map<number, EjectionState>>();

  constructor(router: Router) {
    this.router = router;
    this.runtime = router.runtime instanceof ClusterRuntime ? router.runtime : undefined;
    router.setRemoteStats(() => [...this.reports.values()].map((r) => r.stats));
    const local = router.ops.health.describe;
    router.ops.health.describe = (key, address) => local(key, address) ?? this.ejectionOf(key, address);
  }

  /** Worker `worker`'s periodic report. */
  apply(worker: number, report: RuntimeReport): void {
    this.reports.set(worker, report);
    this.runtime?.apply(worker, report.changes);
    if (report.hosts.length === 0) return;
    let mine = this.hosts.get(worker);
    if (mine === undefined) {
      mine = new Map();
      this.hosts.set(worker, mine);
    }
    for (const [key, requests, classes] of report.hosts) {
      mine.set(key, { requests, classes });
      this.sumHost(key);
    }
  }

  /** Worker `worker` ejected or readmitted a node: shown in admin views and the primary's event log. */
  health(worker: number, event: HealthEvent): void {
    const id = nodeId(event.key, event.address);
    let byWorker = this.ejections.get(id);
    if (event.type === 'ejected') {
      if (byWorker === undefined) {
        byWorker = new Map();
        this.ejections.set(id, byWorker);
      }
      byWorker.set(worker, {
        ejected: true,
        ...(event.until === undefined ? {} : { until: event.until }),
        ...(event.reason === undefined ? {} : { reason: event.reason }),
      });
    } else if (byWorker !== undefined) {
      byWorker.delete(worker);
      if (byWorker.size === 0) this.ejections.delete(id);
    }
    this.router.ops.events.record({
      type: event.type,
      host: event.key,
      node: event.address,
      source: 'health',
      reason: event.reason,
      detail: `worker ${worker}`,
    });
  }

  /** Worker `worker` exited. */
  drop(worker: number): void {
    this.reports.delete(worker);
    this.runtime?.drop(worker);
    const mine = this.hosts.get(worker);
    this.hosts.delete(worker);
    for (const key of mine?.keys() ?? []) this.sumHost(key);
    for (const [id, byWorker] of this.ejections) {
      if (byWorker.delete(worker) && byWorker.size === 0) this.ejections.delete(id);
    }
  }

  /** `GET /v1/stats` sections summed over the workers. */
  trafficStats(): {
    requests: { total: number; ok: number; outcomes: Record<string, number>; bytesIn: number; bytesOut: number };
    websockets: TunnelStats;
  } {
    const requests = { total: 0, ok: 0, outcomes: {} as Record<string, number>, bytesIn: 0, bytesOut: 0 };
    const goingAway: Record<string, number> = {};
    let open = 0;
    let opened = 0;
    for (const r of this.reports.values()) {
      requests.total += r.requests.total;
      requests.ok += r.requests.ok;
      requests.bytesIn += r.requests.bytesIn;
      requests.bytesOut += r.requests.bytesOut;
      for (const [code, n] of Object.entries(r.requests.outcomes)) {
        requests.outcomes[code] = (requests.outcomes[code] ?? 0) + n;
      }
      open += r.websockets.open;
      opened += r.websockets.opened;
      for (const [reason, n] of Object.entries(r.websockets.goingAway))
        goingAway[reason] = (goingAway[reason] ?? 0) + n;
    }
    return { requests, websockets: { open, opened, goingAway: goingAway as TunnelStats['goingAway'] } };
  }

  /** Writes the workers' sum for `key` into the primary's host record (read by admin views). */
  private sumHost(key: string): void {
    let requests = 0;
    const classes = [0, 0, 0, 0, 0];
    for (const mine of this.hosts.values()) {
      const t = mine.get(key);
      if (t === undefined) continue;
      requests += t.requests;
      for (let i = 0; i < classes.length; i++) classes[i]! += t.classes[i] ?? 0;
    }
    const record = requests === 0 ? this.router.ops.policies.peek(key) : this.router.ops.policies.record(key);
    if (record === undefined) return;
    record.requests = requests;
    for (let i = 0; i < classes.length; i++) record.classes[i] = classes[i]!;
  }

  private ejectionOf(key: string, address: string): EjectionState | undefined {
    const byWorker = this.ejections.get(nodeId(key, address));
    if (byWorker === undefined) return undefined;
    let first: EjectionState | undefined;
    for (const state of byWorker.values())
      if (first === undefined || (state.until ?? 0) > (first.until ?? 0)) first = state;
    return first === undefined ? undefined : { ...first, detail: { workers: byWorker.size } };
  }
}

function nodeId(key: string, address: string): string {
  return `${key}\u0000${address}`;
}
