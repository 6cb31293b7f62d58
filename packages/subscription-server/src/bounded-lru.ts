/**
 * BoundedLru: a map that never holds more than `capacity` entries; inserting into a full map evicts the
 * least recently used entry. Used wherever the subscription intake keeps per-sender state (replay
 * high-water marks, rate-limit buckets, cached key files) so that a flood of distinct senders, hosts or
 * keys costs bounded memory.
 *
 * A JavaScript Map iterates in insertion order; `get()` re-inserts the entry, so the first key is always
 * the least recently used one. All operations are O(1). Getting the most recently used key again (one
 * sender streaming packets) skips the re-insertion.
 */
export class BoundedLru<K, V> {
  readonly #map = new Map<K, V>();
  readonly #capacity: number;
  #evictions = 0;
  /** The last key inserted (the most recently used one), when it is still present. */
  #newest: K | undefined;
  #hasNewest = false;

  /** `capacity` ≥ 1 entries. */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity ${capacity} is not ≥ 1`);
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#map.size;
  }

  get capacity(): number {
    return this.#capacity;
  }

  /** Entries evicted to make room since creation. */
  get evictions(): number {
    return this.#evictions;
  }

  /** The value for `key`, marking it most recently used; undefined when absent. */
  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value === undefined) return undefined;
    if (this.#hasNewest && this.#newest === key) return value;
    this.#map.delete(key);
    this.#map.set(key, value);
    this.#newest = key;
    this.#hasNewest = true;
    return value;
  }

  /** The value for `key` without touching its recency. */
  peek(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  /** Stores `value` as the most recently used entry, evicting the least recently used one when full. */
  set(key: K, value: V): void {
    if (this.#map.has(key)) {
      this.#map.delete(key);
    } else if (this.#map.size >= this.#capacity) {
      const oldest = this.#map.keys().next();
      if (oldest.done !== true) {
        this.#map.delete(oldest.value);
        this.#evictions++;
      }
    }
    this.#map.set(key, value);
    this.#newest = key;
    this.#hasNewest = true;
  }

  delete(key: K): boolean {
    if (this.#hasNewest && this.#newest === key) {
      this.#newest = undefined;
      this.#hasNewest = false;
    }
    return this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
    this.#newest = undefined;
    this.#hasNewest = false;
  }
}
