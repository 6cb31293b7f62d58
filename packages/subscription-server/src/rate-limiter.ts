/**
 * RateLimiter: one token bucket per key (a source IP, an ack destination), refilled continuously at
 * `ratePerSecond` up to `burst` tokens; each admitted event takes one token. A key seen for the first time
 * starts with a full bucket.
 *
 * Memory is bounded: buckets live in a BoundedLru of `maxKeys` entries. Evicting a bucket forgets its
 * debt, so a sender rotating through more than `maxKeys` spoofed addresses gets at most `burst` events
 * per address per rotation; a global bucket (`globalRatePerSecond`, optional) caps the total regardless.
 *
 * Time comes from the injected clock (ms), so tests drive refills without sleeping.
 */
import { BoundedLru } from './bounded-lru.js';

export interface RateLimiterOptions {
  /** Tokens added per second per key (> 0). */
  readonly ratePerSecond: number;
  /** Bucket size (≥ 1): the largest burst a quiet key may send at once. Default 2 × ratePerSecond. */
  readonly burst?: number;
  /** Most keys tracked at once (LRU). Default 65 536. */
  readonly maxKeys?: number;
  /** Optional cap over all keys together, tokens per second (burst = 2 × rate). */
  readonly globalRatePerSecond?: number;
  /** ms; default Date.now. */
  readonly clock?: () => number;
}

interface Bucket {
  tokens: number;
  /** ms of the last refill. */
  at: number;
}

export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #clock: () => number;
  readonly #buckets: BoundedLru<string, Bucket>;
  readonly #global: Bucket | undefined;
  readonly #globalRate: number;
  #limited = 0;

  constructor(options: RateLimiterOptions) {
    const rate = options.ratePerSecond;
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`rate ${rate} is not a positive number`);
    this.#rate = rate;
    this.#burst = Math.max(1, options.burst ?? Math.ceil(2 * rate));
    this.#clock = options.clock ?? Date.now;
    this.#buckets = new BoundedLru(options.maxKeys ?? 65_536);
    this.#globalRate = options.globalRatePerSecond ?? 0;
    this.#global = this.#globalRate > 0 ? { tokens: Math.max(1, 2 * this.#globalRate), at: this.#clock() } : undefined;
  }

  /** Keys currently tracked (≤ maxKeys). */
  get trackedKeys(): number {
    return this.#buckets.size;
  }

  /** Events refused since creation. */
  get limited(): number {
    return this.#limited;
  }

  /** Takes one token for `key`; false (and nothing taken) when its bucket, or the global one, is empty. */
  take(key: string): boolean {
    const now = this.#clock();
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.#burst, at: now };
      this.#buckets.set(key, bucket);
    } else {
      refill(bucket, now, this.#rate, this.#burst);
    }
    if (bucket.tokens < 1) {
      this.#limited++;
      return false;
    }
    const global = this.#global;
    if (global !== undefined) {
      refill(global, now, this.#globalRate, Math.max(1, 2 * this.#globalRate));
      if (global.tokens < 1) {
        this.#limited++;
        return false;
      }
      global.tokens -= 1;
    }
    bucket.tokens -= 1;
    return true;
  }
}

function refill(bucket: Bucket, now: number, rate: number, burst: number): void {
  const elapsed = now - bucket.at;
  if (elapsed <= 0) return; // a clock that steps back adds nothing
  bucket.tokens = Math.min(burst, bucket.tokens + (elapsed * rate) / 1000);
  bucket.at = now;
}
