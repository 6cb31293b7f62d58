/**
 * The operator event log behind `GET /v1/events`: table changes (subscriptions, admin actions,
 * expiry), health changes (ejections) and rejected subscription packets, each with a sequence number
 * (`seq`, 1, 2, 3... for the life of the process) kept in a bounded ring buffer so that a client can
 * resume (`since(seq)`) after a disconnect, then follow live (`subscribe`).
 *
 * Bounds (a flood never grows memory or drowns the interesting events):
 *  - the ring holds the last `capacity` events (default 10 000); `since(n)` for an n older than the
 *    ring reports `truncated: true` so a client knows it missed events and should re-read the table;
 *  - 'refreshed' events are sampled: at most one per node per `refreshSampleMs` (default 10 s), tracked in
 *    at most `refreshTrackLimit` nodes (beyond that, refreshes are not logged at all);
 *  - 'rejected' (dropped packet) events: at most `rejectedPerSecond` per second (default 20); the next
 *    logged one carries how many were suppressed.
 * Listeners run synchronously; one that throws is removed (a broken socket cannot break the table).
 */

export type OperatorEventType =
  | 'added'
  | 'updated'
  | 'refreshed'
  | 'draining'
  | 'active'
  | 'removed'
  | 'expired'
  | 'ejected'
  | 'readmitted'
  | 'rejected'
  | 'policy';

export interface OperatorEventInput {
  readonly type: OperatorEventType;
  /** Host key the event is about (absent for packets rejected before their key was read). */
  readonly host?: string | undefined;
  /** Node address. */
  readonly node?: string | undefined;
  /** Who caused it: subscription, admin, static, health, ttl. */
  readonly source?: string | undefined;
  /** Short machine-readable reason (drop reason, removal reason, ejection reason). */
  readonly reason?: string | undefined;
  readonly detail?: string | undefined;
  readonly weight?: number | undefined;
  readonly state?: string | undefined;
  /** For 'rejected': how many rejections were not logged since the previous one. */
  readonly suppressed?: number | undefined;
}

export interface OperatorEvent extends OperatorEventInput {
  readonly seq: number;
  /** ms timestamp (event log clock). */
  readonly time: number;
}

export interface EventLogOptions {
  readonly capacity?: number;
  readonly clock?: () => number;
  readonly refreshSampleMs?: number;
  readonly refreshTrackLimit?: number;
  readonly rejectedPerSecond?: number;
}

export interface EventReplay {
  readonly events: OperatorEvent[];
  /** Events after `since` were dropped from the ring: the client missed some. */
  readonly truncated: boolean;
  /** Sequence number of the newest event. */
  readonly last: number;
  /** Sequence number of the oldest event still in the ring (last + 1 when empty). */
  readonly oldest: number;
}

export type EventListener = (event: OperatorEvent) => void;

export class EventLog {
  private readonly capacity: number;
  private readonly clock: () => number;
  private readonly refreshSampleMs: number;
  private readonly refreshTrackLimit: number;
  private readonly rejectedPerSecond: number;
  private readonly ring: (OperatorEvent | undefined)[];
  private seq = 0;
  private listeners: readonly EventListener[] = [];
  /** node id → time of its last logged refresh; insertion order = oldest first. */
  private readonly refreshSeen = new Map<string, number>();
  private refreshPurgedAt = Number.NEGATIVE_INFINITY;
  private rejectWindow = 0;
  private rejectInWindow = 0;
  private rejectSuppressed = 0;

  constructor(options: EventLogOptions = {}) {
    this.capacity = Math.max(1, options.capacity ?? 10_000);
    this.clock = options.clock ?? Date.now;
    this.refreshSampleMs = options.refreshSampleMs ?? 10_000;
    this.refreshTrackLimit = options.refreshTrackLimit ?? 100_000;
    this.rejectedPerSecond = options.rejectedPerSecond ?? 20;
    this.ring = new Array<OperatorEvent | undefined>(this.capacity);
  }

  /** Sequence number of the newest event (0 before the first). */
  get last(): number {
    return this.seq;
  }

  /** Appends an event and tells the listeners. */
  record(input: OperatorEventInput): OperatorEvent {
    const event: OperatorEvent = Object.freeze({ seq: ++this.seq, time: this.clock(), ...input });
    this.ring[event.seq % this.capacity] = event;
    if (input.type === 'removed' || input.type === 'expired') {
      if (input.node !== undefined) this.refreshSeen.delete(`${input.host}\n${input.node}`);
    }
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        this.listeners = this.listeners.filter((l) => l !== listener);
      }
    }
    return event;
  }

  /** A node refreshed its subscription: logged at most once per node per `refreshSampleMs`. */
  refreshed(host: string, node: string, source = 'subscription'): OperatorEvent | undefined {
    const now = this.clock();
    const id = `${host}\n${node}`;
    const seen = this.refreshSeen;
    // Forget nodes whose window has passed (oldest first), so the map holds about one window of nodes.
    // At most once a second: this runs per refresh datagram, and walking the front of a Map that keeps
    // losing its oldest entries costs more than the rest of the intake (measured at 100k refreshes/s).
    if (now - this.refreshPurgedAt >= 1000 || now < this.refreshPurgedAt) {
      this.refreshPurgedAt = now;
      for (const [oldId, at] of seen) {
        if (now - at < this.refreshSampleMs) break;
        seen.delete(oldId);
      }
    }
    const at = seen.get(id);
    if (at !== undefined) {
      if (now - at < this.refreshSampleMs) return undefined;
      seen.delete(id); // re-inserted below, at the end (newest)
    } else if (seen.size >= this.refreshTrackLimit) return undefined;
    seen.set(id, now);
    return this.record({ type: 'refreshed', host, node, source });
  }

  /** A subscription packet was dropped: logged at most `rejectedPerSecond` times a second. */
  rejected(reason: string, detail: string, from: string, host?: string): OperatorEvent | undefined {
    const second = Math.floor(this.clock() / 1000);
    if (second !== this.rejectWindow) {
      this.rejectWindow = second;
      this.rejectInWindow = 0;
    }
    if (this.rejectInWindow >= this.rejectedPerSecond) {
      this.rejectSuppressed++;
      return undefined;
    }
    this.rejectInWindow++;
    const suppressed = this.rejectSuppressed;
    this.rejectSuppressed = 0;
    return this.record({
      type: 'rejected',
      host,
      reason,
      detail: `${detail} (from ${from})`,
      source: 'subscription',
      ...(suppressed > 0 ? { suppressed } : {}),
    });
  }

  /**
   * Events with `seq > since`, oldest first, optionally only those about `host`; at most `limit`.
   * O(returned + skipped by the host filter).
   */
  since(since: number, host?: string, limit = this.capacity): EventReplay {
    const oldest = Math.max(1, this.seq - this.capacity + 1);
    const from = Math.max(since + 1, oldest);
    const events: OperatorEvent[] = [];
    for (let s = from; s <= this.seq && events.length < limit; s++) {
      const event = this.ring[s % this.capacity]!;
      if (host === undefined || event.host === host) events.push(event);
    }
    return {
      events,
      truncated: since + 1 < oldest && this.seq > 0,
      last: this.seq,
      oldest: Math.min(oldest, this.seq + 1),
    };
  }

  /** Adds a live listener; returns the function that removes it. */
  subscribe(listener: EventListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  get listenerCount(): number {
    return this.listeners.length;
  }
}
