/**
 * Chooses the hosts that get their own metric series (`--metrics-top-hosts N`, default 20), so that a
 * million hosts cannot explode Prometheus cardinality: every other host is counted under host="other".
 *
 * Per request (`hit`): a Misra-Gries heavy-hitter counter over HostRecords, with `capacity` (= 4 N,
 * at least 32) candidate slots kept on the records themselves (no Map, no allocation). A host not in
 * the candidate set either takes a free slot or, when all are taken, decrements every candidate (those
 * reaching zero leave). Every host with more than 1/capacity of the traffic is guaranteed a slot; the
 * cost is O(1) amortised (the decrements never exceed the increments).
 *
 * At scrape time (`select`): the N candidates with the highest counters are marked `exported`, the
 * others not, and every counter is halved so the set follows the current traffic rather than all-time
 * totals. A request is counted under its host's series if the host is exported at that moment, else
 * under "other" (see request-metrics.ts), so every exported series is monotonic.
 */
import type { HostRecord } from './host-policy.js';

export class TopHosts {
  /** Hosts with their own series (N). */
  readonly limit: number;
  private readonly capacity: number;
  private candidates: HostRecord[] = [];
  private exported: HostRecord[] = [];
  private readonly onEvict: (record: HostRecord) => void;

  constructor(limit: number, onEvict: (record: HostRecord) => void = () => undefined) {
    this.limit = Math.max(0, Math.floor(limit));
    this.capacity = this.limit === 0 ? 0 : Math.max(32, 4 * this.limit);
    this.onEvict = onEvict;
  }

  /** Counts one request for `record`'s host. */
  hit(record: HostRecord): void {
    if (record.tracked) {
      record.heavy++;
      return;
    }
    const candidates = this.candidates;
    if (candidates.length < this.capacity) {
      record.tracked = true;
      record.heavy = 1;
      candidates.push(record);
      return;
    }
    if (this.capacity === 0) return;
    let kept = 0;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      if (--c.heavy > 0) candidates[kept++] = c;
      else this.untrack(c);
    }
    candidates.length = kept;
  }

  /** Marks the N busiest candidates as exported and returns them; halves every counter. Scrape time. */
  select(): readonly HostRecord[] {
    for (const record of this.exported) record.exported = false;
    const ranked = this.candidates.slice().sort((a, b) => b.heavy - a.heavy || (a.key < b.key ? -1 : 1));
    const top = ranked.slice(0, this.limit);
    for (const record of top) record.exported = true;
    this.exported = top;
    let kept = 0;
    const candidates = this.candidates;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      c.heavy = Math.floor(c.heavy / 2);
      if (c.heavy > 0 || c.exported) candidates[kept++] = c;
      else this.untrack(c);
    }
    candidates.length = kept;
    return top;
  }

  /** Hosts exported by the last `select`. */
  get current(): readonly HostRecord[] {
    return this.exported;
  }

  private untrack(record: HostRecord): void {
    record.tracked = false;
    record.heavy = 0;
    this.onEvict(record);
  }
}
