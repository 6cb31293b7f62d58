/**
 * The conformance suite every balancer passes: candidate lists (no node twice, every eligible node,
 * backups after primaries), 0/1/N nodes, weights (0 counts as 1), draining and ejected nodes never
 * returned, distribution by weight, and explain() never advancing state.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BalancerContext, VhostNode } from '../src/index.js';
import { addresses, context, HOST, node, randomClient, rig, seeded, simulate } from './balancing-fixtures.js';

interface Subject {
  readonly name: string;
  /** Shares follow weights (false: equal shares whatever the weights). */
  readonly weighted: boolean;
  /** Largest relative error of a node's share allowed over the distribution run. */
  readonly tolerance: number;
  /** Request contexts: hashing needs many distinct keys to spread. */
  readonly contexts: () => (i: number) => BalancerContext;
}

const fixedClient = () => () => context();
const randomClients = () => {
  const random = seeded(7);
  return () => randomClient(random);
};

const SUBJECTS: readonly Subject[] = [
  { name: 'wrr', weighted: true, tolerance: 0.01, contexts: fixedClient },
  // In-flight counts are whole numbers: at low concurrency the lightest node holds more than its share.
  { name: 'least-requests', weighted: true, tolerance: 0.2, contexts: fixedClient },
  { name: 'wlrc', weighted: true, tolerance: 0.2, contexts: fixedClient },
  { name: 'lrc', weighted: false, tolerance: 0.1, contexts: fixedClient },
  { name: 'p2c-ewma', weighted: true, tolerance: 0.2, contexts: fixedClient },
  { name: 'hash-ip', weighted: true, tolerance: 0.25, contexts: randomClients },
  { name: 'iphash', weighted: true, tolerance: 0.25, contexts: randomClients },
  {
    name: 'hash-header:X-User',
    weighted: true,
    tolerance: 0.25,
    contexts: () => (i) => context('192.0.2.1', { 'x-user': `user-${i}` }),
  },
  {
    name: 'hash-cookie:sid',
    weighted: true,
    tolerance: 0.25,
    contexts: () => (i) => context('192.0.2.1', { cookie: `theme=dark; sid=s${i * 7919}` }),
  },
];

function assertPermutation(list: readonly VhostNode[], expected: readonly string[]): void {
  const got = addresses(list);
  assert.equal(new Set(got).size, got.length, `a node appears twice: ${got.join(' ')}`);
  assert.deepEqual([...got].sort(), [...expected].sort());
}

