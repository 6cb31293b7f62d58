/**
 * NodeColumns: the registry's nodes as fixed-size records in pages of typed memory, indexed by a slot
 * number, instead of one object per node. At a million nodes an object per node costs its header, 8 bytes
 * per field and a 16-byte heap number per timestamp, all traced by the garbage collector; here a node is
 * a 48-byte record plus three pointers, and nothing the collector has to walk except those pointers.
 *
 * Record (48 bytes): firstSeen, lastSeen, drainUntil (float64 ms); cores, load (uint32); token, next
 * (int32); weight (uint16); modifier1, modifier2, backup, flags (uint8). One record shares a cache line
 * or two: a refresh touches one place, not one array per field. Pointers (key, address, rare) live in
 * plain arrays paged the same way.
 *
 * Pages hold 4 096 slots and are added one at a time: capacity exceeds the peak by at most one page (no
 * doubling slack), and growing never copies existing records (no stall while a million hosts arrive).
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

const PAGE_BITS = 12;
const PAGE = 1 << PAGE_BITS;
const MASK = PAGE - 1;
const RECORD = 48;

/** One page: a record buffer seen through four typed views, and the pointer arrays. */
class Page {
  readonly f64: Float64Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly u16: Uint16Array;
  readonly u8: Uint8Array;
  readonly key: (string | undefined)[] = new Array<string | undefined>(PAGE).fill(undefined);
  readonly address: (string | undefined)[] = new Array<string | undefined>(PAGE).fill(undefined);
  readonly rare: (NodeRare | undefined)[] = new Array<NodeRare | undefined>(PAGE).fill(undefined);

  constructor() {
    const buffer = new ArrayBuffer(PAGE * RECORD);
    this.f64 = new Float64Array(buffer);
    this.u32 = new Uint32Array(buffer);
    this.i32 = new Int32Array(buffer);
    this.u16 = new Uint16Array(buffer);
    this.u8 = new Uint8Array(buffer);
  }
}

// Field offsets, in units of each view (record i starts at f64 6i, u32/i32 12i, u16 24i, u8 48i).
const FIRST_SEEN = 0;
const LAST_SEEN = 1;
const DRAIN_UNTIL = 2;
const CORES = 6;
const LOAD = 7;
const TOKEN = 8;
const NEXT = 9;
const WEIGHT = 20;
const MODIFIER1 = 42;
const MODIFIER2 = 43;
const BACKUP = 44;
const FLAGS = 45;

export class NodeColumns {
  readonly #pages: Page[] = [];
  /** Slots ever handed out: slots ≥ this were never used. */
  #high = 0;
  readonly #free: number[] = [];

  /** Slots in use. */
  get size(): number {
    return this.#high - this.#free.length;
  }

  /** Slots the pages have room for. */
  get capacity(): number {
    return this.#pages.length * PAGE;
  }

