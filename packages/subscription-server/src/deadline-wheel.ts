/**
 * DeadlineWheel: the expiry structure of the registry. It answers "which items are past their deadline?"
 * in time proportional to the answer, not to the number of items, so a 1 s sweep stays cheap with a
 * million registered nodes of which a handful are due.
 *
 * Structure: deadlines are grouped in buckets of `bucketMs` (bucket id = floor(deadline / bucketMs)). A
 * bucket is an append-only FIFO (parallel arrays + a head index); a min-heap orders the bucket ids. Only
 * bucket ids live in the heap, so it holds about (longest delay / bucketMs) numbers (≈ 30 with the
 * registry defaults), whatever the item count.
 *
 * Rescheduling (a node refresh) is O(1): it appends a new entry and gives the item a fresh token; the
 * old entry stays behind as a stale entry and is skipped (and freed) when its bucket is reached. Each
 * schedule creates exactly one entry and each entry is examined at most once before it is discarded, so
 * `pollDue` is O(1) amortised per schedule. Stale entries cost memory only until their bucket's deadline
 * passes (with 10 s refreshes and a 17 s tolerance: about two entries per live node). Whole buckets are
 * dropped when exhausted, so no tombstones pile up the way they would in a single insertion-ordered Map
 * whose front keeps getting deleted.
 *
 * Within one bucket, entries are in scheduling order. With a fixed delay (one wheel per delay, as the
 * registry does) and a clock that does not go backwards, that is deadline order, so polling stops at
 * the first entry that is not due. If the clock steps backwards, an item can wait behind a later one in
 * the same bucket: its expiry is then late by at most `bucketMs`, never early.
 */

/** An item schedulable in a wheel. `wheelToken` is owned by the wheels: 0 when not scheduled. */
export interface WheelItem {
  wheelToken: number;
}

interface Bucket<T> {
  readonly id: number;
  readonly items: (T | undefined)[];
  readonly tokens: number[];
  readonly deadlines: number[];
  head: number;
}

// Shared by every wheel so that a token is never reused, even when an item moves between wheels.
let nextToken = 1;

export class DeadlineWheel<T extends WheelItem> {
  readonly bucketMs: number;
  readonly #buckets = new Map<number, Bucket<T>>();
  readonly #heap: number[] = [];
  #entries = 0;
  #examined = 0;

  /** @param bucketMs bucket width in ms (> 0): the precision of the early-stop, not of expiry itself. */
  constructor(bucketMs: number) {
    if (!(bucketMs > 0)) throw new RangeError('bucketMs must be > 0');
    this.bucketMs = bucketMs;
  }

  /** Entries held, stale ones included (memory accounting and tests). */
  get entryCount(): number {
    return this.#entries;
  }

  /** Entries examined by `pollDue` since creation (live, stale and the not-yet-due one it stops at). */
  get examined(): number {
    return this.#examined;
  }

  /** Schedules `item` at `deadline` (ms), replacing its schedule in this or any other wheel. */
  schedule(item: T, deadline: number): void {
    const token = nextToken++;
    item.wheelToken = token;
    const id = Math.floor(deadline / this.bucketMs);
    let bucket = this.#buckets.get(id);
    if (bucket === undefined) {
      bucket = { id, items: [], tokens: [], deadlines: [], head: 0 };
      this.#buckets.set(id, bucket);
      this.#heapPush(id);
    }
    bucket.items.push(item);
    bucket.tokens.push(token);
    bucket.deadlines.push(deadline);
    this.#entries++;
  }

  /** Unschedules `item` (from whichever wheel holds it); its entry becomes stale. */
  static cancel(item: WheelItem): void {
    item.wheelToken = 0;
  }

  /**
   * Removes and returns one item whose deadline is strictly before `now`, or undefined when none is due.
   * The returned item is unscheduled (`wheelToken` = 0).
   */
  pollDue(now: number): T | undefined {
    while (this.#heap.length > 0) {
      const id = this.#heap[0]!;
      const bucket = this.#buckets.get(id)!;
      // A bucket whose start is not yet past cannot hold a due entry, nor can any later one.
      if (id * this.bucketMs >= now) return undefined;
      while (bucket.head < bucket.items.length) {
        const i = bucket.head;
        const item = bucket.items[i]!;
        this.#examined++;
        if (item.wheelToken === bucket.tokens[i]) {
          if (bucket.deadlines[i]! >= now) return undefined;
          item.wheelToken = 0;
          this.#discard(bucket, i);
          return item;
        }
        this.#discard(bucket, i);
      }
      this.#buckets.delete(id);
      this.#heapPop();
    }
    return undefined;
  }

  /** Drops every entry. */
  clear(): void {
    for (const bucket of this.#buckets.values()) {
      for (let i = bucket.head; i < bucket.items.length; i++) {
        const item = bucket.items[i]!;
        if (item.wheelToken === bucket.tokens[i]) item.wheelToken = 0;
      }
    }
    this.#buckets.clear();
    this.#heap.length = 0;
    this.#entries = 0;
  }

  #discard(bucket: Bucket<T>, i: number): void {
    bucket.items[i] = undefined; // release the item for GC while the bucket lives on
    bucket.head = i + 1;
    this.#entries--;
  }

  #heapPush(id: number): void {
    const heap = this.#heap;
    let i = heap.push(id) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]! <= id) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = id;
  }

  #heapPop(): void {
    const heap = this.#heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]! < heap[left]! ? right : left;
      if (heap[child]! >= last) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  }
}
