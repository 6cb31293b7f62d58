/**
 * Power of two choices over peak-EWMA latency (`p2c-ewma`, as Finagle and linkerd): pick two distinct
 * nodes at random (injectable RNG) and take the cheaper, where
 *
 *   cost = max(peakEwma, 1 ms) × (inFlight + 1) / effectiveWeight
 *
 * `peakEwma` is the node's response-head latency estimate (peak-ewma.ts, recorded by the router in
 * NodeRuntime); the 1 ms floor is the clock's resolution, so below it load alone decides. A node that
 * never answered costs 0 while idle (it gets tried) and a large penalty while its first request is in
 * flight (one exploratory request at a time), as Finagle does.
 *
 * Two random choices avoid the herd behaviour of "always the global minimum" (every router instance
 * piling on the same node) while staying within a constant of the best. Fallbacks: the other choice,
 * then the rest in list order. `explain` cannot know the random draw: it returns the nodes by cost.
 */
import { type BalancerContext, type BalancerDeps, PoolBalancer, type Preview } from './balancer.js';
import type { NodePool } from './node-pool.js';
import type { VhostNode } from './vhost-table.js';
import { round } from './wrr-balancer.js';

/** Cost of a node that has a request in flight but never answered (Finagle's penalty). */
export const UNANSWERED_PENALTY = 1e6;
/** Latency floor in the cost, ms (clock resolution). */
const MIN_LATENCY_MS = 1;

export class PeakEwmaP2C extends PoolBalancer {
  readonly name: string;

  constructor(deps: Partial<BalancerDeps> = {}, name = 'p2c-ewma') {
    super(deps);
    this.name = name;
  }

  /** The cost of `pool.nodes[i]` at `now`. */
  cost(pool: NodePool, i: number, now: number): number {
    const address = pool.nodes[i]!.address;
    const runtime = this.deps.runtime;
    const inFlight = runtime.stats(address)?.inFlight ?? 0;
    const latency = runtime.latencyOf(address);
    if (latency === undefined || latency.samples === 0) return inFlight === 0 ? 0 : UNANSWERED_PENALTY + inFlight;
    const estimate = latency.estimate(now, this.deps.latencyDecayMs);
    return (Math.max(estimate, MIN_LATENCY_MS) * (inFlight + 1)) / pool.weights[i]!;
  }

  protected order(pool: NodePool, _context: BalancerContext): readonly VhostNode[] {
    const nodes = pool.nodes;
    const n = nodes.length;
    const random = this.deps.random;
    const a = Math.floor(random() * n) % n;
    let b = Math.floor(random() * (n - 1)) % (n - 1);
    if (b >= a) b++;
    const now = this.deps.clock();
    const costA = this.cost(pool, a, now);
    const costB = this.cost(pool, b, now);
    const first = costB < costA ? b : a;
    const second = first === a ? b : a;
    const order = new Array<VhostNode>(n);
    order[0] = nodes[first]!;
    order[1] = nodes[second]!;
    let k = 2;
    for (let i = 0; i < n; i++) if (i !== first && i !== second) order[k++] = nodes[i]!;
    return order;
  }

  protected preview(pool: NodePool, _context: BalancerContext): Preview {
    const now = this.deps.clock();
    const n = pool.nodes.length;
    const costs = new Float64Array(n);
    const indices: number[] = [];
    for (let i = 0; i < n; i++) {
      costs[i] = this.cost(pool, i, now);
      indices.push(i);
    }
    indices.sort((x, y) => costs[x]! - costs[y]!);
    const listed = indices.map((i) => `${pool.nodes[i]!.address}=${round(costs[i]!)}`).join(', ');
    return {
      order: indices.map((i) => pool.nodes[i]!),
      reason: `power of two random choices over peak-EWMA cost (latency × (in-flight + 1) / weight); by cost now: ${listed}`,
    };
  }
}
