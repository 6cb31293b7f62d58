/**
 * Deadlines of upstream connections (connect, idle, response head, pooled idle), checked by one shared,
 * coarse timer instead of a Node Timeout per socket: a connection stores its deadline as a number (ms on
 * the injected clock) and moving it is a field write, so the per-request path creates, re-inserts and
 * clears no timer (socket.setTimeout re-inserted its timer on every read and write).
 *
 * Contract: a target registered with deadline `d` and precision `p` gets `onDeadline(now)` at some
 * `now` in [d, d + p] (timer latency aside), unless it moved its deadline or left first. Precision is
 * a quarter of the timeout it guards, at most `maxPrecisionMs` (default 250 ms) and at least 1 ms, so a
 * 300 ms timeout fires within 300–375 ms and the 60 s defaults within 250 ms.
 *
 * Cost: one timer armed for the earliest (deadline + precision); when it fires, one pass over the
 * registered targets fires the expired ones and re-arms for the next. Passes are at least the smallest
 * precision in use apart, so the sweep costs O(targets) per precision period. Moving a deadline later
 * (the common case: activity) never touches the timer; moving it earlier than the armed time re-arms it.
 * The timer is unref'd: pending deadlines never keep the process alive.
 */

/** A connection (or anything else) with deadlines. */
export interface DeadlineTarget {
  /** Earliest deadline in ms on the sweeper's clock; Infinity = none. Read by `sweep`. */
  readonly deadline: number;
  /** How late past `deadline` onDeadline may come, ms (`precisionFor` the timeout it guards). */
  readonly slack: number;
  /** The deadline passed (`now >= deadline`); the target re-arms, leaves or ends itself. */
  onDeadline(now: number): void;
}

export interface UpstreamDeadlinesOptions {
  /** Monotonic ms. Default performance.now. */
  readonly clock?: () => number;
  /** Upper bound of the precision, ms. Default 250. */
  readonly maxPrecisionMs?: number;
  /** Timer factory (tests: a manual scheduler). Default setTimeout + unref. */
  readonly setTimer?: (fn: () => void, ms: number) => unknown;
  readonly clearTimer?: (timer: unknown) => void;
}

const defaultSetTimer = (fn: () => void, ms: number): unknown => setTimeout(fn, ms).unref();
const defaultClearTimer = (timer: unknown): void => clearTimeout(timer as NodeJS.Timeout);

export class UpstreamDeadlines {
  readonly now: () => number;
  private readonly maxPrecisionMs: number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (timer: unknown) => void;
  private readonly targets = new Set<DeadlineTarget>();
  private timer: unknown;
  /** When the armed timer fires (clock ms); Infinity when none is armed. */
  private armedAt = Number.POSITIVE_INFINITY;
  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
    this.sweep();
  };
  /** Sweeps run (for tests and stats). */
  sweeps = 0;

  constructor(options: UpstreamDeadlinesOptions = {}) {
    this.now = options.clock ?? performance.now.bind(performance);
    this.maxPrecisionMs = options.maxPrecisionMs ?? 250;
    this.setTimer = options.setTimer ?? defaultSetTimer;
    this.clearTimer = options.clearTimer ?? defaultClearTimer;
  }

  /** The precision used for a timeout of `timeoutMs`: a quarter of it, within [1, maxPrecisionMs]. */
  precisionFor(timeoutMs: number): number {
    return Math.max(1, Math.min(this.maxPrecisionMs, Math.floor(timeoutMs / 4)));
  }

  /**
   * Registers `target` (idempotent) and makes sure a sweep runs by its deadline plus its slack. Needed
   * after registering and after moving a deadline earlier; moving it later needs no call.
   */
  schedule(target: DeadlineTarget): void {
    this.targets.add(target);
    const latest = target.deadline + target.slack;
    if (latest < this.armedAt) this.arm(latest);
  }

  /** Unregisters `target` (idempotent); its deadlines will not fire. */
  remove(target: DeadlineTarget): void {
    this.targets.delete(target);
  }

  /** Registered targets (tests, stats). */
  get size(): number {
    return this.targets.size;
  }

  /**
   * Fires every expired target, then re-arms for the earliest remaining (deadline + slack). Runs from the
   * timer; callable directly (tests with a manual clock). Every remaining deadline is in the future, so
   * the next pass is at least the smallest slack away.
   */
  sweep(): void {
    this.sweeps++;
    const now = this.now();
    let next = Number.POSITIVE_INFINITY;
    for (const target of this.targets) {
      if (target.deadline <= now) {
        target.onDeadline(now);
        // Gone, or still registered with a later deadline (it re-armed itself).
        if (!this.targets.has(target)) continue;
      }
      const latest = target.deadline + target.slack;
      if (latest < next) next = latest;
    }
    if (next !== Number.POSITIVE_INFINITY && next < this.armedAt) this.arm(next);
  }

  private arm(at: number): void {
    if (this.timer !== undefined) this.clearTimer(this.timer);
    this.armedAt = at;
    this.timer = this.setTimer(this.onTimer, Math.max(1, Math.ceil(at - this.now())));
  }
}

/** The process-wide sweeper used by connections whose timeouts name none. */
export const sharedUpstreamDeadlines = new UpstreamDeadlines();