for (const subject of SUBJECTS) {
  describe(`balancer ${subject.name}`, () => {
    const setup = (options: Parameters<typeof rig>[0] = {}) => {
      const r = rig({ balancer: subject.name, ...options });
      return { r, balancer: r.balancing.defaultBalancer };
    };

    test('returns no candidate when the host has no active node', () => {
      const { r, balancer } = setup();
      r.add(node(1, { state: 'draining' }));
      assert.deepEqual(balancer.candidates(r.entry(), context()), []);
      assert.deepEqual(balancer.explain(r.entry(), context()).candidates, []);
    });

    test('returns the only node of a one-node host every time', () => {
      const { r, balancer } = setup();
      r.add(node(1));
      const next = subject.contexts();
      for (let i = 0; i < 20; i++)
        assert.deepEqual(addresses(balancer.candidates(r.entry(), next(i))), ['10.0.0.1:80']);
    });

    test('lists every live node exactly once in each candidate list', () => {
      const { r, balancer } = setup();
      for (let i = 1; i <= 5; i++) r.add(node(i, { weight: i }));
      const all = r.entry().live.map((n) => n.address);
      const next = subject.contexts();
      for (let i = 0; i < 300; i++) assertPermutation(balancer.candidates(r.entry(), next(i)), all);
    });

    test('spreads first choices in proportion to the weights', () => {
      const { r, balancer } = setup();
      const weights = [1, 2, 3, 4];
      weights.forEach((w, i) => {
        r.add(node(i + 1, { weight: w }));
      });
      const total = 4000;
      const counts = simulate(r, balancer, total, subject.contexts(), 16);
      const sum = weights.reduce((a, b) => a + b, 0);
      weights.forEach((w, i) => {
        const expected = subject.weighted ? (total * w) / sum : total / weights.length;
        const got = counts.get(`10.0.0.${i + 1}:80`) ?? 0;
        assert.ok(
          Math.abs(got - expected) <= expected * subject.tolerance,
          `node ${i + 1} (weight ${w}) got ${got}, expected ${expected.toFixed(0)} ± ${(subject.tolerance * 100).toFixed(0)}%`,
        );
      });
    });

    test('counts weight 0 as weight 1', () => {
      const { r, balancer } = setup();
      r.add(node(1, { weight: 0 }));
      r.add(node(2, { weight: 1 }));
      const counts = simulate(r, balancer, 2000, subject.contexts());
      const a = counts.get('10.0.0.1:80') ?? 0;
      assert.ok(a > 2000 * 0.35 && a < 2000 * 0.65, `weight-0 node got ${a} of 2000`);
    });

    test('never returns a draining node', () => {
      const { r, balancer } = setup();
      r.add(node(1));
      r.add(node(2, { state: 'draining' }));
      r.add(node(3));
      const next = subject.contexts();
      for (let i = 0; i < 100; i++)
        assertPermutation(balancer.candidates(r.entry(), next(i)), ['10.0.0.1:80', '10.0.0.3:80']);
    });

    test('puts the next backup level after every primary and never a deeper level', () => {
      const { r, balancer } = setup();
      r.add(node(1));
      r.add(node(2));
      r.add(node(3, { backup: 1 }));
      r.add(node(4, { backup: 2 }));
      const next = subject.contexts();
      for (let i = 0; i < 50; i++) {
        const got = addresses(balancer.candidates(r.entry(), next(i)));
        assert.deepEqual([...got.slice(0, 2)].sort(), ['10.0.0.1:80', '10.0.0.2:80']);
        assert.deepEqual(got.slice(2), ['10.0.0.3:80']);
      }
    });

    test('serves from the backup level while no primary is active', () => {
      const { r, balancer } = setup();
      r.add(node(1, { state: 'draining' }));
      r.add(node(2, { backup: 1 }));
      r.add(node(3, { backup: 1 }));
      r.add(node(4, { backup: 2 }));
      const next = subject.contexts();
      for (let i = 0; i < 50; i++) {
        const got = addresses(balancer.candidates(r.entry(), next(i)));
        assert.deepEqual([...got.slice(0, 2)].sort(), ['10.0.0.2:80', '10.0.0.3:80']);
        assert.deepEqual(got.slice(2), ['10.0.0.4:80']);
      }
    });

    test('skips an ejected node and takes it back once it is re-admitted', () => {
      const { r, balancer } = setup();
      for (let i = 1; i <= 4; i++) r.add(node(i));
      for (let k = 0; k < 5; k++) r.balancing.failed(HOST, '10.0.0.2:80');
      const next = subject.contexts();
      for (let i = 0; i < 100; i++) {
        assertPermutation(balancer.candidates(r.entry(), next(i)), ['10.0.0.1:80', '10.0.0.3:80', '10.0.0.4:80']);
      }
      r.clock.advance(30_000);
      r.balancing.responded(HOST, '10.0.0.2:80', 200, 1);
      for (let i = 0; i < 100; i++) {
        assertPermutation(
          balancer.candidates(r.entry(), next(i)),
          r.entry().live.map((n) => n.address),
        );
      }
    });

    test('explain answers what the next pick will be without advancing any state', () => {
      const a = setup();
      const b = setup();
      for (const { r } of [a, b]) for (let i = 1; i <= 4; i++) r.add(node(i, { weight: i }));
      const nextA = subject.contexts();
      const nextB = subject.contexts();
      for (let i = 0; i < 200; i++) {
        const ctx = nextA(i);
        const explained = a.balancer.explain(a.r.entry(), ctx);
        a.balancer.explain(a.r.entry(), ctx);
        assert.equal(explained.balancer, subject.name.toLowerCase());
        assert.ok(explained.reason.length > 0);
        const picked = a.balancer.candidates(a.r.entry(), ctx);
        assert.deepEqual(addresses(picked), addresses(b.balancer.candidates(b.r.entry(), nextB(i))));
        if (subject.name !== 'p2c-ewma') assert.deepEqual(addresses(explained.candidates), addresses(picked));
      }
    });
  });
}
