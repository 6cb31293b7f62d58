/**
 * NodePools: the one place that decides which of a host's nodes a balancer may order, with what
 * effective weights, and what is appended as fallbacks. Every balancer goes through it (PoolBalancer),
 * so ejection, panic mode, backup levels and slow start are not reimplemented per balancer.
 *
 * Rules, for a host entry at time `now`:
 *  - only `active` nodes are eligible (draining nodes are never returned);
 *  - without ejections: the pool is `entry.live` (active nodes of the lowest backup level that has one);
 *  - with ejections: the pool is the admitted nodes of the lowest backup level that has an admitted
 *    node (primaries all ejected → the backups serve); a half-open node is eligible as a first choice
 *    only: `finish` claims its single probe when the balancer puts it first and drops it elsewhere;
 *  - panic mode (Envoy): when more than `maxEjectionFraction` of the host's active nodes are out, or all
 *    of them, ejection is ignored for that host and the pool is `entry.live` again;
 *  - fallbacks: after the balancer's order come the admitted active nodes of the next backup level that
 *    has one (in subscription order), so a request whose primaries all fail can still be served by a
 *    backup; deeper levels are never tried in the same request;
 *  - effective weight = announced weight (0 counts as 1, as uWSGI) × slow-start factor (slow-start.ts).
 *
 * A pool's `nodes` array keeps its identity while eligibility does not change: balancers key their
 * state on it (a WeakMap), so a table change or an ejection restarts their cycle and the old state is
 * collected with the old array. Pools are cached per entry; the cache is checked against the ejection
 * version and the next time-driven status change, so the common case (no ejection anywhere) costs one
 * WeakMap lookup per request.
 */
import type { HostEntry, VhostNode } from './vhost-table.js';

export type EjectionStatus = 'admitted' | 'ejected' | 'half-open' | 'probing';

/** What NodePools reads from the outlier detector. */
export interface EjectionView {
  /** Addresses currently out (ejected, half-open or probing); 0 = nothing to filter. */
  readonly ejectedCount: number;
  /** Grows with every status change except the time-driven ones (see nextChange). */
  readonly version: number;
  readonly maxEjectionFraction: number;
  status(address: string, now: number): EjectionStatus;
  /** When `address` next changes status by time alone; Infinity when it will not. */
  nextChange(address: string): number;
  claimProbe(address: string, now: number): void;
}

/** What NodePools reads from slow start. */
export interface WeightRamp {
  ramping(key: string): boolean;
  /** Multiplier in (0, 1] of (key, address)'s weight at `now`. */
  factor(key: string, address: string, now: number): number;
}

export interface NodePool {
  readonly key: string;
  /** Nodes the balancer orders; stable identity while eligibility does not change (balancer state key). */
  readonly nodes: readonly VhostNode[];
  /** Effective weights, parallel to `nodes`, > 0 (slow start applied). */
  readonly weights: readonly number[];
  /** Announced weights (0 counts as 1), parallel to `nodes`: for hashing, which ignores slow start. */
  readonly baseWeights: readonly number[];
  /** Appended after the balancer's order: the next backup level's admitted nodes. */
  readonly fallbacks: readonly VhostNode[];
  /** Backup level of `nodes`. */
  readonly level: number;
  /** Active nodes of the host that are out (ejected, half-open, probing). */
  readonly out: number;
  /** Some node of `nodes` is half-open (its probe is not taken yet). */
  readonly halfOpen: boolean;
  /** Ejection is ignored for this host: too many of its nodes are out. */
  readonly panic: boolean;
}

interface FilteredPool {
  readonly pool: NodePool;
  readonly version: number;
  readonly validUntil: number;
}

const EMPTY: readonly VhostNode[] = Object.freeze([]);

export class NodePools {
  private readonly clock: () => number;
  private readonly ejections: EjectionView | undefined;
  private readonly ramp: WeightRamp | undefined;
  private readonly plainCache = new WeakMap<HostEntry, NodePool>();
  private readonly filteredCache = new WeakMap<HostEntry, FilteredPool>();
  private readonly rampCache = new WeakMap<NodePool, { readonly at: number; readonly pool: NodePool }>();

  constructor(
    options: { readonly clock?: () => number; readonly ejections?: EjectionView; readonly ramp?: WeightRamp } = {},
  ) {
    this.clock = options.clock ?? Date.now;
    this.ejections = options.ejections;
    this.ramp = options.ramp;
  }

  /** The pool a balancer orders for `entry` now. */
  poolFor(entry: HostEntry): NodePool {
    const ejections = this.ejections;
    let pool: NodePool;
    if (ejections === undefined || ejections.ejectedCount === 0) {
      pool = this.plain(entry);
    } else {
      const now = this.clock();
      let cached = this.filteredCache.get(entry);
      if (cached === undefined || cached.version !== ejections.version || now >= cached.validUntil) {
        cached = this.filter(entry, ejections, now);
        this.filteredCache.set(entry, cached);
      }
      pool = cached.pool;
    }
    const ramp = this.ramp;
    if (ramp === undefined || !ramp.ramping(entry.key)) return pool;
    // Ramped weights change with the clock; recomputed at most once per clock tick per pool.
    const now = this.clock();
    const cached = this.rampCache.get(pool);
    if (cached !== undefined && cached.at === now) return cached.pool;
    const weights = pool.nodes.map((n, i) => pool.baseWeights[i]! * ramp.factor(entry.key, n.address, now));
    const ramped: NodePool = Object.freeze({ ...pool, weights: Object.freeze(weights) });
    this.rampCache.set(pool, { at: now, pool: ramped });
    return ramped;
  }

