/**
 * Runtime node state as a `--workers` primary sees it: its own (empty: it serves no traffic) plus what
 * each worker last reported (`apply`, about once a second, only what changed: node-runtime.ts
 * takeChanges). The admin API, the dashboard and the uWSGI stats server read it as they read a
 * single-process router's NodeRuntime, so per-node requests, failures, bytes, in-flight and per-host hits
 * are cluster totals, at most one report interval old.
 *
 * Draining never reads these figures: it waits for each worker's own report (worker-cluster.ts), because
 * a figure up to a second old could hold a drain forever or end it early. `ownInFlightFor` stays local.
 * A worker that exits is dropped (`drop`): its counters leave the totals, as its process is gone.
 */
import { NodeRuntime, type NodeStats, type RuntimeChanges } from './node-runtime.js';

interface RemoteNode {
  readonly stats: NodeStats;
  readonly perKey: Map<string, number>;
}

interface RemoteWorker {
  readonly nodes: Map<string, RemoteNode>;
  readonly hits: Map<string, number>;
}

export class ClusterRuntime extends NodeRuntime {
  private readonly workers = new Map<number, RemoteWorker>();

  /** Worker `worker` reports what changed since its previous report. */
  apply(worker: number, changes: RuntimeChanges): void {
    let remote = this.workers.get(worker);
    if (remote === undefined) {
      remote = { nodes: new Map(), hits: new Map() };
      this.workers.set(worker, remote);
    }
    for (const [address, stats, perKey] of changes.nodes) {
      if (stats === null) remote.nodes.delete(address);
      else remote.nodes.set(address, { stats, perKey: new Map(perKey) });
    }
    for (const [key, hits] of changes.hits) {
      if (hits === 0) remote.hits.delete(key);
      else remote.hits.set(key, hits);
    }
  }

  /** Worker `worker` is gone. */
  drop(worker: number): void {
    this.workers.delete(worker);
  }

  override stats(address: string): Readonly<NodeStats> | undefined {
    const own = super.stats(address);
    let sum: NodeStats | undefined =
      own === undefined
        ? undefined
        : {
            inFlight: own.inFlight,
            requests: own.requests,
            failures: own.failures,
            lastFailure: own.lastFailure,
            bytesOut: own.bytesOut,
            bytesIn: own.bytesIn,
          };
    for (const remote of this.workers.values()) {
      const r = remote.nodes.get(address)?.stats;
      if (r === undefined) continue;
      if (sum === undefined) {
        sum = { ...r };
        continue;
      }
      sum.inFlight += r.inFlight;
      sum.requests += r.requests;
      sum.failures += r.failures;
      sum.lastFailure = Math.max(sum.lastFailure, r.lastFailure);
      sum.bytesOut += r.bytesOut;
      sum.bytesIn += r.bytesIn;
    }
    return sum;
  }

  override inFlightFor(key: string, address: string): number {
    let n = super.inFlightFor(key, address);
    for (const remote of this.workers.values()) n += remote.nodes.get(address)?.perKey.get(key) ?? 0;
    return n;
  }

  override hitsFor(key: string): number {
    let n = super.hitsFor(key);
    for (const remote of this.workers.values()) n += remote.hits.get(key) ?? 0;
    return n;
  }
}
