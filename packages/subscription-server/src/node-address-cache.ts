/**
 * NodeAddressCache: one shared string and one parsed connect target per distinct node address. In a
 * hosting fleet many hosts are served by the same backends (100 000 hosts on 3 nodes is 3 addresses);
 * without sharing, every node of every host would hold its own copy of "10.0.0.7:3031", its own target
 * object and its own host string.
 *
 * Bounded and O(1): a direct-mapped table of `capacity` entries (a power of two, default 16 384) indexed
 * by a hash of the address; a colliding address replaces the entry. A fleet with more distinct
 * addresses than that (one socket per vassal, say) simply gets less sharing; nothing is ever wrong,
 * since a replaced address is parsed again on demand. (A Map used as a FIFO would be the obvious
 * choice and is not: deleting from its front leaves holes that every later "oldest" lookup walks.)
 */
import { parseUpstreamTarget, type UpstreamTarget } from './upstream-target.js';

class Entry {
  readonly address: string;
  /** Parsed on first use; null when the address is not a valid node address. */
  target: UpstreamTarget | null | undefined = undefined;

  constructor(address: string) {
    this.address = address;
  }
}

export class NodeAddressCache {
  readonly #mask: number;
  readonly #entries: (Entry | undefined)[];

  /** `capacity` is rounded up to a power of two. */
  constructor(capacity = 16_384) {
    let size = 1;
    while (size < capacity) size *= 2;
    this.#mask = size - 1;
    this.#entries = new Array<Entry | undefined>(size).fill(undefined);
  }

  /** The shared string equal to `address` (`address` itself the first time it is seen). */
  intern(address: string): string {
    return this.#entry(address).address;
  }

  /** The connect target of `address` (shared while cached); undefined when it is not a node address. */
  target(address: string): UpstreamTarget | undefined {
    const entry = this.#entry(address);
    if (entry.target === undefined) entry.target = parseUpstreamTarget(address) ?? null;
    return entry.target ?? undefined;
  }

  #entry(address: string): Entry {
    // FNV-1a over the UTF-16 code units.
    let hash = 0x811c9dc5;
    for (let i = 0; i < address.length; i++) hash = Math.imul(hash ^ address.charCodeAt(i), 0x01000193);
    const index = hash & this.#mask;
    const entry = this.#entries[index];
    if (entry !== undefined && entry.address === address) return entry;
    const created = new Entry(address);
    this.#entries[index] = created;
    return created;
  }
}
