/**
 * Slow start, the `joining` step of the node lifecycle `joining → active → draining → gone`.
 *
 * A node added to a host that already has an active node is `joining` for `windowMs` (`--slow-start`,
 * default 0 = off, as uWSGI: a new node takes its full share at once): its effective weight ramps
 * linearly from 10% to 100% of its announced weight over the window, on the injected clock. The first
 * node of a host does not ramp (there is nobody to share with), nor do static nodes, nor a draining node
 * that came back. Balancers read the ramp through `factor` (via NodePools' effective weights); the vhost
 * table is never mutated for it. Hashing balancers ignore the ramp: changing ring weights would remap
 * keys on every step.
 *
 * Records are dropped lazily once a node's window is over, when it leaves, or when its host goes.
 */

/** Share of its weight a node gets the moment it joins. */
export const SLOW_START_FLOOR = 0.1;

export class SlowStart {
  readonly windowMs: number;
  private readonly clock: () => number;
  /** host key → (address → ms joined). Only hosts with a joining node have an entry. */
  private readonly joining = new Map<string, Map<string, number>>();

  constructor(options: { readonly clock?: () => number; readonly windowMs?: number } = {}) {
    this.clock = options.clock ?? Date.now;
    this.windowMs = options.windowMs ?? 0;
  }

  /** A node joined a host that already had an active node: it starts its ramp now. */
  joined(key: string, address: string): void {
    if (this.windowMs <= 0) return;
    let nodes = this.joining.get(key);
    if (nodes === undefined) {
      nodes = new Map();
      this.joining.set(key, nodes);
    }
    nodes.set(address, this.clock());
  }

  /** The node left its host (removed, drained, expired): forget its ramp. */
  left(key: string, address: string): void {
    const nodes = this.joining.get(key);
    if (nodes === undefined) return;
    nodes.delete(address);
    if (nodes.size === 0) this.joining.delete(key);
  }

  /** True when `key` has a node that may still be ramping (cheap: one Map lookup, false for most hosts). */
  ramping(key: string): boolean {
    return this.joining.size > 0 && this.joining.has(key);
  }

  /** Weight multiplier in [0.1, 1] for (key, address) at `now`; 1 when the node is not joining. */
  factor(key: string, address: string, now: number): number {
    const nodes = this.joining.get(key);
    const since = nodes?.get(address);
    if (since === undefined) return 1;
    const elapsed = now - since;
    if (elapsed >= this.windowMs) {
      this.left(key, address);
      return 1;
    }
    const progress = elapsed > 0 ? elapsed / this.windowMs : 0;
    return SLOW_START_FLOOR + (1 - SLOW_START_FLOOR) * progress;
  }

  /** True while (key, address) is in its ramp. */
  isJoining(key: string, address: string, now: number = this.clock()): boolean {
    return this.factor(key, address, now) < 1;
  }

  /** Joining nodes: host key → addresses with the ms their ramp ends. */
  snapshot(): { key: string; address: string; until: number }[] {
    const out: { key: string; address: string; until: number }[] = [];
    for (const [key, nodes] of this.joining) {
      for (const [address, since] of nodes) out.push({ key, address, until: since + this.windowMs });
    }
    return out;
  }
}
