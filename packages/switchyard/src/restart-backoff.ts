/**
 * Restart delays for a crashing worker: exponential backoff from `initialMs` (100 ms), doubling on each
 * crash up to `maxMs` (10 s); a worker that ran at least `healthyMs` (30 s) before it died starts over
 * at `initialMs`. Pure: the caller passes the times (ms, from its injected clock).
 */

export interface RestartBackoffOptions {
  /** First delay, ms. Default 100. */
  readonly initialMs?: number;
  /** Largest delay, ms. Default 10_000. */
  readonly maxMs?: number;
  /** A run at least this long (ms) resets the backoff. Default 30_000. */
  readonly healthyMs?: number;
}

export class RestartBackoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly healthyMs: number;
  private previous = 0;

  constructor(options: RestartBackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 100;
    this.maxMs = options.maxMs ?? 10_000;
    this.healthyMs = options.healthyMs ?? 30_000;
  }

  /** Delay before restarting a worker started at `startedAt` that died at `diedAt` (ms). */
  next(startedAt: number, diedAt: number): number {
    if (this.previous === 0 || diedAt - startedAt >= this.healthyMs) this.previous = this.initialMs;
    else this.previous = Math.min(this.previous * 2, this.maxMs);
    return this.previous;
  }

  /** The delay the last `next` returned (0 before any crash). */
  get current(): number {
    return this.previous;
  }
}
