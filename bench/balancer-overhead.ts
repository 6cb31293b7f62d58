/**
 * Balancer overhead per pick: a micro-benchmark, not a test (CONTRIBUTING: performance is measured, never
 * asserted). Runs every balancer's `candidates()` through the router's real Balancing composition
 * (NodePools, ejection view, slow start) on hosts of 1, 3, 10 and 64 nodes and prints ns per pick,
 * median of several rounds, next to a reference: copying `entry.live` into a new array (what a balancer
 * returning a fresh candidate list must at least do).
 *
 *   npm run build && npx tsx bench/balancer-overhead.ts [--picks 200000] [--rounds 5]
 *
 * Extra scenarios: wrr with one node of the host ejected (filtered pool), and wrr with a joining node
 * (slow-start weights recomputed per pick).
 */
import { parseArgs } from 'node:util';
import {
  type BalancerContext,
  Balancing,
  type BalancingOptions,
  type HostEntry,
  NodeRuntime,
  type VhostNode,
  VhostTable,
} from '@switchyard/router';

const { values } = parseArgs({
  options: { picks: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '5' } },
});
const PICKS = Number(values.picks);
const ROUNDS = Number(values.rounds);
const HOST = 'bench.test';

function makeNode(i: number, weight: number): VhostNode {
  return {
    key: HOST,
    address: `10.0.${i >> 8}.${i & 255}:80`,
    target: { kind: 'tcp', host: `10.0.${i >> 8}.${i & 255}`, port: 80 },
    protocol: 'http',
    weight,
    modifier1: 0,
    modifier2: 0,
    backup: 0,
    source: 'subscription',
    state: 'active',
  };
}

interface Setup {
  readonly entry: HostEntry;
  readonly balancing: Balancing;
}

function setup(nodes: number, options: BalancingOptions, scenario: 'plain' | 'ejected' | 'joining'): Setup {
  let time = 1_000_000;
  const clock = () => time;
  const table = new VhostTable();
  const runtime = new NodeRuntime();
  const balancing = new Balancing({ lookup: (k) => table.get(k), runtime, clock, options });
  for (let i = 0; i < nodes; i++) {
    const node = makeNode(i, 1 + (i % 3));
    const before = table.get(HOST);
    table.upsert(node);
    balancing.nodeUpserted(before, node, undefined);
    // Some in-flight and latency so the load-aware balancers do real work.
    runtime.begin(HOST, node.address);
    runtime.observeLatency(node.address, 2 + (i % 5), time, 10_000);
  }
  if (scenario === 'ejected') for (let k = 0; k < 5; k++) balancing.failed(HOST, makeNode(0, 1).address);
  time += 1;
  return { entry: table.get(HOST)!, balancing };
}

const contexts: BalancerContext[] = Array.from({ length: 1024 }, (_, i) => {
  const headers: Record<string, string> = { 'x-user': `user-${i}`, cookie: `a=1; sid=s${i}` };
  return { clientAddress: `198.51.${i >> 8}.${i & 255}`, header: (name: string) => headers[name] };
});

function nsPerPick(run: () => void): number {
  const start = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - start) / PICKS;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function measure(name: string, nodes: number, scenario: 'plain' | 'ejected' | 'joining'): number {
  const options: BalancingOptions = { balancer: name, ...(scenario === 'joining' ? { slowStartMs: 3_600_000 } : {}) };
  const { entry, balancing } = setup(nodes, options, scenario);
  const balancer = balancing.balancerFor(HOST);
  let sink = 0;
  const samples: number[] = [];
  for (let round = 0; round < ROUNDS + 1; round++) {
    const ns = nsPerPick(() => {
      for (let i = 0; i < PICKS; i++) sink += balancer.candidates(entry, contexts[i & 1023]!).length;
    });
    if (round > 0) samples.push(ns); // round 0 warms up the JIT
  }
  if (sink === 42) console.log('');
  return median(samples);
}

function reference(nodes: number): number {
  const { entry } = setup(nodes, {}, 'plain');
  let sink = 0;
  const samples: number[] = [];
  for (let round = 0; round < ROUNDS + 1; round++) {
    const ns = nsPerPick(() => {
      for (let i = 0; i < PICKS; i++) {
        const live = entry.live;
        const copy = new Array<VhostNode>(live.length);
        for (let k = 0; k < live.length; k++) copy[k] = live[k]!;
        sink += copy.length;
      }
    });
    if (round > 0) samples.push(ns);
  }
  if (sink === 42) console.log('');
  return median(samples);
}

const SIZES = [1, 3, 10, 64];
const NAMES = ['wrr', 'least-requests', 'lrc', 'p2c-ewma', 'hash-ip', 'hash-header:x-user', 'hash-cookie:sid'];

console.log(`balancer overhead, ns per pick (median of ${ROUNDS} rounds × ${PICKS} picks), Node ${process.version}`);
console.log(`| balancer | ${SIZES.map((n) => `${n} node${n === 1 ? '' : 's'}`).join(' | ')} |`);
console.log(`|---|${SIZES.map(() => '---:').join('|')}|`);
console.log(`| reference: copy entry.live | ${SIZES.map((n) => reference(n).toFixed(0)).join(' | ')} |`);
for (const name of NAMES)
  console.log(`| ${name} | ${SIZES.map((n) => measure(name, n, 'plain').toFixed(0)).join(' | ')} |`);
console.log(
  `| wrr, 1 node ejected | ${SIZES.map((n) => (n < 3 ? '–' : measure('wrr', n, 'ejected').toFixed(0))).join(' | ')} |`,
);
console.log(
  `| wrr, slow start ramping | ${SIZES.map((n) => (n < 2 ? '–' : measure('wrr', n, 'joining').toFixed(0))).join(' | ')} |`,
);
