/**
 * Operator changes to the node table (the admin API's writes), and how they coexist with subscriptions.
 *
 * Precedence (documented in the README):
 *  1. Admin-added nodes (`POST /v1/vhosts/:host/nodes`, source 'admin') live until deleted or until their
 *     TTL; an admin node and a subscribed node with the same (host, address) are one node: the admin one
 *     wins, announcements for that address do not change it, and when the admin node is deleted the
 *     subscription (if still alive) takes the slot back.
 *  2. Overrides (`PATCH .../nodes/:address` with `state` and/or `weight`) apply to any node — subscribed,
 *     admin or static — and survive announcements and routing updates of that node, until the node leaves
 *     the table or is patched back (`state: 'active'`, `weight: null`).
 *  3. A node is draining when its source says so (an unsubscribe) OR an operator says so; `state: 'active'`
 *     lifts only the operator's drain. An operator-drained node stays in the table, out of rotation ("held").
 *  4. `DELETE` drains the node and removes it once its in-flight requests finished (or at once when none):
 *     an admin or static node is gone; a subscribed node is removed from the registry too, and comes back
 *     with its next announcement (to keep it out, PATCH it to draining instead).
 *
 * Time is the injected clock (ms); the TTL sweep runs every `sweepIntervalMs` (1 s) once started.
 */
import { RouterError } from './errors.js';
import type { EventLog } from './event-log.js';
import type { NodeProtocol, NodeSource, NodeState, UpstreamTarget, VhostNode, VhostTable } from './vhost-table.js';

export interface ParsedNodeAddress {
  readonly address: string;
  readonly target: UpstreamTarget;
}

/** What the operator needs from the router that owns it. */
export interface OperatorHost {
  readonly table: VhostTable;
  /** Sets a node's effective state as given (no override logic). */
  applyNodeState(key: string, address: string, state: NodeState): void;
  removeNode(key: string, address: string, source?: NodeSource): void;
  /** Adds or replaces a node as a source does (balancer bookkeeping: slow start for a newcomer). */
  upsertNode(node: VhostNode): void;
  onNodeDrained(listener: (key: string, address: string) => void): () => void;
}

export interface OperatorOptions {
  readonly clock: () => number;
  readonly events: EventLog;
  /** Parses and normalises a node address (the composition passes the subscription server's parser). */
  readonly parseAddress: (text: string) => ParsedNodeAddress | undefined;
  readonly sweepIntervalMs?: number;
}

export interface NewNode {
  readonly address: string;
  readonly protocol: NodeProtocol;
  readonly weight: number;
  readonly ttlSeconds?: number | undefined;
}

export interface NodePatch {
  readonly state?: NodeState | undefined;
  /** A weight override; null removes it (back to the source's weight). */
  readonly weight?: number | null | undefined;
}

interface Override {
  /** The operator's drain. */
  drained: boolean;
  weight: number | undefined;
  /** DELETE in progress: drain, then remove. */
  deleting: boolean;
  /** The state the node's own source wants (subscription/admin/static). */
  base: NodeState;
  /** The weight the node's own source wants. */
  baseWeight: number;
}

const id = (key: string, address: string): string => `${key}\n${address}`;

export class OperatorControl {
  private readonly host: OperatorHost;
  private readonly options: OperatorOptions;
  private readonly overrides = new Map<string, Override>();
  /** Admin nodes with a TTL: id → expiry (ms). */
  private readonly expiries = new Map<string, { key: string; address: string; at: number }>();
  /** Restores a shadowed subscription after its admin twin is removed (set by the composition). */
  restore: (key: string, address: string) => VhostNode | undefined = () => undefined;
  /**
   * Removes a deleted subscribed node at its source (set by the composition: the registry, which then
   * removes it from the table); false when the source does not know it (the node is then removed here).
   */
  removeSubscription: (key: string, address: string) => boolean = () => false;
  private timer: NodeJS.Timeout | undefined;