  /** A free slot (its numeric fields hold stale values: the caller sets every one). */
  alloc(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    if (this.#high === this.capacity) this.#pages.push(new Page());
    return this.#high++;
  }

  /** Gives a slot back: its strings are released and its token changes. */
  release(slot: number): void {
    const page = this.#pages[slot >>> PAGE_BITS]!;
    const i = slot & MASK;
    page.key[i] = undefined;
    page.address[i] = undefined;
    page.rare[i] = undefined;
    page.i32[i * 12 + TOKEN] = (page.i32[i * 12 + TOKEN]! + 1) | 0;
    page.i32[i * 12 + NEXT] = -1;
    this.#free.push(slot);
  }

  /** Changes the slot's token (its expiry schedule moves) and returns the new one. */
  bumpToken(slot: number): number {
    const page = this.#pages[slot >>> PAGE_BITS]!;
    const at = (slot & MASK) * 12 + TOKEN;
    const token = (page.i32[at]! + 1) | 0;
    page.i32[at] = token;
    return token;
  }

  key(slot: number): string {
    return this.#pages[slot >>> PAGE_BITS]!.key[slot & MASK]!;
  }
  setKey(slot: number, key: string): void {
    this.#pages[slot >>> PAGE_BITS]!.key[slot & MASK] = key;
  }
  address(slot: number): string {
    return this.#pages[slot >>> PAGE_BITS]!.address[slot & MASK]!;
  }
  setAddress(slot: number, address: string): void {
    this.#pages[slot >>> PAGE_BITS]!.address[slot & MASK] = address;
  }
  rare(slot: number): NodeRare | undefined {
    return this.#pages[slot >>> PAGE_BITS]!.rare[slot & MASK];
  }
  setRare(slot: number, rare: NodeRare | undefined): void {
    this.#pages[slot >>> PAGE_BITS]!.rare[slot & MASK] = rare;
  }

  firstSeen(slot: number): number {
    return this.#pages[slot >>> PAGE_BITS]!.f64[(slot & MASK) * 6 + FIRST_SEEN]!;
  }
  setFirstSeen(slot: number, ms: number): void {
    this.#pages[slot >>> PAGE_BITS]!.f64[(slot & MASK) * 6 + FIRST_SEEN] = ms;
  }
  lastSeen(slot: number): number {
    return this.#pages[slot >>> PAGE_BITS]!.f64[(slot & MASK) * 6 + LAST_SEEN]!;
  }
  setLastSeen(slot: number, ms: number): void {
    this.#pages[slot >>> PAGE_BITS]!.f64[(slot & MASK) * 6 + LAST_SEEN] = ms;
  }
  drainUntil(slot: number): number {
    return this.#pages[slot >>> PAGE_BITS]!.f64[(slot & MASK) * 6 + DRAIN_UNTIL]!;
  }
  setDrainUntil(slot: number, ms: number): void {
    this.#pages[slot >>> PAGE_BITS]!.f64[(slot & MASK) * 6 + DRAIN_UNTIL] = ms;
  }

  cores(slot: number): number {
    return this.#pages[slot >>> PAGE_BITS]!.u32[(slot & MASK) * 12 + CORES]!;
  }
  setCores(slot: number, value: number): void {
    this.#pages[slot >>> PAGE_BITS]!.u32[(slot & MASK) * 12 + CORES] = value;
  }
  load(slot: number): number {
    return this.#pages[slot >>> PAGE_BITS]!.u32[(slot & MASK) * 12 + LOAD]!;
  }
  setLoad(slot: number, value: number): void {
    this.#pages[slot >>> PAGE_BITS]!.u32[(slot & MASK) * 12 + LOAD] = value;
  }
  token(slot: number): number {
    return this.#pages[slot >>> PAGE_BITS]!.i32[(slot & MASK) * 12 + TOKEN]!;
  }
  next(slot: number): number {
    return this.#pages[slot >>> PAGE_BITS]!.i32[(slot & MASK) * 12 + NEXT]!;
  }
  setNext(slot: number, next: number): void {
    this.#pages[slot >>> PAGE_BITS]!.i32[(slot & MASK) * 12 + NEXT] = next;
  }

  weight(slot: number): number {
    return this.#pages[slot >>> PAGE_BITS]!.u16[(slot & MASK) * 24 + WEIGHT]!;
  }
  setWeight(slot: number, value: number): void {
    this.#pages[slot >>> PAGE_BITS]!.u16[(slot & MASK) * 24 + WEIGHT] = value;
  }
  modifier1(slot: number): number {
    return this.#pages[slot >>> PAGE_BITS]!.u8[(slot & MASK) * RECORD + MODIFIER1]!;
  }
  setModifier1(slot: number, value: number): void {
    this.#pages[slot >>> PAGE_BITS]!.u8[(slot & MASK) * RECORD + MODIFIER1] = value;
  }
  modifier2(slot: number): number {
    return this.#pages[slot >>> PAGE_BITS]!.u8[(slot & MASK) * RECORD + MODIFIER2]!;
  }
  setModifier2(slot: number, value: number): void {
    this.#pages[slot >>> PAGE_BITS]!.u8[(slot & MASK) * RECORD + MODIFIER2] = value;
  }
  backup(slot: number): number {
    return this.#pages[slot >>> PAGE_BITS]!.u8[(slot & MASK) * RECORD + BACKUP]!;
  }
  setBackup(slot: number, value: number): void {
    this.#pages[slot >>> PAGE_BITS]!.u8[(slot & MASK) * RECORD + BACKUP] = value;
  }
  flags(slot: number): number {
    return this.#pages[slot >>> PAGE_BITS]!.u8[(slot & MASK) * RECORD + FLAGS]!;
  }
  setFlags(slot: number, value: number): void {
    this.#pages[slot >>> PAGE_BITS]!.u8[(slot & MASK) * RECORD + FLAGS] = value;
  }
}
