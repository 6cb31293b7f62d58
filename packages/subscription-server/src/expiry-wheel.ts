/**
 * ExpiryWheel: the registry's expiry structure. It answers "which nodes are past their deadline?" in time
 * proportional to the answer, not to the number of nodes, and a node refresh costs it nothing.
 *
 * Entries are (slot, token) pairs of int32 (8 bytes each), grouped in buckets of `bucketMs` (bucket id =
 * floor(deadline / bucketMs)); a bucket is a FIFO of fixed-size chunks taken from a shared pool, and a
 * min-heap orders the bucket ids (about longest delay / bucketMs numbers, whatever the entry count).
 *
 * The wheel does not store deadlines: the owner answers `deadline(slot)` at poll time and `token(slot)`
 * tells live entries from stale ones (an entry is stale once the slot's token moved on: the node was
 * removed, or its schedule was replaced by `schedule()` in this or another wheel).
 *
 * Lazy re-arming: a refresh only moves the node's deadline (lastSeen) forward in the owner's columns.
 * When the entry's bucket comes due, `pollDue` finds the later deadline and moves the entry to that
 * bucket instead of expiring it. So each node has exactly one entry, a refresh touches no wheel, and
 * each entry is examined about once per refresh interval.
 *
 * Precision: an entry is returned only when its deadline is strictly before `now` (never early). Polling
 * stops at the first live entry of the earliest bucket that is not yet due; entries re-armed into a
 * bucket are not in deadline order within it, so a node can expire up to `bucketMs` late.
 */

/** Entries per chunk (8 bytes each): 8 KiB chunks. A power of two. */
const CHUNK = 1024;
const CHUNK_SHIFT = 10;

/** `pollDue` result: nothing is due. */
export const NONE_DUE = -1;
/** `pollDue` result: the examination budget ran out before an answer (call again). */
export const BUDGET_SPENT = -2;

export interface ExpiryOwner {
  /** Current token of the slot (`schedule` stored the token it was given). */
  token(slot: number): number;
  /** Current deadline of the slot, ms. Called only for live entries. */
  deadline(slot: number): number;
}

interface Bucket {
  readonly id: number;
  readonly chunks: (Int32Array | undefined)[];
  /** Index of the next entry to read, over the whole bucket. */
  head: number;
  /** Index of the next entry to write. */
  tail: number;
}

export class ExpiryWheel {
  readonly bucketMs: number;
  readonly #owner: ExpiryOwner;
  readonly #buckets = new Map<number, Bucket>();
  readonly #heap: number[] = [];
  /** Chunks given back by exhausted buckets, reused before allocating (bounded by the peak). */
  readonly #pool: Int32Array[] = [];
  #entries = 0;
  #examined = 0;

  constructor(bucketMs: number, owner: ExpiryOwner) {
    if (!(bucketMs > 0)) throw new RangeError('bucketMs must be > 0');
    this.bucketMs = bucketMs;
    this.#owner = owner;
  }

  /** Entries held, stale ones included. */
  get entryCount(): number {
    return this.#entries;
  }

  /** Entries examined by `pollDue` since creation. */
  get examined(): number {
    return this.#examined;
  }

  /** Adds an entry for (slot, token) due at `deadline` ms. */
  schedule(slot: number, token: number, deadline: number): void {
    const id = Math.floor(deadline / this.bucketMs);
    let bucket = this.#buckets.get(id);
    if (bucket === undefined) {
      bucket = { id, chunks: [], head: 0, tail: 0 };
      this.#buckets.set(id, bucket);
      this.#heapPush(id);
    }
    const index = bucket.tail++;
    const c = index >>> CHUNK_SHIFT;
    let chunk = bucket.chunks[c];
    if (chunk === undefined) {
      chunk = this.#pool.pop() ?? new Int32Array(2 * CHUNK);
      bucket.chunks[c] = chunk;
    }
    const at = (index & (CHUNK - 1)) << 1;
    chunk[at] = slot;
    chunk[at + 1] = token;
    this.#entries++;
  }

  /**
   * Removes and returns one live slot whose deadline is strictly before `now`; NONE_DUE when none is;
   * BUDGET_SPENT when `budget` entries were examined (stale or re-armed) without reaching an answer.
   */
  pollDue(now: number, budget = Number.POSITIVE_INFINITY): number {
    const owner = this.#owner;
    let spent = 0;
    while (this.#heap.length > 0) {
      const id = this.#heap[0]!;
      // A bucket whose start is not yet past cannot hold a due entry, nor can any later one.
      if (id * this.bucketMs >= now) return NONE_DUE;
      const bucket = this.#buckets.get(id);
      if (bucket === undefined) {
        this.#heapRemoveTop(id);
        continue;
      }
      while (bucket.head < bucket.tail) {
        if (spent >= budget) return BUDGET_SPENT;
        const index = bucket.head;
        const chunk = bucket.chunks[index >>> CHUNK_SHIFT]!;
        const at = (index & (CHUNK - 1)) << 1;
        const slot = chunk[at]!;
        const token = chunk[at + 1]!;
        this.#examined++;
        spent++;
        if (owner.token(slot) !== token) {
          this.#advance(bucket);
          continue;
        }
        const deadline = owner.deadline(slot);
        if (deadline < now) {
          this.#advance(bucket);
          return slot;
        }
        if (Math.floor(deadline / this.bucketMs) === id) return NONE_DUE;
        // Refreshed since it was scheduled: move it to the bucket of its current deadline.
        this.#advance(bucket);
        this.schedule(slot, token, deadline);
      }
      this.#dropBucket(bucket);
    }
    return NONE_DUE;
  }

  /** Drops every entry. */
  clear(): void {
    for (const bucket of this.#buckets.values()) this.#dropBucket(bucket);
    this.#buckets.clear();
    this.#heap.length = 0;
    this.#entries = 0;
  }

  #advance(bucket: Bucket): void {
    bucket.head++;
    this.#entries--;
    if ((bucket.head & (CHUNK - 1)) === 0) {
      const c = (bucket.head >>> CHUNK_SHIFT) - 1;
      const chunk = bucket.chunks[c];
      if (chunk !== undefined) {
        bucket.chunks[c] = undefined;
        this.#pool.push(chunk);
      }
    }
  }

  #dropBucket(bucket: Bucket): void {
    for (let c = 0; c < bucket.chunks.length; c++) {
      const chunk = bucket.chunks[c];
      if (chunk !== undefined) this.#pool.push(chunk);
    }
    bucket.chunks.length = 0;
    if (this.#buckets.get(bucket.id) === bucket) {
      this.#buckets.delete(bucket.id);
      this.#heapRemoveTop(bucket.id);
    }
  }

  /** Pops the heap top (which is `id` whenever a bucket is exhausted: buckets drain in id order). */
  #heapRemoveTop(id: number): void {
    if (this.#heap[0] !== id) return;
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
}
