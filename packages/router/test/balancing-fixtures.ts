/** Fixtures for balancing tests: a fake clock, a seeded RNG, a table with a Balancing on top. */
import {
  type Balancer,
  type BalancerContext,
  Balancing,
  type BalancingOptions,
  type HostEntry,
  NodeRuntime,
  type VhostNode,
  VhostTable,
} from '../src/index.js';
import { httpNode } from './helpers.js';

export const HOST = 'app.test';

export class FakeClock {
  time = 1_000_000;
  readonly now = (): number => this.time;
  advance(ms: number): void {
    this.time += ms;
  }
}

/** mulberry32: a small deterministic uniform [0, 1) generator. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export function node(index: number, options: Partial<VhostNode> = {}): VhostNode {
  return { ...httpNode(HOST, `10.0.0.${index}:80`), ...options };
}

export interface Rig {
  readonly clock: FakeClock;
  readonly table: VhostTable;
  readonly runtime: NodeRuntime;
  readonly balancing: Balancing;
  /** The current entry of HOST. */
  entry(): HostEntry;
  add(n: VhostNode): void;
  remove(address: string): void;
}

export function rig(options: BalancingOptions = {}, seed = 42): Rig {
  const clock = new FakeClock();
  const table = new VhostTable();
  const runtime = new NodeRuntime();
  const balancing = new Balancing({
    lookup: (key) => table.get(key),
    runtime,
    clock: clock.now,
    options: { random: seeded(seed), ...options },
  });
  return {
    clock,
    table,
    runtime,
    balancing,
    entry: () => table.get(HOST)!,
    add(n) {
      const before = table.get(n.key);
      table.upsert(n);
      balancing.nodeUpserted(before, n, undefined);
    },
    remove(address) {
      table.remove(HOST, address);
      balancing.nodeRemoved(HOST, address, table.get(HOST) === undefined);
    },
  };
}

export function context(clientAddress = '192.0.2.1', headers: Record<string, string> = {}): BalancerContext {
  return { clientAddress, header: (name) => headers[name] };
}

/** A random IPv4 client context from `random`. */
export function randomClient(random: () => number): BalancerContext {
  const octet = () => Math.floor(random() * 256);
  return context(`${octet()}.${octet()}.${octet()}.${octet()}`);
}

/**
 * Picks `count` times, keeping up to `window` requests in flight (the oldest ends when the window is
 * full, with a `latencyMs` response) and advancing the clock 1 ms per pick. Returns picks per address.
 */
export function simulate(
  r: Rig,
  balancer: Balancer,
  count: number,
  contextFor: (i: number) => BalancerContext,
  window = 8,
  latencyMs: (address: string) => number = () => 5,
): Map<string, number> {
  const counts = new Map<string, number>();
  const inFlight: string[] = [];
  for (let i = 0; i < count; i++) {
    const first = balancer.candidates(r.entry(), contextFor(i))[0]!;
    counts.set(first.address, (counts.get(first.address) ?? 0) + 1);
    r.runtime.begin(HOST, first.address);
    inFlight.push(first.address);
    if (inFlight.length > window) finish(r, inFlight.shift()!, latencyMs);
    r.clock.advance(1);
  }
  while (inFlight.length > 0) finish(r, inFlight.shift()!, latencyMs);
  return counts;
}

function finish(r: Rig, address: string, latencyMs: (address: string) => number): void {
  r.balancing.responded(HOST, address, 200, latencyMs(address));
  r.runtime.end(HOST, address);
}

/** Addresses of a candidate list. */
export function addresses(list: readonly VhostNode[]): string[] {
  return list.map((n) => n.address);
}