  constructor(host: OperatorHost, options: OperatorOptions) {
    this.host = host;
    this.options = options;
    host.onNodeDrained((key, address) => this.drained(key, address));
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.sweep(), this.options.sweepIntervalMs ?? 1000);
    this.timer.unref();
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  // --- hooks called by the router for source-driven changes ----------------------------------------

  /** The node a source (subscription, static) wants in the table, after admin precedence and overrides. */
  admit(incoming: VhostNode): VhostNode | undefined {
    const current = this.host.table.node(incoming.key, incoming.address);
    if (current?.source === 'admin' && incoming.source !== 'admin') return undefined;
    const o = this.overrides.get(id(incoming.key, incoming.address));
    if (o === undefined) return incoming;
    o.base = incoming.state;
    o.baseWeight = incoming.weight;
    return this.effective(incoming, o);
  }

  /** The state to apply when a source changes a node's state. */
  admitState(key: string, address: string, state: NodeState): NodeState {
    const o = this.overrides.get(id(key, address));
    if (o === undefined) return state;
    o.base = state;
    return o.drained || o.deleting ? 'draining' : state;
  }

  /** A node left the table: its overrides and TTL go with it. */
  forget(key: string, address: string): void {
    this.overrides.delete(id(key, address));
    this.expiries.delete(id(key, address));
  }

  /** True while an operator drain keeps a node in the table out of rotation (not on its way out). */
  holds(key: string, address: string): boolean {
    const o = this.overrides.get(id(key, address));
    return o?.drained === true && !o.deleting && o.base === 'active';
  }

  /**
   * Whether a subscribed node reported drained should now leave the registry: it is still in the table as
   * a draining subscription node and no operator drain holds it (an admin node's drain, or one whose slot
   * was just given back to its subscription, must not remove the subscription).
   */
  releases(key: string, address: string): boolean {
    const node = this.host.table.node(key, address);
    return node?.source === 'subscription' && node.state === 'draining' && !this.holds(key, address);
  }

  /** Operator overrides of a node, for the admin API. */
  overrideOf(
    key: string,
    address: string,
  ): { drained: boolean; weight: number | undefined; deleting: boolean } | undefined {
    const o = this.overrides.get(id(key, address));
    return o === undefined ? undefined : { drained: o.drained, weight: o.weight, deleting: o.deleting };
  }

  /** ms timestamp when an admin node expires, if it has a TTL. */
  expiryOf(key: string, address: string): number | undefined {
    return this.expiries.get(id(key, address))?.at;
  }

  // --- admin API writes --------------------------------------------------------------------------

  /** Adds an admin node. Throws SY_INVALID_BODY (bad address) or SY_NODE_EXISTS. */
  addNode(key: string, spec: NewNode): VhostNode {
    const parsed = this.options.parseAddress(spec.address);
    if (parsed === undefined) throw new RouterError('SY_INVALID_BODY', `invalid node address "${spec.address}"`);
    const current = this.host.table.node(key, parsed.address);
    if (current !== undefined && current.source !== 'subscription') {
      throw new RouterError('SY_NODE_EXISTS', `${key} already has node ${parsed.address}`);
    }
    const node: VhostNode = {
      key,
      address: parsed.address,
      target: parsed.target,
      protocol: spec.protocol,
      weight: spec.weight,
      modifier1: 0,
      modifier2: 0,
      backup: 0,
      source: 'admin',
      state: 'active',
    };
    this.overrides.delete(id(key, parsed.address));
    // As a subscription would: a node joining a host that already serves ramps up under slow start.
    this.host.upsertNode(node);
    if (spec.ttlSeconds !== undefined) {
      this.expiries.set(id(key, parsed.address), {
        key,
        address: parsed.address,
        at: this.options.clock() + spec.ttlSeconds * 1000,
      });
    }
    this.options.events.record({
      type: 'added',
      host: key,
      node: parsed.address,
      source: 'admin',
      weight: spec.weight,
    });
    return this.host.table.node(key, parsed.address)!;
  }

