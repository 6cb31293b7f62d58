/**
 * Smooth weighted round-robin (nginx's algorithm), the default balancer (`wrr`). Each pick adds every
 * node's effective weight to its current value, takes the node with the highest current value and
 * subtracts the total from it. Weights 1:3 give `b a b b` — spread out, never bursts. Fallbacks follow
 * the picked node in list order.
 *
 * State (the current values) lives per pool node array, so a table change or an ejection restarts the
 * cycle. Effective weights may be fractional (slow start); the algorithm works the same.
 *
 * Unlike uWSGI's wrr (which runs whole `weight/min_weight` bursts: `b a a a b a a a` for 3:1) the
 * sequence is interleaved; the shares are the same.
 */
import { type BalancerContext, type BalancerDeps, PoolBalancer, type Preview, rotate } from './balancer.js';
import type { NodePool } from './node-pool.js';
import type { VhostNode } from './vhost-table.js';

export class SmoothWeightedRoundRobin extends PoolBalancer {
  readonly name: string;
  private readonly state = new WeakMap<readonly VhostNode[], Float64Array>();

  constructor(deps: Partial<BalancerDeps> = {}, name = 'wrr') {
    super(deps);
    this.name = name;
  }

  protected order(pool: NodePool, _context: BalancerContext): readonly VhostNode[] {
    // One node: nothing to rotate, and no state to keep (a million one-node hosts would each get some).
    if (pool.nodes.length === 1) return pool.nodes;
    let current = this.state.get(pool.nodes);
    if (current === undefined) {
      current = new Float64Array(pool.nodes.length);
      this.state.set(pool.nodes, current);
    }
    return rotate(pool.nodes, step(current, pool.weights));
  }

  protected preview(pool: NodePool, _context: BalancerContext): Preview {
    const saved = this.state.get(pool.nodes);
    const current = saved === undefined ? new Float64Array(pool.nodes.length) : saved.slice();
    const best = step(current, pool.weights);
    const node = pool.nodes[best]!;
    return {
      order: rotate(pool.nodes, best),
      reason: `smooth weighted round-robin: ${node.address} has the highest running weight (effective weight ${round(pool.weights[best]!)})`,
    };
  }
}

/** One smooth-WRR step on `current` (mutated); returns the chosen index. */
export function step(current: Float64Array, weights: readonly number[]): number {
  const n = current.length;
  let total = 0;
  let best = 0;
  let bestValue = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const weight = weights[i]!;
    const value = current[i]! + weight;
    current[i] = value;
    total += weight;
    if (value > bestValue) {
      bestValue = value;
      best = i;
    }
  }
  current[best] = bestValue - total;
  return best;
}

export function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
