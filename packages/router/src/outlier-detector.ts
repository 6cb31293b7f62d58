/**
 * Passive outlier ejection, keyed by node address, on the injected clock.
 *
 * Signals (reported per attempt by the router): a response head (`success` below 500, `serverError`
 * for 5xx) or a local-origin failure (`failure`: connect refused/timeout, reset before the response,
 * response timeout, malformed response). `consecutiveErrors` failures in a row or `consecutive5xx`
 * 5xx responses in a row (defaults 5 and 5; 0 disables that signal) eject the node; any response below
 * 500 resets both streaks, and a 5xx resets the error streak (the node was reachable).
 *
 * Ejection lasts `baseEjectionMs × n` (n = this node's ejection count, default 30 s × n), capped at
 * `maxEjectionMs` (5 min). When it ends the node is half-open: NodePools admits it as the first choice
 * of exactly one request (the probe, `claimProbe`); the probe's outcome decides: a response below 500
 * re-admits the node fully (event 'readmitted'), a failure or 5xx re-ejects it for the next, longer
 * period. A probe whose attempt ends without an outcome (client gone) or that was never dispatched
 * (claim older than `probeTimeoutMs`) frees the slot for another probe. Outcomes reported while a node
 * is ejected (requests dispatched before the ejection) are ignored. The ejection count is forgotten
 * once a node has stayed admitted for `maxEjectionMs`.
 *
 * Ejection is refused (counted as `suppressed`) when the guard says so: the router never ejects the
 * last active node of the reporting host, nor more than `maxEjectionFraction` (default 50%) of its active
 * nodes. NodePools applies the same limit again at pick time (panic mode), because nodes can leave after
 * an ejection. Listeners get 'ejected' and 'readmitted' events (the admin events stream subscribes).
 *
 * Memory: only addresses with a failure streak or an ejection have a record; a record is dropped when a
 * success clears it and the node has no ejection history worth keeping.
 */
import type { EjectionStatus, EjectionView } from './node-pool.js';

export interface OutlierOptions {
  /** Consecutive local-origin failures that eject a node; 0 = never. Default 5. */
  readonly consecutiveErrors?: number;
  /** Consecutive 5xx responses that eject a node; 0 = never. Default 5. */
  readonly consecutive5xx?: number;
  /** First ejection period, ms; the n-th ejection lasts n times this. Default 30000. */
  readonly baseEjectionMs?: number;
  /** Longest ejection period, ms. Default 300000. */
  readonly maxEjectionMs?: number;
  /** Most of a host's active nodes that may be ejected at once, 0..1. Default 0.5. */
  readonly maxEjectionFraction?: number;
  /** A claimed probe that reported nothing for this long frees the slot, ms. Default 60000. */
  readonly probeTimeoutMs?: number;
}

export type EjectionReason = 'errors' | '5xx' | 'probe-failed';

export type OutlierEvent =
  | {
      readonly type: 'ejected';
      readonly address: string;
      /** Host whose request reported the failure that tipped the node. */
      readonly key: string;
      readonly reason: EjectionReason;
      /** ms on the injected clock. */
      readonly at: number;
      readonly until: number;
      /** This node's ejection count (the multiplier of the period). */
      readonly ejections: number;
    }
  | { readonly type: 'readmitted'; readonly address: string; readonly key: string; readonly at: number };

export type OutlierListener = (event: OutlierEvent) => void;

/** The guard: may `address` be ejected, judged from host `key`? */
export type EjectionGuard = (key: string, address: string) => boolean;

export interface EjectionInfo {
  readonly address: string;
  readonly status: EjectionStatus;
  readonly consecutiveErrors: number;
  readonly consecutive5xx: number;
  readonly ejections: number;
  /** ms when the current ejection ends (half-open from then); 0 when admitted. */
  readonly ejectedUntil: number;
  readonly lastReason: EjectionReason | undefined;
}

export interface OutlierStats {
  /** Addresses ejected, half-open or probing now. */
  readonly ejectedNow: number;
  readonly ejections: number;
  readonly readmissions: number;
  /** Ejections refused by the guard (last node, max fraction). */
  readonly suppressed: number;
  readonly probes: number;
}

