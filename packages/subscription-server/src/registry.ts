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
 * Expiry: active nodes sit in one DeadlineWheel (deadline = lastSeen + toleranceMs), draining nodes in a
 * second one (deadline = drain start + drainTimeoutMs), so `sweep()` costs O(due) amortised, not
 * O(nodes) (see deadline-wheel.ts). The timer started by `start()` sweeps every `sweepIntervalMs` in
 * slices of `sweepBatchSize` nodes, yielding to the event loop (setImmediate) between slices, so a mass
 * expiry (e.g. after a partition) never blocks request handling for long.
 *
 * Events are delivered synchronously, in order, to every listener. An event caused by a listener (for
 * example a listener that calls `remove()` on 'draining') is queued and delivered after the current
 * event has reached every listener, so all listeners see the same order. A listener that throws is
 * logged and does not affect the table or the other listeners.
 *
 * `close()` stops the sweep timer; the table stays readable (the router may still drain from it).
 */
import { type Logger, pino } from 'pino';
import { z } from 'zod';
import type { Announcement } from './announcement.js';
import { DeadlineWheel, type WheelItem } from './deadline-wheel.js';
import { type DropReason, InvalidOptionsError } from './errors.js';
import {
  makeNode,
  type RegisteredNode,
  routingChanged,
  type TableEvent,
  type TableListener,
} from './registered-node.js';

/** What an accepted announcement did: the TableEvent it emitted ('draining' also for a repeated unsubscribe). */
export type AppliedChange = 'added' | 'refreshed' | 'updated' | 'draining';

export type ApplyResult =
  | { readonly accepted: true; readonly change: AppliedChange }
  | { readonly accepted: false; readonly reason: DropReason; readonly detail: string };

export interface RegistryOptions {
  /** ms; default Date.now. */
  clock?: () => number;
  /** Silence longer than this (ms) expires an active node. Default 17_000 (uWSGI). */
  toleranceMs?: number;
  /** A draining node is removed after this (ms) even if nobody reported it drained. Default 30_000. */
  drainTimeoutMs?: number;
  /** Period (ms) of the sweep timer started by start(). Default 1_000. */
  sweepIntervalMs?: number;
  /** Largest number of nodes one timer slice expires before yielding to the event loop. Default 1_000. */
  sweepBatchSize?: number;
  /** Longest accepted key in bytes. Default 255. */
  maxKeyLength?: number;
  /** Default 64. */
  maxNodesPerHost?: number;
  /** Default 1_000_000. */
  maxHosts?: number;
  /** Receives listener failures; default: a silent logger. */
  logger?: Logger;
}

/** Introspection counters (also exported as metrics by the composition). */
export interface RegistryMetrics {
  readonly hosts: number;
  readonly nodes: number;
  readonly draining: number;
  /** Wheel entries looked at by sweeps since creation: stays proportional to the nodes that were due. */
  readonly sweepExamined: number;
  /** Wheel entries held, stale ones included. */
  readonly wheelEntries: number;
}

const positiveInt = z.number().int().positive();

const OptionsSchema = z.strictObject({
  clock: z.custom<() => number>((v) => typeof v === 'function', 'clock must be a function').optional(),
  toleranceMs: positiveInt.optional(),
  drainTimeoutMs: positiveInt.optional(),
  sweepIntervalMs: positiveInt.optional(),
  sweepBatchSize: positiveInt.optional(),
  maxKeyLength: positiveInt.max(255).optional(),
  maxNodesPerHost: positiveInt.optional(),
  maxHosts: positiveInt.optional(),
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null, 'logger must be a pino logger').optional(),
});

interface NodeRecord extends WheelItem {
  node: RegisteredNode;
}

interface HostEntry {
  /**
   * Subscription order (balancers such as uWSGI's WRR depend on it). An array, not a Map: hosts have
   * few nodes (≤ maxNodesPerHost, usually 1–4) and a Map per host would dominate memory at 1M hosts.
   */
  readonly nodes: NodeRecord[];
  /** Frozen array handed out by get(); rebuilt lazily after a change. */
  snapshot: readonly RegisteredNode[] | undefined;
}

