/**
 * Balancers choose, for one request, the order in which a host's nodes are tried: the first candidate
 * is the choice, the others are fallbacks for retries. Contract for every balancer:
 *  - a candidate list never holds a node twice (a retry never hits the same node);
 *  - every eligible node appears (choice first, then the others), then the backup fallbacks;
 *  - draining and ejected nodes never appear (except in panic mode, see node-pool.ts);
 *  - `explain` returns what `candidates` would return now and why, WITHOUT advancing any state (the
 *    admin route-explain endpoint calls it; a random balancer explains its cost order instead).
 *
 * Eligibility, backup levels, ejection and slow-start weights are decided in one place, NodePools;
 * PoolBalancer asks it for the pool and a subclass only orders `pool.nodes`. State lives per pool node
 * array (WeakMaps), apart from node identity.
 *
 * Weights: the table holds weights >= 1 (the announcement parser maps uWSGI's 0 to 1); balancers also
 * count anything below 1 as 1. "No new traffic" is the `draining` state, never weight 0: the admin API
 * refuses weight 0.
 */
import { type NodePool, NodePools } from './node-pool.js';
import { NodeRuntime } from './node-runtime.js';
import { DEFAULT_LATENCY_DECAY_MS } from './peak-ewma.js';
import type { HostEntry, VhostNode } from './vhost-table.js';

export interface BalancerContext {
  /** Client address, for hashing balancers. */
  readonly clientAddress: string;
  /** A request header by lower-case name (repeated fields joined), for hashing balancers. */
  header?(name: string): string | undefined;
}

export interface BalancerExplanation {
  readonly balancer: string;
  /** What `candidates` would return now (no state advanced). */
  readonly candidates: readonly VhostNode[];
  /** Why, for humans. */
  readonly reason: string;
  /** The pool the balancer ordered (eligibility, weights, panic). */
  readonly pool: NodePool;
}

export interface Balancer {
  readonly name: string;
  /** Nodes of `entry` in the order to try them; empty when the host has no live node. */
  candidates(entry: HostEntry, context: BalancerContext): readonly VhostNode[];
  /** What `candidates` would answer now and why, without advancing state. */
  explain(entry: HostEntry, context: BalancerContext): BalancerExplanation;
}

/** What balancers share: the pool source, runtime counters (in-flight, latency), clock and randomness. */
export interface BalancerDeps {
  readonly pools: NodePools;
  readonly runtime: NodeRuntime;
  /** ms clock. */
  readonly clock: () => number;
  /** Uniform in [0, 1). */
  readonly random: () => number;
  /** Peak-EWMA decay time constant, ms. */
  readonly latencyDecayMs: number;
}

/** Deps for a balancer used on its own (tests, custom routers): no ejection, no slow start. */
export function standaloneDeps(overrides: Partial<BalancerDeps> = {}): BalancerDeps {
  const clock = overrides.clock ?? Date.now;
  return {
    pools: overrides.pools ?? new NodePools({ clock }),
    runtime: overrides.runtime ?? new NodeRuntime(),
    clock,
    random: overrides.random ?? Math.random,
    latencyDecayMs: overrides.latencyDecayMs ?? DEFAULT_LATENCY_DECAY_MS,
  };
}

/** Result of a dry-run order. */
export interface Preview {
  readonly order: readonly VhostNode[];
  readonly reason: string;
}

/** Template for balancers: NodePools picks the pool, the subclass orders it. */
export abstract class PoolBalancer implements Balancer {
  abstract readonly name: string;
  protected readonly deps: BalancerDeps;

  constructor(deps: Partial<BalancerDeps> = {}) {
    this.deps = standaloneDeps(deps);
  }

  candidates(entry: HostEntry, context: BalancerContext): readonly VhostNode[] {
    const pools = this.deps.pools;
    const pool = pools.poolFor(entry);
    const ordered = pool.nodes.length <= 1 ? pool.nodes : this.order(pool, context);
    return pools.finish(pool, ordered);
  }

  explain(entry: HostEntry, context: BalancerContext): BalancerExplanation {
    const pools = this.deps.pools;
    const pool = pools.poolFor(entry);
    const n = pool.nodes.length;
    const { order, reason } =
      n === 0
        ? { order: pool.nodes, reason: 'no live node' }
        : n === 1
          ? { order: pool.nodes, reason: `${pool.nodes[0]!.address} is the only eligible node` }
          : this.preview(pool, context);
    return { balancer: this.name, candidates: pools.preview(pool, order), reason: pools.describe(pool) + reason, pool };
  }

  /** Orders `pool.nodes` (length >= 2) for one request, advancing the balancer's state. */
  protected abstract order(pool: NodePool, context: BalancerContext): readonly VhostNode[];

  /** The order `order` would produce now and why, without advancing state. */
  protected abstract preview(pool: NodePool, context: BalancerContext): Preview;
}

/** `nodes` rotated to start at `first`: the choice, then the others in list order. */
export function rotate(nodes: readonly VhostNode[], first: number): VhostNode[] {
  const n = nodes.length;
  const ordered = new Array<VhostNode>(n);
  for (let i = 0; i < n; i++) ordered[i] = nodes[(first + i) % n]!;
  return ordered;
}
