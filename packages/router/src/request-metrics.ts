/**
 * Request counters kept on the request path as plain numbers and typed arrays (a handful of increments
 * per request, no prom-client call, no allocation); metrics-exporter.ts turns them into Prometheus
 * series at scrape time.
 *
 * Per request (`record`): status class, outcome code (`OK` or the SY_* code), a request-duration
 * histogram (seconds, `DURATION_BUCKETS`), body bytes in/out, and the per-host counters of the host's
 * record — under its own series when the host is currently exported by TopHosts, else under "other".
 */
import type { HostRecord } from './host-policy.js';
import type { RequestRecord } from './request-record.js';
import { TopHosts } from './top-hosts.js';

/** Upper bounds of the request-duration histogram, seconds (a proxy hop is ms; slow uploads are minutes). */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
]);

const BUCKET_MS = DURATION_BUCKETS.map((s) => s * 1000);

/** Status class index: 0 = 1xx ... 4 = 5xx; 499 (client closed) counts as 4xx. */
export function statusClassIndex(status: number): number {
  const c = Math.floor(status / 100) - 1;
  return c < 0 ? 4 : Math.min(c, 4);
}

export const STATUS_CLASSES: readonly string[] = Object.freeze(['1xx', '2xx', '3xx', '4xx', '5xx']);

export class RequestMetrics {
  /** Responses by status class. */
  readonly classes = new Float64Array(5);
  /** Requests per outcome code other than OK (bounded: codes are a fixed set). */
  readonly outcomes = new Map<string, number>();
  /** Requests that ended OK. */
  ok = 0;
  /** Histogram: counts per bucket (non-cumulative; last slot = above the largest bound). */
  readonly durationCounts = new Float64Array(DURATION_BUCKETS.length + 1);
  durationSumMs = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** Status classes of requests for hosts that have no series of their own. */
  readonly otherHostClasses = new Float64Array(5);
  /** Failed node attempts by SY_UPSTREAM_* code. */
  readonly upstreamErrors = new Map<string, number>();
  readonly topHosts: TopHosts;

  constructor(topHosts: number, onEvict?: (record: HostRecord) => void) {
    this.topHosts = new TopHosts(topHosts, onEvict);
  }

  /** Counts one finished request. `code` is `OK` or its SY_* code. */
  record(request: RequestRecord, code: string, durationMs: number): void {
    const cls = statusClassIndex(request.status);
    this.classes[cls]!++;
    if (code === 'OK') this.ok++;
    else this.outcomes.set(code, (this.outcomes.get(code) ?? 0) + 1);
    let b = 0;
    while (b < BUCKET_MS.length && durationMs > BUCKET_MS[b]!) b++;
    this.durationCounts[b]!++;
    this.durationSumMs += durationMs;
    this.bytesIn += request.bytesIn;
    this.bytesOut += request.bytesOut;
    const host = request.hostRecord;
    if (host === undefined) {
      this.otherHostClasses[cls]!++;
      return;
    }
    host.requests++;
    host.classes[cls]!++;
    this.dirtyHosts?.add(host);
    if (!host.exported) this.otherHostClasses[cls]!++;
    this.topHosts.hit(host);
  }

  /** Host records counted since the last takeHostChanges(); undefined (the default) = not tracked. */
  private dirtyHosts: Set<HostRecord> | undefined;

  /** From now on, remember which hosts counted requests (a `--workers` worker reports them). */
  trackHosts(): void {
    this.dirtyHosts ??= new Set();
  }

  /** Per host counted since the previous call: [key, requests, responses by class (1xx..5xx)]. */
  takeHostChanges(): [key: string, requests: number, classes: number[]][] {
    const out: [string, number, number[]][] = [];
    for (const host of this.dirtyHosts ?? []) out.push([host.key, host.requests, [...host.classes]]);
    this.dirtyHosts?.clear();
    return out;
  }

  /** Counts one failed attempt on a node. */
  upstreamError(code: string): void {
    this.upstreamErrors.set(code, (this.upstreamErrors.get(code) ?? 0) + 1);
  }

  /** Requests counted so far. */
  get total(): number {
    let n = 0;
    for (const v of this.classes) n += v;
    return n;
  }
}
