/**
 * Balancers choose, for one request, the order in which a host's live nodes are tried: the first
 * candidate is the choice, the others are fallbacks for retries. A candidate list never holds a node
 * twice, so a retry never hits the same node.
 */
import type { HostEntry, VhostNode } from './vhost-table.js';

export interface BalancerContext {
  /** Client address, for hashing balancers. */
  readonly clientAddress: string;
}

export interface Balancer {
  readonly name: string;
  /** Live nodes of `entry` in the order to try them; empty when the host has no live node. */
  candidates(entry: HostEntry, context: BalancerContext): readonly VhostNode[];
}

/**
 * Smooth weighted round-robin (nginx's algorithm): each pick adds every node's weight to its current
 * value, takes the node with the highest current value and subtracts the total from it. Weights 1:3 give
 * `b a b b` — spread out, never bursts. Fallbacks follow the picked node in list order. State lives per
 * host entry (a WeakMap, so a replaced entry's state is collected); a table change restarts the cycle.
 */
export class SmoothWeightedRoundRobin implements Balancer {
  readonly name = 'wrr';
  private readonly state = new WeakMap<HostEntry, number[]>();

  candidates(entry: HostEntry, _context: BalancerContext): readonly VhostNode[] {
    const live = entry.live;
    const n = live.length;
    if (n <= 1) return live;
    let current = this.state.get(entry);
    if (current === undefined) {
      current = new Array<number>(n).fill(0);
      this.state.set(entry, current);
    }
    let total = 0;
    let best = 0;
    let bestValue = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const weight = live[i]!.weight;
      const value = current[i]! + weight;
      current[i] = value;
      total += weight;
      if (value > bestValue) {
        bestValue = value;
        best = i;
      }
    }
    current[best] = bestValue - total;
    const ordered = new Array<VhostNode>(n);
    for (let i = 0; i < n; i++) ordered[i] = live[(best + i) % n]!;
    return ordered;
  }
}
