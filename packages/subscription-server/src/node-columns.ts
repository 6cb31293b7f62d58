/**
 * NodeColumns: the registry's nodes stored as parallel arrays indexed by a slot number (a "struct of
 * arrays"), not as one object per node. At a million nodes an object per node costs its header, 8 bytes
 * per field and a 16-byte heap number per timestamp; here a node costs the bytes below and no object the
 * garbage collector has to trace.
 *
 * Per slot (bytes): key, address, rare (pointers, 8 each); firstSeen, lastSeen, drainUntil (ms, 8 each);
 * cores, load (4 each); token (4); next (4); weight (2); modifier1, modifier2, backup, flags (1 each).
 * Numeric columns grow by doubling, so capacity is at most twice the peak number of nodes.
 *
 * Invariants (kept by the registry, which owns the slots):
 *  - a slot is live between alloc() and release(); a released slot is reused by a later alloc();
 *  - `token` changes whenever the slot's expiry schedule changes and when it is released, so an expiry
 *    entry naming (slot, old token) is recognisably stale (expiry-wheel.ts);
 *  - `next` chains the nodes of one host in subscription order, -1 ends the chain.
 */

/** Bit of `flags`: the node speaks HTTP (else uwsgi). */
export const FLAG_HTTP = 1;
/** Bit of `flags`: the node is draining (else active). */
export const FLAG_DRAINING = 2;

/**
 * The fields most nodes never send (balancer, acks, certificates, vassal, clear), kept per node only
 * when at least one is set. Frozen; replaced, never mutated.
 */
export interface NodeRare {
  readonly algo: string | undefined;
  readonly notify: string | undefined;
  readonly sniKey: string | undefined;
  readonly sniCrt: string | undefined;
  readonly sniCa: string | undefined;
  readonly vassal: string | undefined;
  readonly clear: boolean;
}

const INITIAL_CAPACITY = 1024;

export class NodeColumns {
  key: (string | undefined)[] = [];
  address: (string | undefined)[] = [];
  rare: (NodeRare | undefined)[] = [];
  firstSeen = new Float64Array(INITIAL_CAPACITY);
  lastSeen = new Float64Array(INITIAL_CAPACITY);
  /** ms: when a draining node is removed even if nobody reported it drained. */
  drainUntil = new Float64Array(INITIAL_CAPACITY);
  cores = new Uint32Array(INITIAL_CAPACITY);
  load = new Uint32Array(INITIAL_CAPACITY);
  token = new Int32Array(INITIAL_CAPACITY);
  next = new Int32Array(INITIAL_CAPACITY);
  weight = new Uint16Array(INITIAL_CAPACITY);
  modifier1 = new Uint8Array(INITIAL_CAPACITY);
  modifier2 = new Uint8Array(INITIAL_CAPACITY);
  backup = new Uint8Array(INITIAL_CAPACITY);
  flags = new Uint8Array(INITIAL_CAPACITY);
  #capacity = INITIAL_CAPACITY;
  /** Slots ever handed out: slots ≥ this were never used. */
  #high = 0;
  readonly #free: number[] = [];

  /** Slots in use. */
  get size(): number {
    return this.#high - this.#free.length;
  }

  /** Slots the numeric columns have room for. */
  get capacity(): number {
    return this.#capacity;
  }

  /** A free slot (its numeric fields hold stale values: the caller sets every one). */
  alloc(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    if (this.#high === this.#capacity) this.#grow();
    const slot = this.#high++;
    // Keep the pointer columns packed (no holes): they are appended to in slot order.
    this.key.push(undefined);
    this.address.push(undefined);
    this.rare.push(undefined);
    return slot;
  }

  /** Gives a slot back: its strings are released and its token changes. */
  release(slot: number): void {
    this.key[slot] = undefined;
    this.address[slot] = undefined;
    this.rare[slot] = undefined;
    this.token[slot] = (this.token[slot]! + 1) | 0;
    this.next[slot] = -1;
    this.#free.push(slot);
  }

  /** Changes the slot's token (its expiry schedule moves) and returns the new one. */
  bumpToken(slot: number): number {
    const token = (this.token[slot]! + 1) | 0;
    this.token[slot] = token;
    return token;
  }

  #grow(): void {
    const capacity = this.#capacity * 2;
    this.firstSeen = grown(this.firstSeen, new Float64Array(capacity));
    this.lastSeen = grown(this.lastSeen, new Float64Array(capacity));
    this.drainUntil = grown(this.drainUntil, new Float64Array(capacity));
    this.cores = grown(this.cores, new Uint32Array(capacity));
    this.load = grown(this.load, new Uint32Array(capacity));
    this.token = grown(this.token, new Int32Array(capacity));
    this.next = grown(this.next, new Int32Array(capacity));
    this.weight = grown(this.weight, new Uint16Array(capacity));
    this.modifier1 = grown(this.modifier1, new Uint8Array(capacity));
    this.modifier2 = grown(this.modifier2, new Uint8Array(capacity));
    this.backup = grown(this.backup, new Uint8Array(capacity));
    this.flags = grown(this.flags, new Uint8Array(capacity));
    this.#capacity = capacity;
  }
}

function grown<T extends Float64Array | Uint32Array | Int32Array | Uint16Array | Uint8Array>(from: T, to: T): T {
  to.set(from as never);
  return to;
}