  /** Applies a state/weight override. Throws SY_NO_NODE. */
  patchNode(key: string, address: string, patch: NodePatch): VhostNode {
    const current = this.host.table.node(key, address);
    if (current === undefined) throw new RouterError('SY_NO_NODE', `${key} has no node ${address}`);
    let o = this.overrides.get(id(key, address));
    if (o === undefined) {
      o = { drained: false, weight: undefined, deleting: false, base: current.state, baseWeight: current.weight };
      this.overrides.set(id(key, address), o);
    }
    if (patch.weight !== undefined) o.weight = patch.weight ?? undefined;
    if (patch.state !== undefined) o.drained = patch.state === 'draining';
    const next = this.effective({ ...current, weight: o.baseWeight, state: o.base }, o);
    if (!o.drained && !o.deleting && o.weight === undefined) this.overrides.delete(id(key, address));
    this.apply(current, next);
    return this.host.table.node(key, address)!;
  }

  /** Drains a node and removes it when idle. Throws SY_NO_NODE. */
  deleteNode(key: string, address: string, reason: 'admin' | 'ttl' = 'admin'): void {
    const current = this.host.table.node(key, address);
    if (current === undefined) throw new RouterError('SY_NO_NODE', `${key} has no node ${address}`);
    let o = this.overrides.get(id(key, address));
    if (o === undefined) {
      o = { drained: false, weight: undefined, deleting: true, base: current.state, baseWeight: current.weight };
      this.overrides.set(id(key, address), o);
    }
    o.deleting = true;
    this.expiries.delete(id(key, address));
    this.options.events.record({ type: 'draining', host: key, node: address, source: reason, reason: 'delete' });
    // Also re-arms the drained notification of a node that was already draining.
    this.host.applyNodeState(key, address, 'draining');
  }

  /** Drains and removes every node of `key`; returns how many. */
  deleteHost(key: string): number {
    const entry = this.host.table.get(key);
    if (entry === undefined) return 0;
    for (const node of entry.nodes) this.deleteNode(key, node.address);
    return entry.nodes.length;
  }

  // --- internals ---------------------------------------------------------------------------------

  private effective(node: VhostNode, o: Override): VhostNode {
    const state: NodeState = o.drained || o.deleting ? 'draining' : node.state;
    const weight = o.weight ?? node.weight;
    return state === node.state && weight === node.weight ? node : { ...node, state, weight };
  }

  private apply(current: VhostNode, next: VhostNode): void {
    if (next.weight !== current.weight) {
      this.host.table.upsert({ ...current, weight: next.weight });
      this.options.events.record({
        type: 'updated',
        host: current.key,
        node: current.address,
        source: 'admin',
        weight: next.weight,
      });
    }
    if (next.state !== current.state) {
      this.host.applyNodeState(current.key, current.address, next.state);
      this.options.events.record({ type: next.state, host: current.key, node: current.address, source: 'admin' });
    }
  }

  /** A draining node has no request in flight any more. */
  private drained(key: string, address: string): void {
    const o = this.overrides.get(id(key, address));
    if (o === undefined || !o.deleting) return;
    const node = this.host.table.node(key, address);
    if (node === undefined) return;
    if (node.source === 'subscription' && this.removeSubscription(key, address)) return;
    this.host.removeNode(key, address);
    this.options.events.record({ type: 'removed', host: key, node: address, source: node.source, reason: 'admin' });
    if (node.source === 'admin') {
      const restored = this.restore(key, address);
      if (restored !== undefined) {
        this.host.table.upsert(restored);
        this.options.events.record({ type: 'added', host: key, node: address, source: restored.source });
      }
    }
  }

  /** Deletes admin nodes whose TTL passed. */
  sweep(): number {
    const now = this.options.clock();
    let n = 0;
    for (const [nodeId, expiry] of this.expiries) {
      if (expiry.at > now) continue;
      this.expiries.delete(nodeId);
      if (this.host.table.node(expiry.key, expiry.address) === undefined) continue;
      this.deleteNode(expiry.key, expiry.address, 'ttl');
      n++;
    }
    return n;
  }
}
