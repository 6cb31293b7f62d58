/**
 * A consistent-hash ring with virtual nodes (Karger / ketama style), used by the hashing balancers.
 *
 * Each node owns `weight × pointsPerWeight` points (scaled down so the ring stays under `maxPoints`,
 * at least one point per node); a key belongs to the first point at or after its hash, clockwise.
 * Adding or removing one node of N only moves the keys that node gains or loses (≈1/N of them); every
 * other key keeps its node. Fallbacks are the next distinct owners clockwise, so a key's second choice
 * is as stable as its first.
 *
 * Points are `hash32("address#i")`; the ring is built once per node set (O(P log P)) and looked up by
 * binary search (O(log P)).
 */

const DEFAULT_POINTS_PER_WEIGHT = 100;
const DEFAULT_MAX_POINTS = 16_384;

/** FNV-1a over UTF-16 code units, finished with murmur3's fmix32 avalanche: a well-spread 32-bit hash. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class HashRing {
  /** Sorted point hashes. */
  private readonly points: Uint32Array;
  /** Owner (index into the node list) of each point. */
  private readonly owners: Uint32Array;
  readonly size: number;

  constructor(
    addresses: readonly string[],
    weights: readonly number[],
    options: { readonly pointsPerWeight?: number; readonly maxPoints?: number } = {},
  ) {
    const perWeight = options.pointsPerWeight ?? DEFAULT_POINTS_PER_WEIGHT;
    const maxPoints = options.maxPoints ?? DEFAULT_MAX_POINTS;
    let totalWeight = 0;
    for (const w of weights) totalWeight += w;
    const scale = Math.min(perWeight, maxPoints / Math.max(totalWeight, 1));
    const counts = weights.map((w) => Math.max(1, Math.round(w * scale)));
    let total = 0;
    for (const c of counts) total += c;
    // Sort (hash, owner) pairs packed in one float64: hash × 2^20 + owner is exact below 2^53.
    const packed = new Float64Array(total);
    let k = 0;
    for (let owner = 0; owner < addresses.length; owner++) {
      const address = addresses[owner]!;
      for (let i = 0; i < counts[owner]!; i++) packed[k++] = hash32(`${address}#${i}`) * 1_048_576 + owner;
    }
    packed.sort();
    this.points = new Uint32Array(total);
    this.owners = new Uint32Array(total);
    for (let i = 0; i < total; i++) {
      const value = packed[i]!;
      const owner = value % 1_048_576;
      this.points[i] = (value - owner) / 1_048_576;
      this.owners[i] = owner;
    }
    this.size = total;
  }

  /** Index of the owner of `hash`. The ring must not be empty. */
  owner(hash: number): number {
    return this.owners[this.indexOf(hash)]!;
  }

  /**
   * Up to `limit` distinct owners walking clockwise from `hash` (first = the key's node). Stops after
   * one full turn, so it returns fewer when the ring has fewer distinct owners.
   */
  walk(hash: number, limit: number): number[] {
    const out: number[] = [];
    const size = this.size;
    if (size === 0 || limit <= 0) return out;
    const start = this.indexOf(hash);
    for (let step = 0; step < size && out.length < limit; step++) {
      const owner = this.owners[(start + step) % size]!;
      if (!out.includes(owner)) out.push(owner);
    }
    return out;
  }

  /** First point index with point >= hash, wrapping to 0. */
  private indexOf(hash: number): number {
    let lo = 0;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.size ? 0 : lo;
  }
}