interface OutlierRecord {
  consecutiveErrors: number;
  consecutive5xx: number;
  ejections: number;
  /** 0 = admitted; else the ms the ejection ends. */
  ejectedUntil: number;
  /** ms a probe was claimed; 0 = none. */
  probeAt: number;
  readmittedAt: number;
  touchedAt: number;
  lastReason: EjectionReason | undefined;
}

const SWEEP_ABOVE = 1024;

export class OutlierDetector implements EjectionView {
  readonly consecutiveErrors: number;
  readonly consecutive5xx: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectionFraction: number;
  readonly probeTimeoutMs: number;
  private readonly clock: () => number;
  private readonly records = new Map<string, OutlierRecord>();
  private readonly listeners: OutlierListener[] = [];
  private guard: EjectionGuard = () => true;
  private out = 0;
  private versionCounter = 0;
  private readonly counters = { ejections: 0, readmissions: 0, suppressed: 0, probes: 0 };

  constructor(options: OutlierOptions & { readonly clock?: () => number } = {}) {
    this.clock = options.clock ?? Date.now;
    this.consecutiveErrors = options.consecutiveErrors ?? 5;
    this.consecutive5xx = options.consecutive5xx ?? 5;
    this.baseEjectionMs = options.baseEjectionMs ?? 30_000;
    this.maxEjectionMs = options.maxEjectionMs ?? 300_000;
    this.maxEjectionFraction = options.maxEjectionFraction ?? 0.5;
    this.probeTimeoutMs = options.probeTimeoutMs ?? 60_000;
  }

  /** Addresses currently ejected, half-open or probing. */
  get ejectedCount(): number {
    return this.out;
  }

  get version(): number {
    return this.versionCounter;
  }

  setGuard(guard: EjectionGuard): void {
    this.guard = guard;
  }