  /**
   * The final candidate list from a balancer's order of `pool.nodes`: claims the probe of a half-open
   * node placed first, drops half-open nodes placed elsewhere, appends the fallbacks.
   */
  finish(pool: NodePool, ordered: readonly VhostNode[]): readonly VhostNode[] {
    return this.complete(pool, ordered, true);
  }

  /** Like `finish` without claiming anything (explain). */
  preview(pool: NodePool, ordered: readonly VhostNode[]): readonly VhostNode[] {
    return this.complete(pool, ordered, false);
  }

  /**
   * May `address` be ejected, judged from `entry`? Not when it would leave the host without an admitted
   * active node, nor put more than `maxFraction` of its active nodes out.
   */
  canEject(entry: HostEntry | undefined, address: string): boolean {
    const ejections = this.ejections;
    if (entry === undefined || ejections === undefined) return true;
    const now = this.clock();
    let active = 0;
    let out = 1;
    for (const n of entry.nodes) {
      if (n.state !== 'active') continue;
      active++;
      if (n.address !== address && ejections.status(n.address, now) !== 'admitted') out++;
    }
    return out < active && out <= ejections.maxEjectionFraction * active;
  }

  /** A short human description of how the pool was formed (explain). */
  describe(pool: NodePool): string {
    if (pool.panic) return `panic: ${pool.out} node(s) out, ejection ignored; `;
    const parts: string[] = [];
    if (pool.out > 0) parts.push(`${pool.out} node(s) ejected`);
    if (pool.level > 0) parts.push(`backup level ${pool.level}`);
    if (pool.fallbacks.length > 0) parts.push(`${pool.fallbacks.length} backup fallback(s)`);
    return parts.length === 0 ? '' : `${parts.join(', ')}; `;
  }

  private complete(pool: NodePool, ordered: readonly VhostNode[], claim: boolean): readonly VhostNode[] {
    let list = ordered;
    if (pool.halfOpen && this.ejections !== undefined) {
      const ejections = this.ejections;
      const now = this.clock();
      const kept: VhostNode[] = [];
      for (let i = 0; i < ordered.length; i++) {
        const node = ordered[i]!;
        const status = ejections.status(node.address, now);
        if (status === 'admitted') kept.push(node);
        else if (status === 'half-open' && kept.length === 0) {
          if (claim) ejections.claimProbe(node.address, now);
          kept.push(node);
        }
      }
      list = kept;
    }
    return pool.fallbacks.length === 0 ? list : list.concat(pool.fallbacks);
  }

  private plain(entry: HostEntry): NodePool {
    let pool = this.plainCache.get(entry);
    if (pool === undefined) {
      const nodes = entry.live;
      const weights = Object.freeze(nodes.map(weightOf));
      const level = nodes[0]?.backup ?? 0;
      pool = Object.freeze({
        key: entry.key,
        nodes,
        weights,
        baseWeights: weights,
        fallbacks: nodes.length === 0 ? EMPTY : nextLevel(entry.nodes, level, undefined),
        level,
        out: 0,
        halfOpen: false,
        panic: false,
      });
      this.plainCache.set(entry, pool);
    }
    return pool;
  }

  private filter(entry: HostEntry, ejections: EjectionView, now: number): FilteredPool {
    const version = ejections.version;
    let active = 0;
    let out = 0;
    let validUntil = Number.POSITIVE_INFINITY;
    let level = Number.POSITIVE_INFINITY;
    for (const n of entry.nodes) {
      if (n.state !== 'active') continue;
      active++;
      const status = ejections.status(n.address, now);
      if (status !== 'admitted') {
        out++;
        const next = ejections.nextChange(n.address);
        if (next < validUntil) validUntil = next;
      }
      if ((status === 'admitted' || status === 'half-open') && n.backup < level) level = n.backup;
    }
    const plain = this.plain(entry);
    if (out === 0) return { pool: plain, version, validUntil };
    if (level === Number.POSITIVE_INFINITY || out >= active || out > ejections.maxEjectionFraction * active) {
      return { pool: Object.freeze({ ...plain, out, panic: true }), version, validUntil };
    }
    const nodes: VhostNode[] = [];
    let halfOpen = false;
    for (const n of entry.nodes) {
      if (n.state !== 'active' || n.backup !== level) continue;
      const status = ejections.status(n.address, now);
      if (status === 'admitted') nodes.push(n);
      else if (status === 'half-open') {
        nodes.push(n);
        halfOpen = true;
      }
    }
    const weights = Object.freeze(nodes.map(weightOf));
    const pool: NodePool = Object.freeze({
      key: entry.key,
      nodes: Object.freeze(nodes),
      weights,
      baseWeights: weights,
      fallbacks: nextLevel(entry.nodes, level, (n) => ejections.status(n.address, now) === 'admitted'),
      level,
      out,
      halfOpen,
      panic: false,
    });
    return { pool, version, validUntil };
  }
}

/** Announced weight as balancers use it: 0 (or anything below 1) counts as 1, as uWSGI does. */
export function weightOf(node: VhostNode): number {
  return Math.max(node.weight, 1);
}

/** Active (and admitted) nodes of the smallest backup level above `level`, in subscription order. */
function nextLevel(
  nodes: readonly VhostNode[],
  level: number,
  admitted: ((node: VhostNode) => boolean) | undefined,
): readonly VhostNode[] {
  let next = Number.POSITIVE_INFINITY;
  for (const n of nodes) {
    if (n.state === 'active' && n.backup > level && n.backup < next && (admitted === undefined || admitted(n))) {
      next = n.backup;
    }
  }
  if (next === Number.POSITIVE_INFINITY) return EMPTY;
  return Object.freeze(
    nodes.filter((n) => n.state === 'active' && n.backup === next && (admitted === undefined || admitted(n))),
  );
}
