/**
 * SubscriptionRegistry: the table of hosts (subscription keys) and their nodes, fed with validated
 * announcements, publishing every change as a TableEvent.
 *
 * Semantics (uWSGI's, made eager and explicit):
 *  - Node identity is (key, address). A subscribe for an unknown node adds it ('added'); for a known one
 *    it refreshes lastSeen ('refreshed', or 'updated' when a routing field changed or the node was
 *    draining: a refresh revives a death-marked node, as in uWSGI).
 *  - An unsubscribe puts the node in state 'draining' ('draining'); the router stops picking it and the
 *    composition calls `remove(key, address, 'drained')` when its last in-flight request has finished. A
 *    draining node nobody reports drained is removed after `drainTimeoutMs` ('removed', 'drain-timeout').
 *  - An active node silent for more than `toleranceMs` is removed by the sweep ('expired').
 *  - A host exists while it has at least one node (draining ones included).
 *  - Limits refuse new entries, never evict live ones: a new host beyond `maxHosts` → too-many-hosts, a
 *    new node beyond `maxNodesPerHost` → too-many-nodes, a key longer than `maxKeyLength` bytes →
 *    key-too-long. Draining nodes count towards the limits (they hold memory and connections).
 *
 * Representation (memory at a million hosts): nodes live in parallel columns indexed by slot
 * (node-columns.ts), a host is one (sharded) Map entry from its key to the slot of its first node, and the nodes of
 * a host are chained through the `next` column in subscription order. No object exists per node or per
 * host; RegisteredNode snapshots are built for events and `get()`. Strings are shared: the key in the
 * Map and the column is one string, and node addresses go through a bounded intern cache
 * (node-address-cache.ts) so that hosts served by the same backend share one address string and one
 * parsed connect target.
 *
 * Refresh path: a subscribe for a known node with the same routing fields compares, stores lastSeen
 * (and cores/load when they moved) and emits 'refreshed'; it allocates nothing in the table and touches
 * no expiry structure.
 *
 * Expiry: active nodes sit in one ExpiryWheel (deadline = lastSeen + toleranceMs, re-armed lazily when a
 * refreshed node's old entry comes due), draining nodes in a second one (deadline = drain start +
 * drainTimeoutMs), so `sweep()` costs O(due) amortised, not O(nodes) (see expiry-wheel.ts). The timer
 * started by `start()` sweeps every `sweepIntervalMs` in slices of at most `sweepBatchSize` removals,
 * `4 × sweepBatchSize` examined entries and `sweepSliceMs` of wall time, yielding to the event loop
 * (setImmediate) between slices, so a mass expiry (e.g. after a partition) never blocks request handling
 * for long. A node expires at most one wheel bucket (≤ 250 ms) after its deadline, never before.
 *
 * Events are delivered synchronously, in order, to every listener. An event caused by a listener (for
 * example a listener that calls `remove()` on 'draining') is queued and delivered after the current
 * event has reached every listener, so all listeners see the same order. A listener that throws is
 * logged and does not affect the table or the other listeners.
 *
 * `close()` stops the sweep timer; the table stays readable (the router may still drain from it).
 */
import { HostKeyMap } from '@switchyard/protocol';
import { type Logger, pino } from 'pino';
import type { Announcement } from './announcement.js';
import { type DropReason, InvalidOptionsError } from './errors.js';
import { BUDGET_SPENT, ExpiryWheel, NONE_DUE } from './expiry-wheel.js';
import { NodeAddressCache } from './node-address-cache.js';
import { FLAG_DRAINING, FLAG_HTTP, NodeColumns } from './node-columns.js';
import {
  NodeSnapshot,
  type RegisteredNode,
  rareFieldsOf,
  sameRareFields,
  type TableEvent,
  type TableListener,
} from './registered-node.js';
import {
  type AppliedChange,
  type ApplyResult,
  type RegistryMetrics,
  type RegistryOptions,
  RegistryOptionsSchema,
} from './registry-options.js';
import type { UpstreamTarget } from './upstream-target.js';

export type { AppliedChange, ApplyResult, RegistryMetrics, RegistryOptions };

/** Longest bucket of the expiry wheels (ms): the most a node can expire late beyond the sweep period. */
const MAX_BUCKET_MS = 250;
/** No next node in a host's chain. */
const END = -1;