export class SubscriptionRegistry {
  readonly #clock: () => number;
  readonly #toleranceMs: number;
  readonly #drainTimeoutMs: number;
  readonly #sweepIntervalMs: number;
  readonly #sweepBatchSize: number;
  readonly #maxKeyLength: number;
  readonly #maxNodesPerHost: number;
  readonly #maxHosts: number;
  readonly #logger: Logger;
  readonly #hosts = new Map<string, HostEntry>();
  readonly #active: DeadlineWheel<NodeRecord>;
  readonly #draining: DeadlineWheel<NodeRecord>;
  #nodeCount = 0;
  #drainingCount = 0;
  #listeners: readonly TableListener[] = [];
  #queue: TableEvent[] = [];
  #dispatching = false;
  #timer: NodeJS.Timeout | undefined;
  #slice: NodeJS.Immediate | undefined;

  /** Does no I/O. Throws InvalidOptionsError (SY_BAD_OPTIONS) for invalid options. */
  constructor(options: RegistryOptions = {}) {
    const parsed = OptionsSchema.safeParse(options);
    if (!parsed.success) throw InvalidOptionsError.fromZod('registry', parsed.error);
    const o = parsed.data;
    this.#clock = o.clock ?? Date.now;
    this.#toleranceMs = o.toleranceMs ?? 17_000;
    this.#drainTimeoutMs = o.drainTimeoutMs ?? 30_000;
    this.#sweepIntervalMs = o.sweepIntervalMs ?? 1_000;
    this.#sweepBatchSize = o.sweepBatchSize ?? 1_000;
    this.#maxKeyLength = o.maxKeyLength ?? 255;
    this.#maxNodesPerHost = o.maxNodesPerHost ?? 64;
    this.#maxHosts = o.maxHosts ?? 1_000_000;
    this.#logger = (o.logger ?? pino({ level: 'silent' })).child({ component: 'subscription-registry' });
    // Buckets finer than the sweep period buy nothing; coarser than 1 s would delay early-stops.
    const bucketMs = Math.min(this.#sweepIntervalMs, 1_000);
    this.#active = new DeadlineWheel(bucketMs);
    this.#draining = new DeadlineWheel(bucketMs);
  }

  /** Number of hosts (keys). */
  get size(): number {
    return this.#hosts.size;
  }

  /** Number of nodes over all hosts, draining ones included. */
  get nodeCount(): number {
    return this.#nodeCount;
  }

  metrics(): RegistryMetrics {
    return {
      hosts: this.#hosts.size,
      nodes: this.#nodeCount,
      draining: this.#drainingCount,
      sweepExamined: this.#active.examined + this.#draining.examined,
      wheelEntries: this.#active.entryCount + this.#draining.entryCount,
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
    const record = findNode(this.#hosts.get(key), address);
    if (record === undefined) return false;
    this.#delete(record);
    this.#emit({ type: 'removed', node: record.node, reason });
    return true;
  }

  /**
   * Expires active nodes silent for more than toleranceMs and removes draining nodes older than
   * drainTimeoutMs, at the injected clock's current time. Processes at most `limit` nodes (default: all
   * that are due). Returns how many nodes it removed.
   */
  sweep(limit = Number.POSITIVE_INFINITY): number {
    const now = this.#clock();
    let changed = 0;
    while (changed < limit) {
      const record = this.#active.pollDue(now);
      if (record === undefined) break;
      this.#delete(record);
      this.#emit({ type: 'expired', node: record.node });
      changed++;
    }
    while (changed < limit) {
      const record = this.#draining.pollDue(now);
      if (record === undefined) break;
      this.#delete(record);
      this.#emit({ type: 'removed', node: record.node, reason: 'drain-timeout' });
      changed++;
    }
    return changed;
  }

  /** Adds a listener; returns the function that removes it. */
  onEvent(listener: TableListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  /** The nodes of `key` (a normalised host key) in subscription order, or undefined. Frozen. */
  get(key: string): readonly RegisteredNode[] | undefined {
    const host = this.#hosts.get(key);
    if (host === undefined) return undefined;
    if (host.snapshot === undefined) {
      host.snapshot = Object.freeze(host.nodes.map((r) => r.node));
    }
    return host.snapshot;
  }

  /** The registered keys. */
  hosts(): IterableIterator<string> {
    return this.#hosts.keys();
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
    if (this.sweep(this.#sweepBatchSize) >= this.#sweepBatchSize && this.#timer !== undefined) {
      this.#slice = setImmediate(() => this.#sweepSlice());
    }
  }

  #subscribe(a: Announcement): ApplyResult {
    const keyBytes = Buffer.byteLength(a.key, 'utf8');
    if (keyBytes > this.#maxKeyLength) {
      return refuse('key-too-long', `key of ${keyBytes} bytes exceeds ${this.#maxKeyLength}`);
    }
    const now = this.#clock();
    let host = this.#hosts.get(a.key);
    const record = findNode(host, a.address);
    if (record !== undefined && host !== undefined) {
      const previous = record.node;
      const node = makeNode(a, 'active', previous.firstSeen, now);
      record.node = node;
      if (previous.state === 'draining') this.#drainingCount--;
      this.#active.schedule(record, now + this.#toleranceMs);
      host.snapshot = undefined;
      if (previous.state === 'draining' || routingChanged(previous, node)) {
        this.#emit({ type: 'updated', node, previous });
        return UPDATED;
      }
      this.#emit({ type: 'refreshed', node });
      return REFRESHED;
    }
    if (host === undefined) {
      if (this.#hosts.size >= this.#maxHosts) return refuse('too-many-hosts', `already ${this.#maxHosts} hosts`);
      host = { nodes: [], snapshot: undefined };
      this.#hosts.set(a.key, host);
    } else if (host.nodes.length >= this.#maxNodesPerHost) {
      return refuse('too-many-nodes', `host already has ${this.#maxNodesPerHost} nodes`);
    }
    const node = makeNode(a, 'active', now, now);
    const created: NodeRecord = { node, wheelToken: 0 };
    host.nodes.push(created);
    host.snapshot = undefined;
    this.#nodeCount++;
    this.#active.schedule(created, now + this.#toleranceMs);
    this.#emit({ type: 'added', node });
    return ADDED;
  }

  #unsubscribe(a: Announcement): ApplyResult {
    const host = this.#hosts.get(a.key);
    const record = findNode(host, a.address);
    if (record === undefined || host === undefined) {
      return refuse('unknown-node', 'unsubscribe for a node that is not registered');
    }
    if (record.node.state === 'draining') return DRAINING;
    const node: RegisteredNode = Object.freeze({ ...record.node, state: 'draining' });
    record.node = node;
    this.#drainingCount++;
    this.#draining.schedule(record, this.#clock() + this.#drainTimeoutMs);
    host.snapshot = undefined;
    this.#emit({ type: 'draining', node });
    return DRAINING;
  }

  /** Unlinks a record from its host, the wheels and the counters. */
  #delete(record: NodeRecord): void {
    const { key, state } = record.node;
    const host = this.#hosts.get(key);
    const index = host === undefined ? -1 : host.nodes.indexOf(record);
    if (host === undefined || index < 0) return;
    DeadlineWheel.cancel(record);
    host.nodes.splice(index, 1);
    host.snapshot = undefined;
    if (host.nodes.length === 0) this.#hosts.delete(key);
    this.#nodeCount--;
    if (state === 'draining') this.#drainingCount--;
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
      this.#queue = [];
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

function findNode(host: HostEntry | undefined, address: string): NodeRecord | undefined {
  if (host === undefined) return undefined;
  for (const record of host.nodes) if (record.node.address === address) return record;
  return undefined;
}
