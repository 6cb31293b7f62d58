/**
 * Least requests: the node with the fewest requests in flight wins (`lrc`, uWSGI's least reference
 * count), or the fewest in flight per unit of effective weight (`least-requests`, uWSGI's `wlrc`).
 * In-flight counts come from NodeRuntime and are per node address (all hosts a node serves), so a
 * node busy for another host is seen as busy.
 *
 * Ties — most picks on an idle host, where everything is at 0 — are broken by smooth weighted
 * round-robin among the tied nodes (plain round-robin for `lrc`), so idle traffic spreads over the
 * nodes (by weight for the weighted variant) instead of always hitting the first one. uWSGI breaks the
 * tie with requests since the last announcement; the effect is the same.
 *
 * Fallbacks: the other nodes in list order after the choice (sorting them by load costs more than a
 * retry is worth: a retry goes to a different node either way).
 */
import { type BalancerContext, type BalancerDeps, PoolBalancer, type Preview, rotate } from './balancer.js';
import type { NodePool } from './node-pool.js';
import type { VhostNode } from './vhost-table.js';
import { round } from './wrr-balancer.js';

const EPSILON = 1e-9;
/** Per-pick scores, reused (picks are synchronous). */
let scratch = new Float64Array(16);

export class LeastRequests extends PoolBalancer {
  readonly name: string;
  /** True: in-flight per unit of weight; false: raw in-flight, weights ignored (except slow start). */
  readonly weighted: boolean;
  private readonly ties = new WeakMap<readonly VhostNode[], Float64Array>();

  constructor(deps: Partial<BalancerDeps> = {}, options: { readonly weighted?: boolean; readonly name?: string } = {}) {
    super(deps);
    this.weighted = options.weighted ?? true;
    this.name = options.name ?? (this.weighted ? 'least-requests' : 'lrc');
  }

  protected order(pool: NodePool, _context: BalancerContext): readonly VhostNode[] {
    let current = this.ties.get(pool.nodes);
    if (current === undefined) {
      current = new Float64Array(pool.nodes.length);
      this.ties.set(pool.nodes, current);
    }
    return this.rank(pool, current).order;
  }

  protected preview(pool: NodePool, _context: BalancerContext): Preview {
    const saved = this.ties.get(pool.nodes);
    const current = saved === undefined ? new Float64Array(pool.nodes.length) : saved.slice();
    const { order, scores, tied, best } = this.rank(pool, current);
    const node = pool.nodes[best]!;
    const what = this.weighted ? 'in-flight per weight' : 'in-flight';
    const tie = tied > 1 ? `, tied with ${tied - 1} other(s), broken by round-robin` : '';
    return { order, reason: `least requests: ${node.address} has the lowest ${what} (${round(scores[best]!)})${tie}` };
  }

  /** Scores (into a reused scratch array), the choice (advancing `current`, the tie-break state) and the order. */
  private rank(
    pool: NodePool,
    current: Float64Array,
  ): { order: VhostNode[]; scores: Float64Array; tied: number; best: number } {
    const nodes = pool.nodes;
    const n = nodes.length;
    const runtime = this.deps.runtime;
    const weighted = this.weighted;
    if (scratch.length < n) scratch = new Float64Array(n * 2);
    const scores = scratch;
    let min = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const weight = weighted ? pool.weights[i]! : pool.weights[i]! / pool.baseWeights[i]!;
      const score = (runtime.stats(nodes[i]!.address)?.inFlight ?? 0) / weight;
      scores[i] = score;
      if (score < min) min = score;
    }
    // Smooth WRR among the tied nodes only.
    let total = 0;
    let best = 0;
    let bestValue = Number.NEGATIVE_INFINITY;
    let tied = 0;
    for (let i = 0; i < n; i++) {
      if (scores[i]! - min > EPSILON) continue;
      tied++;
      const weight = weighted ? pool.weights[i]! : pool.weights[i]! / pool.baseWeights[i]!;
      const value = current[i]! + weight;
      current[i] = value;
      total += weight;
      if (value > bestValue) {
        bestValue = value;
        best = i;
      }
    }
    current[best] = bestValue - total;
    return { order: rotate(nodes, best), scores, tied, best };
  }
}
