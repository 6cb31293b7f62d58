/**
 * A sorted set of host keys for paging the admin API over a million hosts: keys live in sorted blocks of
 * at most `2 × BLOCK` strings (a flat "sorted list of lists"), so
 *  - `add` / `delete` cost a binary search over the blocks, one inside the block and a splice of at most
 *    2 × BLOCK slots: O(log n + BLOCK), independent of n in practice;
 *  - `page({ prefix, after, limit })` seeks in O(log n) and then reads `limit` keys: a page never costs
 *    O(n), whichever page it is.
 * Order is JavaScript string order (UTF-16 code units), which is also the cursor order: `after` is the
 * last key of the previous page, so a page stays correct while hosts come and go between requests
 * (nothing is skipped or repeated except hosts added or removed meanwhile).
 */

const BLOCK = 512;

export interface KeyPage {
  readonly keys: readonly string[];
  /** The cursor for the next page (the last key returned), undefined on the last page. */
  readonly next: string | undefined;
}

export class SortedKeyIndex {
  private blocks: string[][] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds `key` (present → true) or removes it (present → false): the table calls it on every store. */
  track(key: string, present: boolean): void {
    if (present) this.add(key);
    else this.delete(key);
  }

  /** Adds a key; false when it was already there. */
  add(key: string): boolean {
    const blocks = this.blocks;
    if (blocks.length === 0) {
      blocks.push([key]);
      this.count++;
      return true;
    }
    let b = this.blockFor(key);
    if (b === blocks.length) b--;
    const block = blocks[b]!;
    const i = lowerBound(block, key);
    if (block[i] === key) return false;
    block.splice(i, 0, key);
    this.count++;
    if (block.length > 2 * BLOCK) blocks.splice(b + 1, 0, block.splice(BLOCK));
    return true;
  }

  /** Removes a key; false when it was not there. */
  delete(key: string): boolean {
    const b = this.blockFor(key);
    const block = this.blocks[b];
    if (block === undefined) return false;
    const i = lowerBound(block, key);
    if (block[i] !== key) return false;
    block.splice(i, 1);
    this.count--;
    if (block.length === 0) this.blocks.splice(b, 1);
    return true;
  }

  has(key: string): boolean {
    const block = this.blocks[this.blockFor(key)];
    return block !== undefined && block[lowerBound(block, key)] === key;
  }

  /**
   * Up to `limit` keys in order, starting with `prefix` (when given) and greater than `after` (when
   * given). O(log n + limit).
   */
  page(options: {
    readonly prefix?: string | undefined;
    readonly after?: string | undefined;
    readonly limit: number;
  }): KeyPage {
    const prefix = options.prefix ?? '';
    const after = options.after;
    // Start at the first key >= prefix, or the first key > after when that is further.
    const startAfter = after !== undefined && after >= prefix;
    const from = startAfter ? after : prefix;
    let b = this.blockFor(from);
    let i = b < this.blocks.length ? lowerBound(this.blocks[b]!, from) : 0;
    const keys: string[] = [];
    let next: string | undefined;
    for (; b < this.blocks.length; b++, i = 0) {
      const block = this.blocks[b]!;
      for (; i < block.length; i++) {
        const key = block[i]!;
        if (startAfter && key === after) continue;
        if (!key.startsWith(prefix)) return { keys, next: undefined };
        if (keys.length === options.limit) {
          next = keys[keys.length - 1];
          return { keys, next };
        }
        keys.push(key);
      }
    }
    return { keys, next: undefined };
  }

  /** Every key in order (tests, small tables). */
  *[Symbol.iterator](): IterableIterator<string> {
    for (const block of this.blocks) yield* block;
  }

  /** Index of the first block whose last key is >= key (blocks.length when none). */
  private blockFor(key: string): number {
    const blocks = this.blocks;
    let lo = 0;
    let hi = blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const block = blocks[mid]!;
      if (block[block.length - 1]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** First index in the sorted `block` whose key is >= `key`. */
function lowerBound(block: readonly string[], key: string): number {
  let lo = 0;
  let hi = block.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (block[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