export class SubscriptionRegistry {
  readonly #clock: () => number;
  readonly #toleranceMs: number;
  readonly #drainTimeoutMs: number;
  readonly #sweepIntervalMs: number;
  readonly #sweepBatchSize: number;
  readonly #sweepSliceMs: number;
  readonly #maxKeyLength: number;
  readonly #maxNodesPerHost: number;
  readonly #maxHosts: number;
  readonly #logger: Logger;
  /** Host key → slot of its first node (sharded: no rehash stall at a million hosts, host-key-map.ts). */
  readonly #hosts = new HostKeyMap<number>();
  readonly #nodes = new NodeColumns();
  readonly #addresses = new NodeAddressCache();
  readonly #active: ExpiryWheel;
  readonly #draining: ExpiryWheel;
  #drainingCount = 0;
  #listeners: readonly TableListener[] = [];
  #queue: TableEvent[] = [];
  #dispatching = false;
  #timer: NodeJS.Timeout | undefined;
  #slice: NodeJS.Immediate | undefined;

  /** Does no I/O. Throws InvalidOptionsError (SY_BAD_OPTIONS) for invalid options. */
  constructor(options: RegistryOptions = {}) {
    const parsed = RegistryOptionsSchema.safeParse(options);
    if (!parsed.success) throw InvalidOptionsError.fromZod('registry', parsed.error);
    const o = parsed.data;
    this.#clock = o.clock ?? Date.now;
    this.#toleranceMs = o.toleranceMs ?? 17_000;
    this.#drainTimeoutMs = o.drainTimeoutMs ?? 30_000;
    this.#sweepIntervalMs = o.sweepIntervalMs ?? 1_000;
    this.#sweepBatchSize = o.sweepBatchSize ?? 256;
    this.#sweepSliceMs = o.sweepSliceMs ?? 0.5;
    this.#maxKeyLength = o.maxKeyLength ?? 255;
    this.#maxNodesPerHost = o.maxNodesPerHost ?? 64;
    this.#maxHosts = o.maxHosts ?? 1_000_000;
    this.#logger = (o.logger ?? pino({ level: 'silent' })).child({ component: 'subscription-registry' });
    // Buckets coarser than the sweep period would delay expiry beyond it.
    const bucketMs = Math.min(this.#sweepIntervalMs, MAX_BUCKET_MS);
    const nodes = this.#nodes;
    const token = (slot: number) => nodes.token(slot);
    this.#active = new ExpiryWheel(bucketMs, { token, deadline: (slot) => nodes.lastSeen(slot) + this.#toleranceMs });
    this.#draining = new ExpiryWheel(bucketMs, { token, deadline: (slot) => nodes.drainUntil(slot) });
  }

  /** Number of hosts (keys). */
  get size(): number {
    return this.#hosts.size;
  }

  /** Number of nodes over all hosts, draining ones included. */
  get nodeCount(): number {
    return this.#nodes.size;
  }

  metrics(): RegistryMetrics {
    return {
      hosts: this.#hosts.size,
      nodes: this.#nodes.size,
      draining: this.#drainingCount,
      sweepExamined: this.#active.examined + this.#draining.examined,
      wheelEntries: this.#active.entryCount + this.#draining.entryCount,
      slotCapacity: this.#nodes.capacity,
    };
  }

  /** Applies one validated announcement. Never throws; a refusal says why. */
  apply(a: Announcement): ApplyResult {
    return a.command === 'subscribe' ? this.#subscribe(a) : this.#unsubscribe(a);
  }

  /**
   * Deletes a node: 'drained' when the router reports a draining node has no in-flight request left,
   * 'admin' for an operator action. Returns false when the node is not registered.
   */
  remove(key: string, address: string, reason: 'drained' | 'admin'): boolean {
    const slot = this.#find(key, address);
    if (slot === END) return false;
    const node = this.#snapshot(slot);
    this.#delete(slot);
    this.#emit({ type: 'removed', node, reason });
    return true;
  }

  /**
   * Expires active nodes silent for more than toleranceMs and removes draining nodes older than
   * drainTimeoutMs, at the injected clock's current time. Processes at most `limit` nodes (default: all
   * that are due). Returns how many nodes it removed.
   */
  sweep(limit = Number.POSITIVE_INFINITY): number {
    return this.#sweepSome(limit, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY).removed;
  }

  /** Adds a listener; returns the function that removes it. */
  onEvent(listener: TableListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  /** Snapshots of the nodes of `key` (a normalised host key) in subscription order, or undefined. Frozen. */
  get(key: string): readonly RegisteredNode[] | undefined {
    let slot = this.#hosts.get(key);
    if (slot === undefined) return undefined;
    const nodes: RegisteredNode[] = [];
    for (; slot !== END; slot = this.#nodes.next(slot)) nodes.push(this.#snapshot(slot));
    return Object.freeze(nodes);
  }

  /** The registered keys (in no particular order). */
  hosts(): IterableIterator<string> {
    return this.#hosts.keys();
  }

  /**
   * Where to connect for a node address (as in RegisteredNode.address): the parsed target, shared by
   * every node with that address while it stays in the intern cache. Undefined for an invalid address.
   */
  targetOf(address: string): UpstreamTarget | undefined {
    return this.#addresses.target(address);
  }

  /** Starts the periodic sweep. Idempotent. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#sweepSlice(), this.#sweepIntervalMs);
    this.#timer.unref();
  }

  /** Stops the periodic sweep. Safe to call twice; the table stays readable. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#slice !== undefined) clearImmediate(this.#slice);
    this.#timer = undefined;
    this.#slice = undefined;
  }

  #sweepSlice(): void {
    this.#slice = undefined;
    const batch = this.#sweepBatchSize;
    const { more } = this.#sweepSome(batch, 4 * batch, performance.now() + this.#sweepSliceMs);
    if (more && this.#timer !== undefined) this.#slice = setImmediate(() => this.#sweepSlice());
  }

  /**
   * Removes due nodes until `limit` removals, `budget` examined entries or the wall-clock `until`
   * (performance.now() ms, checked after each removal or 32 examined entries) is reached. `more`: work
   * may remain.
   */
  #sweepSome(limit: number, budget: number, until: number): { removed: number; more: boolean } {
    const now = this.#clock();
    let removed = 0;
    let spent = 0;
    for (const wheel of [this.#active, this.#draining]) {
      const expired = wheel === this.#active;
      for (;;) {
        if (removed >= limit) return { removed, more: true };
        const before = wheel.examined;
        const slot = wheel.pollDue(now, Math.min(32, budget - spent));
        spent += wheel.examined - before;
        if (slot === NONE_DUE) break;
        if (slot !== BUDGET_SPENT) {
          const node = this.#snapshot(slot);
          this.#delete(slot);
          this.#emit(expired ? { type: 'expired', node } : { type: 'removed', node, reason: 'drain-timeout' });
          removed++;
        }
        if (spent >= budget || (until !== Number.POSITIVE_INFINITY && performance.now() >= until)) {
          return { removed, more: true };
        }
      }
    }
    return { removed, more: false };
  }

  #subscribe(a: Announcement): ApplyResult {
    const key = a.key;
    if (key.length * 3 > this.#maxKeyLength) {
      const keyBytes = Buffer.byteLength(key, 'utf8');
      if (keyBytes > this.#maxKeyLength) {
        return refuse('key-too-long', `key of ${keyBytes} bytes exceeds ${this.#maxKeyLength}`);
      }
    }
    const nodes = this.#nodes;
    const head = this.#hosts.get(key);
    let tail = END;
    let count = 0;
    if (head !== undefined) {
      for (let slot = head; slot !== END; slot = nodes.next(slot)) {
        if (nodes.address(slot) === a.address) return this.#refresh(slot, a);
        tail = slot;
        count++;
      }
      if (count >= this.#maxNodesPerHost) {
        return refuse('too-many-nodes', `host already has ${this.#maxNodesPerHost} nodes`);
      }
    } else if (this.#hosts.size >= this.#maxHosts) {
      return refuse('too-many-hosts', `already ${this.#maxHosts} hosts`);
    }
    const now = this.#clock();
    const slot = nodes.alloc();
    nodes.setKey(slot, head === undefined ? key : nodes.key(head));
    nodes.setAddress(slot, this.#addresses.intern(a.address));
    nodes.setNext(slot, END);
    nodes.setFirstSeen(slot, now);
    this.#store(slot, a, now);
    if (head === undefined) this.#hosts.set(key, slot);
    else nodes.setNext(tail, slot);
    this.#active.schedule(slot, nodes.bumpToken(slot), now + this.#toleranceMs);
    this.#emit({ type: 'added', node: this.#snapshot(slot) });
    return ADDED;
  }

  /** A subscribe for a registered node. */
  #refresh(slot: number, a: Announcement): ApplyResult {
    const nodes = this.#nodes;
    const now = this.#clock();
    const flags = nodes.flags(slot);
    const rare = nodes.rare(slot);
    const routing =
      nodes.weight(slot) !== a.weight ||
      (flags & FLAG_HTTP) !== (a.protocol === 'http' ? FLAG_HTTP : 0) ||
      nodes.backup(slot) !== a.backup ||
      rare?.algo !== a.algo ||
      nodes.modifier1(slot) !== a.modifier1 ||
      nodes.modifier2(slot) !== a.modifier2;
    if (!routing && (flags & FLAG_DRAINING) === 0) {
      // The fast path: the expiry wheel re-arms lazily from lastSeen (expiry-wheel.ts).
      nodes.setLastSeen(slot, now);
      nodes.setCores(slot, a.cores);
      nodes.setLoad(slot, a.load);
      if (!sameRareFields(rare, a)) nodes.setRare(slot, rareFieldsOf(a));
      this.#emit({ type: 'refreshed', node: this.#snapshot(slot) });
      return REFRESHED;
    }
    const previous = this.#snapshot(slot);
    this.#store(slot, a, now);
    if ((flags & FLAG_DRAINING) !== 0) {
      this.#drainingCount--;
      this.#active.schedule(slot, nodes.bumpToken(slot), now + this.#toleranceMs);
    }
    this.#emit({ type: 'updated', node: this.#snapshot(slot), previous });
    return UPDATED;
  }

  /** Writes an accepted subscribe into a slot: every field of the announcement, active, seen now. */
  #store(slot: number, a: Announcement, now: number): void {
    const nodes = this.#nodes;
    nodes.setLastSeen(slot, now);
    nodes.setWeight(slot, a.weight);
    nodes.setModifier1(slot, a.modifier1);
    nodes.setModifier2(slot, a.modifier2);
    nodes.setBackup(slot, a.backup);
    nodes.setCores(slot, a.cores);
    nodes.setLoad(slot, a.load);
    nodes.setFlags(slot, a.protocol === 'http' ? FLAG_HTTP : 0);
    nodes.setRare(slot, sameRareFields(nodes.rare(slot), a) ? nodes.rare(slot) : rareFieldsOf(a));
  }

  #unsubscribe(a: Announcement): ApplyResult {
    const slot = this.#find(a.key, a.address);
    if (slot === END) return refuse('unknown-node', 'unsubscribe for a node that is not registered');
    const nodes = this.#nodes;
    if ((nodes.flags(slot) & FLAG_DRAINING) !== 0) return DRAINING;
    nodes.setFlags(slot, nodes.flags(slot) | FLAG_DRAINING);
    this.#drainingCount++;
    const until = this.#clock() + this.#drainTimeoutMs;
    nodes.setDrainUntil(slot, until);
    this.#draining.schedule(slot, nodes.bumpToken(slot), until);
    this.#emit({ type: 'draining', node: this.#snapshot(slot) });
    return DRAINING;
  }

