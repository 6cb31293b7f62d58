/**
 * Runtime state of upstream nodes, kept apart from node identity (the vhost table) and keyed by address:
 * in-flight requests (total and per host key, for draining), request, failure and byte counters, and
 * attempts per host key (uWSGI's pool `hits`). Entries are created on first use and dropped when a node
 * is idle and forgotten (`forget`, `forgetKey`).
 */
import { HostKeyMap } from '@switchyard/protocol';
import { PeakEwma } from './peak-ewma.js';

export interface NodeStats {
  inFlight: number;
  requests: number;
  failures: number;
  /** ms timestamp of the last failure, 0 when none. */
  lastFailure: number;
  /** Bytes written to the node (request heads, uwsgi vars, bodies). */
  bytesOut: number;
  /** Bytes read from the node (response heads and bodies). */
  bytesIn: number;
}

interface RuntimeRecord extends NodeStats {
  readonly perKey: Map<string, number>;
  /** Response-head latency estimate (p2c-ewma), created on the first sample. */
  latency?: PeakEwma;
}

/** What changed since the last `takeChanges()` (cluster workers report it to the primary). */
export interface RuntimeChanges {
  /** Per address: its counters and in-flight per host key, or null once the record is gone. */
  readonly nodes: readonly (readonly [
    address: string,
    stats: NodeStats | null,
    perKey: readonly (readonly [string, number])[],
  ])[];
  /** Per host key: attempts so far (0 once forgotten). */
  readonly hits: readonly (readonly [key: string, hits: number])[];
}

export class NodeRuntime {
  private readonly records = new Map<string, RuntimeRecord>();
  /** Addresses and host keys changed since the last takeChanges(); undefined (the default) = not tracked. */
  private dirty: Set<string> | undefined;
  private dirtyKeys: Set<string> | undefined;
  /**
   * Attempts per host key (kept while the key is in the table; see forgetKey). Sharded: with traffic to
   * a million hosts a plain Map's rehash would stall the event loop (protocol/host-key-map.ts).
   */
  private readonly hits = new HostKeyMap<number>();

  /** Counts a request dispatched to `address` for host `key`. */
  begin(key: string, address: string): void {
    let record = this.records.get(address);
    if (record === undefined) {
      record = { inFlight: 0, requests: 0, failures: 0, lastFailure: 0, bytesOut: 0, bytesIn: 0, perKey: new Map() };
      this.records.set(address, record);
    }
    record.inFlight++;
    record.requests++;
    record.perKey.set(key, (record.perKey.get(key) ?? 0) + 1);
    this.hits.set(key, (this.hits.get(key) ?? 0) + 1);
    this.dirty?.add(address);
    this.dirtyKeys?.add(key);
  }

  /** From now on, remember what changes (for takeChanges). */
  trackChanges(): void {
    this.dirty ??= new Set();
    this.dirtyKeys ??= new Set();
  }

  /** The records and hit counters changed since the previous call (empty when not tracking). */
  takeChanges(): RuntimeChanges {
    const nodes: [string, NodeStats | null, [string, number][]][] = [];
    for (const address of this.dirty ?? []) {
      const r = this.records.get(address);
      nodes.push(
        r === undefined
          ? [address, null, []]
          : [
              address,
              {
                inFlight: r.inFlight,
                requests: r.requests,
                failures: r.failures,
                lastFailure: r.lastFailure,
                bytesOut: r.bytesOut,
                bytesIn: r.bytesIn,
              },
              [...r.perKey],
            ],
      );
    }
    const hits: [string, number][] = [];
    for (const key of this.dirtyKeys ?? []) hits.push([key, this.hits.get(key) ?? 0]);
    this.dirty?.clear();
    this.dirtyKeys?.clear();
    return { nodes, hits };
  }

  /** Adds the bytes one attempt wrote to and read from `address`. */
  traffic(address: string, written: number, read: number): void {
    const record = this.records.get(address);
    if (record === undefined) return;
    record.bytesOut += written;
    record.bytesIn += read;
    this.dirty?.add(address);
  }

  /** Attempts dispatched for host `key` since it was first used (uWSGI's per-pool `hits`). */
  hitsFor(key: string): number {
    return this.hits.get(key) ?? 0;
  }

  /** Drops the hit counter of a host that left the table. */
  forgetKey(key: string): void {
    this.hits.delete(key);
    this.dirtyKeys?.add(key);
  }

  /** Ends a request begun with `begin`; returns the in-flight count left for (key, address). */
  end(key: string, address: string): number {
    const record = this.records.get(address);
    if (record === undefined) return 0;
    record.inFlight--;
    this.dirty?.add(address);
    const left = (record.perKey.get(key) ?? 1) - 1;
    if (left <= 0) record.perKey.delete(key);
    else record.perKey.set(key, left);
    return Math.max(left, 0);
  }

  failure(address: string, now: number): void {
    const record = this.records.get(address);
    if (record === undefined) return;
    record.failures++;
    record.lastFailure = now;
    this.dirty?.add(address);
  }

  /** Requests in flight to (key, address): in this process, and in a cluster primary in its workers too. */
  inFlightFor(key: string, address: string): number {
    return this.ownInFlightFor(key, address);
  }

  /** Requests this process has in flight to (key, address) (what draining waits for). */
  ownInFlightFor(key: string, address: string): number {
    return this.records.get(address)?.perKey.get(key) ?? 0;
  }

  stats(address: string): Readonly<NodeStats> | undefined {
    return this.records.get(address);
  }

  /** Records a response-head latency sample (ms) for `address`; ignored when it has no record. */
  observeLatency(address: string, latencyMs: number, now: number, tauMs: number): void {
    const record = this.records.get(address);
    if (record === undefined) return;
    (record.latency ??= new PeakEwma()).observe(latencyMs, now, tauMs);
  }

  /** The peak-EWMA latency of `address`, undefined before its first sample. */
  latencyOf(address: string): PeakEwma | undefined {
    return this.records.get(address)?.latency;
  }

  /** Drops the record of an address no host uses any more, once nothing is in flight. */
  forget(address: string): void {
    const record = this.records.get(address);
    if (record !== undefined && record.inFlight === 0) {
      this.records.delete(address);
      this.dirty?.add(address);
    }
  }
}
