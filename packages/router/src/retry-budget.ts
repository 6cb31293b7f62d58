/**
 * Retry budget (Finagle / Envoy style): retries may add at most `ratio` of the recent request rate plus
 * a small floor, so an outage cannot multiply the load on the nodes that are left. "Recent" is a
 * sliding window (default 10 s) of `BUCKETS` buckets on the injected clock.
 *
 * A retry is allowed when `retries in window < ratio × requests in window + minPerSecond × window
 * seconds`. `tryRetry()` withdraws one retry when allowed; a refusal is counted (`exhausted`) and the
 * caller answers with the error it has instead of retrying. Keep-alive race re-sends (same node, fresh
 * connection) are not retries and do not use the budget, nor do retries after a connect failure
 * (nothing reached the failed node, so moving the request on adds no load: proxy-exchange.ts).
 *
 * Defaults (Finagle's): ratio 0.2, floor 10 retries per second, window 10 s. Ratio 0 and floor 0 turn
 * retries off.
 */

export interface RetryBudgetOptions {
  /** ms clock. Default Date.now. */
  readonly clock?: () => number;
  /** Retries allowed per request in the window, 0..10. Default 0.2. */
  readonly ratio?: number;
  /** Retries always allowed per second of window, regardless of traffic. Default 10. */
  readonly minPerSecond?: number;
  /** Window length, ms. Default 10000. */
  readonly windowMs?: number;
}

export interface RetryBudgetStats {
  readonly ratio: number;
  readonly minPerSecond: number;
  readonly windowMs: number;
  /** Requests and retries in the current window. */
  readonly requests: number;
  readonly retries: number;
  /** Retries refused because the budget was spent, since start. */
  readonly exhausted: number;
}

const BUCKETS = 10;

export class RetryBudget {
  readonly ratio: number;
  readonly minPerSecond: number;
  readonly windowMs: number;
  private readonly clock: () => number;
  private readonly bucketMs: number;
  private readonly requestBuckets = new Float64Array(BUCKETS);
  private readonly retryBuckets = new Float64Array(BUCKETS);
  /** Index (time / bucketMs) of the newest bucket. */
  private head = Number.NEGATIVE_INFINITY;
  private requests = 0;
  private retries = 0;
  private exhaustedCount = 0;

  constructor(options: RetryBudgetOptions = {}) {
    this.clock = options.clock ?? Date.now;
    this.ratio = options.ratio ?? 0.2;
    this.minPerSecond = options.minPerSecond ?? 10;
    this.windowMs = options.windowMs ?? 10_000;
    this.bucketMs = this.windowMs / BUCKETS;
  }

  /** Counts one request (call once per proxied request, before any attempt). */
  deposit(): void {
    const slot = this.advance();
    this.requestBuckets[slot]! += 1;
    this.requests++;
  }

  /** Withdraws one retry when the budget allows it; false (and counted) when it is spent. */
  tryRetry(): boolean {
    const slot = this.advance();
    const allowed = this.ratio * this.requests + (this.minPerSecond * this.windowMs) / 1000;
    if (this.retries + 1 > allowed) {
      this.exhaustedCount++;
      return false;
    }
    this.retryBuckets[slot]! += 1;
    this.retries++;
    return true;
  }

  stats(): RetryBudgetStats {
    this.advance();
    return {
      ratio: this.ratio,
      minPerSecond: this.minPerSecond,
      windowMs: this.windowMs,
      requests: this.requests,
      retries: this.retries,
      exhausted: this.exhaustedCount,
    };
  }

  /** Moves the window to now, clearing buckets that fell out; returns the current bucket's slot. */
  private advance(): number {
    const index = Math.floor(this.clock() / this.bucketMs);
    if (index > this.head) {
      const stale = Math.min(index - this.head, BUCKETS);
      for (let i = 1; i <= stale; i++) {
        const slot = (((index - stale + i) % BUCKETS) + BUCKETS) % BUCKETS;
        this.requests -= this.requestBuckets[slot]!;
        this.retries -= this.retryBuckets[slot]!;
        this.requestBuckets[slot] = 0;
        this.retryBuckets[slot] = 0;
      }
      this.head = index;
    }
    // A clock that steps back keeps counting in the newest bucket.
    return ((this.head % BUCKETS) + BUCKETS) % BUCKETS;
  }
}
