/**
 * Consistent hashing (`hash-ip`, uWSGI's `iphash`; `hash-header:NAME`; `hash-cookie:NAME`): the same
 * key goes to the same node while that node is eligible, and a node joining or leaving a host of N moves
 * only ≈1/N of the keys (hash-ring.ts: virtual nodes, announced weights).
 *
 * The key is the client address (`hash-ip`), a request header (`hash-header:NAME`, repeated fields
 * joined with ", ") or a cookie (`hash-cookie:NAME`, first occurrence). A request without that header
 * or cookie falls back to the client address, so it still lands consistently.
 *
 * Candidates: the key's node, then the next distinct nodes clockwise on the ring (up to RING_FALLBACKS,
 * as stable as the first choice), then the remaining nodes in list order. Slow start does not apply:
 * ramping ring weights would remap keys on every step. An ejected node's keys move to their next ring
 * node and come back when it is re-admitted. uWSGI's iphash is `address mod N` (every key moves when N
 * changes) and ignores backup levels; here backups work as for every balancer.
 */
import { type BalancerContext, type BalancerDeps, PoolBalancer, type Preview } from './balancer.js';
import { HashRing, hash32 } from './hash-ring.js';
import type { NodePool } from './node-pool.js';
import type { VhostNode } from './vhost-table.js';

/** Fallbacks taken from the ring walk before the rest in list order. */
const RING_FALLBACKS = 3;

export type HashSource =
  | { readonly kind: 'ip' }
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string };

export class ConsistentHash extends PoolBalancer {
  readonly name: string;
  readonly source: HashSource;
  private readonly rings = new WeakMap<readonly VhostNode[], HashRing>();

  constructor(deps: Partial<BalancerDeps> = {}, source: HashSource = { kind: 'ip' }, name?: string) {
    super(deps);
    const normalised: HashSource =
      source.kind === 'header' ? { kind: 'header', name: source.name.toLowerCase() } : source;
    this.source = normalised;
    this.name = name ?? (normalised.kind === 'ip' ? 'hash-ip' : `hash-${normalised.kind}:${normalised.name}`);
  }

  /** The hashed key of a request and where it came from. */
  keyOf(context: BalancerContext): { readonly key: string; readonly from: string } {
    const source = this.source;
    if (source.kind === 'header') {
      const value = context.header?.(source.name);
      if (value !== undefined && value.length > 0) return { key: value, from: `header ${source.name}` };
    } else if (source.kind === 'cookie') {
      const value = cookieValue(context.header?.('cookie'), source.name);
      if (value !== undefined) return { key: value, from: `cookie ${source.name}` };
    }
    return { key: context.clientAddress, from: 'client address' };
  }

  protected order(pool: NodePool, context: BalancerContext): readonly VhostNode[] {
    return this.orderFor(pool, hash32(this.keyOf(context).key));
  }

  protected preview(pool: NodePool, context: BalancerContext): Preview {
    const { key, from } = this.keyOf(context);
    const hash = hash32(key);
    const order = this.orderFor(pool, hash);
    return {
      order,
      reason: `consistent hash of the ${from} (${JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key)}, hash ${hash}) lands on ${order[0]!.address}`,
    };
  }

  private orderFor(pool: NodePool, hash: number): VhostNode[] {
    const nodes = pool.nodes;
    let ring = this.rings.get(nodes);
    if (ring === undefined) {
      ring = new HashRing(
        nodes.map((n) => n.address),
        pool.baseWeights,
      );
      this.rings.set(nodes, ring);
    }
    const walked = ring.walk(hash, Math.min(RING_FALLBACKS, nodes.length));
    const order = walked.map((i) => nodes[i]!);
    if (order.length < nodes.length) {
      for (let i = 0; i < nodes.length; i++) if (!walked.includes(i)) order.push(nodes[i]!);
    }
    return order;
  }
}

/** The value of cookie `name` in a Cookie header (first occurrence), undefined when absent or empty. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq > start && eq < end && header.slice(start, eq).trim() === name) {
      let value = header.slice(eq + 1, end).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      return value.length > 0 ? value : undefined;
    }
    start = end + 1;
  }
  return undefined;
}