  /** Subscribes to 'ejected' / 'readmitted' events; returns the unsubscribe function. */
  onEvent(listener: OutlierListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** A response below 500 from `address`. */
  success(key: string, address: string): void {
    const record = this.records.get(address);
    if (record === undefined) return;
    const now = this.clock();
    if (record.ejectedUntil > 0) {
      if (now < record.ejectedUntil) return;
      record.ejectedUntil = 0;
      record.probeAt = 0;
      record.readmittedAt = now;
      this.out--;
      this.versionCounter++;
      this.counters.readmissions++;
      this.emit({ type: 'readmitted', address, key, at: now });
    }
    record.consecutiveErrors = 0;
    record.consecutive5xx = 0;
    record.touchedAt = now;
    if (record.ejections === 0 || now - record.readmittedAt >= this.maxEjectionMs) this.records.delete(address);
  }

  /** A 5xx response from `address`. */
  serverError(key: string, address: string): void {
    const record = this.touch(address);
    if (record === undefined) return;
    if (record.ejectedUntil > 0) {
      this.eject(key, address, record, 'probe-failed');
      return;
    }
    record.consecutiveErrors = 0;
    record.consecutive5xx++;
    if (this.consecutive5xx > 0 && record.consecutive5xx >= this.consecutive5xx)
      this.eject(key, address, record, '5xx');
  }

  /** A local-origin failure of an attempt on `address` (connect, reset, timeout, bad response). */
  failure(key: string, address: string): void {
    const record = this.touch(address);
    if (record === undefined) return;
    if (record.ejectedUntil > 0) {
      this.eject(key, address, record, 'probe-failed');
      return;
    }
    record.consecutiveErrors++;
    if (this.consecutiveErrors > 0 && record.consecutiveErrors >= this.consecutiveErrors) {
      this.eject(key, address, record, 'errors');
    }
  }

  /** Nothing is in flight on `address` any more: a probe that reported no outcome frees its slot. */
  idle(address: string): void {
    const record = this.records.get(address);
    if (record !== undefined && record.probeAt > 0) {
      record.probeAt = 0;
      this.versionCounter++;
    }
  }

  status(address: string, now: number): EjectionStatus {
    const record = this.records.get(address);
    if (record === undefined || record.ejectedUntil === 0) return 'admitted';
    if (now < record.ejectedUntil) return 'ejected';
    if (record.probeAt > 0 && now - record.probeAt < this.probeTimeoutMs) return 'probing';
    return 'half-open';
  }

  nextChange(address: string): number {
    const record = this.records.get(address);
    if (record === undefined || record.ejectedUntil === 0) return Number.POSITIVE_INFINITY;
    const now = this.clock();
    if (now < record.ejectedUntil) return record.ejectedUntil;
    return record.probeAt > 0 ? record.probeAt + this.probeTimeoutMs : Number.POSITIVE_INFINITY;
  }

  /** The half-open `address` takes its single probe request now. */
  claimProbe(address: string, now: number): void {
    const record = this.records.get(address);
    if (record === undefined || record.ejectedUntil === 0) return;
    record.probeAt = now;
    this.counters.probes++;
    this.versionCounter++;
  }

  /** State of one address (undefined: no record, i.e. admitted with clean streaks). */
  info(address: string, now: number = this.clock()): EjectionInfo | undefined {
    const record = this.records.get(address);
    if (record === undefined) return undefined;
    return {
      address,
      status: this.status(address, now),
      consecutiveErrors: record.consecutiveErrors,
      consecutive5xx: record.consecutive5xx,
      ejections: record.ejections,
      ejectedUntil: record.ejectedUntil,
      lastReason: record.lastReason,
    };
  }

  /** Every address that is out now (ejected, half-open or probing). */
  snapshot(now: number = this.clock()): EjectionInfo[] {
    const out: EjectionInfo[] = [];
    for (const address of this.records.keys()) {
      const info = this.info(address, now);
      if (info !== undefined && info.status !== 'admitted') out.push(info);
    }
    return out;
  }

  stats(): OutlierStats {
    return { ejectedNow: this.out, ...this.counters };
  }

  /** The record to count a failure on (a half-open one is the probe's verdict), or undefined while the node sits out its ejection. */
  private touch(address: string): OutlierRecord | undefined {
    const now = this.clock();
    let record = this.records.get(address);
    if (record === undefined) {
      record = {
        consecutiveErrors: 0,
        consecutive5xx: 0,
        ejections: 0,
        ejectedUntil: 0,
        probeAt: 0,
        readmittedAt: 0,
        touchedAt: now,
        lastReason: undefined,
      };
      this.records.set(address, record);
      if (this.records.size > SWEEP_ABOVE) this.sweep(now);
    }
    record.touchedAt = now;
    if (record.ejectedUntil > 0 && now < record.ejectedUntil) return undefined;
    return record;
  }

  private eject(key: string, address: string, record: OutlierRecord, reason: EjectionReason): void {
    const now = this.clock();
    const halfOpen = record.ejectedUntil > 0;
    if (!halfOpen && !this.guard(key, address)) {
      this.counters.suppressed++;
      return;
    }
    if (!halfOpen && record.ejections > 0 && now - record.readmittedAt >= this.maxEjectionMs) record.ejections = 0;
    record.ejections++;
    const period = Math.min(this.baseEjectionMs * record.ejections, this.maxEjectionMs);
    if (!halfOpen) this.out++;
    record.ejectedUntil = now + period;
    record.probeAt = 0;
    record.consecutiveErrors = 0;
    record.consecutive5xx = 0;
    record.lastReason = halfOpen ? 'probe-failed' : reason;
    this.versionCounter++;
    this.counters.ejections++;
    this.emit({
      type: 'ejected',
      address,
      key,
      reason: record.lastReason,
      at: now,
      until: record.ejectedUntil,
      ejections: record.ejections,
    });
  }

  /** Drops admitted records untouched for longer than the longest ejection (nodes that went away). */
  private sweep(now: number): void {
    for (const [address, record] of this.records) {
      if (record.ejectedUntil === 0 && now - record.touchedAt > this.maxEjectionMs) this.records.delete(address);
    }
  }

  private emit(event: OutlierEvent): void {
    for (const listener of this.listeners.slice()) {
      try {
        listener(event);
      } catch {
        // A listener's bug must not break the request that reported the outcome.
      }
    }
  }
}