  /** The slot of (key, address), or END. */
  #find(key: string, address: string): number {
    const head = this.#hosts.get(key);
    if (head === undefined) return END;
    const nodes = this.#nodes;
    for (let slot = head; slot !== END; slot = nodes.next(slot)) {
      if (nodes.address(slot) === address) return slot;
    }
    return END;
  }

  /** Unlinks a slot from its host (deleting the host with its last node) and frees it. */
  #delete(slot: number): void {
    const nodes = this.#nodes;
    const key = nodes.key(slot);
    const head = this.#hosts.get(key)!;
    const next = nodes.next(slot);
    if (head === slot) {
      if (next === END) this.#hosts.delete(key);
      else this.#hosts.set(key, next);
    } else {
      let prev = head;
      while (nodes.next(prev) !== slot) prev = nodes.next(prev);
      nodes.setNext(prev, next);
    }
    if ((nodes.flags(slot) & FLAG_DRAINING) !== 0) this.#drainingCount--;
    nodes.release(slot);
  }

  #snapshot(slot: number): RegisteredNode {
    const nodes = this.#nodes;
    const flags = nodes.flags(slot);
    return new NodeSnapshot(
      nodes.key(slot),
      nodes.address(slot),
      (flags & FLAG_HTTP) !== 0 ? 'http' : 'uwsgi',
      nodes.weight(slot),
      nodes.modifier1(slot),
      nodes.modifier2(slot),
      nodes.cores(slot),
      nodes.load(slot),
      nodes.backup(slot),
      (flags & FLAG_DRAINING) !== 0 ? 'draining' : 'active',
      nodes.firstSeen(slot),
      nodes.lastSeen(slot),
      nodes.rare(slot),
    );
  }

  #emit(event: TableEvent): void {
    this.#queue.push(event);
    if (this.#dispatching) return;
    this.#dispatching = true;
    try {
      for (let i = 0; i < this.#queue.length; i++) {
        const queued = this.#queue[i]!;
        for (const listener of this.#listeners) {
          try {
            listener(queued);
          } catch (err) {
            this.#logger.error({ err, event: queued.type, key: queued.node.key }, 'table event listener failed');
          }
        }
      }
    } finally {
      this.#queue.length = 0;
      this.#dispatching = false;
    }
  }
}

const ADDED: ApplyResult = Object.freeze({ accepted: true, change: 'added' });
const REFRESHED: ApplyResult = Object.freeze({ accepted: true, change: 'refreshed' });
const UPDATED: ApplyResult = Object.freeze({ accepted: true, change: 'updated' });
const DRAINING: ApplyResult = Object.freeze({ accepted: true, change: 'draining' });

function refuse(reason: DropReason, detail: string): ApplyResult {
  return { accepted: false, reason, detail };
}
