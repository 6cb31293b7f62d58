/** Behaviour specific to the load-aware balancers: least-requests and p2c over peak-EWMA latency. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PeakEwma } from '../src/peak-ewma.js';
import { addresses, context, HOST, node, rig, simulate } from './balancing-fixtures.js';

const A = '10.0.0.1:80';
const B = '10.0.0.2:80';
const C = '10.0.0.3:80';

describe('peak EWMA', () => {
  test('jumps to a sample above the estimate and comes down with the 10 s time constant', () => {
    const ewma = new PeakEwma();
    ewma.observe(10, 0);
    ewma.observe(100, 1);
    assert.equal(ewma.estimate(1), 100);
    ewma.observe(10, 10_001);
    // Weight of the old value after 10 s: e^-1.
    const expected = 100 * Math.exp(-1) + 10 * (1 - Math.exp(-1));
    assert.ok(Math.abs(ewma.estimate(10_001) - expected) < 1e-9);
  });

  test('decays toward 0 while no sample arrives, without changing state on read', () => {
    const ewma = new PeakEwma();
    ewma.observe(50, 0);
    assert.ok(Math.abs(ewma.estimate(10_000) - 50 * Math.exp(-1)) < 1e-9);
    assert.ok(Math.abs(ewma.estimate(10_000) - 50 * Math.exp(-1)) < 1e-9);
    assert.equal(ewma.estimate(0), 50);
  });
});

describe('least requests', () => {
  test('picks the node with the fewest requests in flight', () => {
    const r = rig({ balancer: 'least-requests' });
    for (let i = 1; i <= 3; i++) r.add(node(i));
    r.runtime.begin(HOST, A);
    r.runtime.begin(HOST, A);
    r.runtime.begin(HOST, C);
    const balancer = r.balancing.balancerFor(HOST);
    assert.deepEqual(addresses(balancer.candidates(r.entry(), context())), [B, C, A]);
    assert.match(
      balancer.explain(r.entry(), context()).reason,
      /10\.0\.0\.2:80 has the lowest in-flight per weight \(0\)/,
    );
  });

  test('weighs in-flight counts by weight (wlrc) or not (lrc)', () => {
    for (const [name, expected] of [
      ['wlrc', B],
      ['lrc', A],
    ] as const) {
      const r = rig({ balancer: name });
      r.add(node(1, { weight: 1 }));
      r.add(node(2, { weight: 4 }));
      r.runtime.begin(HOST, A);
      for (let i = 0; i < 2; i++) r.runtime.begin(HOST, B);
      r.runtime.end(HOST, A);
      r.runtime.begin(HOST, A);
      // A: 1 in flight, weight 1 → 1; B: 2 in flight, weight 4 → 0.5.
      assert.equal(r.balancing.balancerFor(HOST).candidates(r.entry(), context())[0]!.address, expected, name);
    }
  });

  test('spreads idle traffic round-robin instead of always taking the first node', () => {
    const r = rig({ balancer: 'lrc' });
    for (let i = 1; i <= 3; i++) r.add(node(i));
    const firsts = Array.from(
      { length: 6 },
      () => r.balancing.balancerFor(HOST).candidates(r.entry(), context())[0]!.address,
    );
    assert.deepEqual(new Set(firsts).size, 3);
  });
});

describe('p2c over peak-EWMA', () => {
  test('sends most traffic to the fastest node and keeps probing the slow ones', () => {
    const r = rig({ balancer: 'p2c-ewma' });
    for (let i = 1; i <= 3; i++) r.add(node(i));
    const latency: Record<string, number> = { [A]: 5, [B]: 50, [C]: 50 };
    const counts = simulate(
      r,
      r.balancing.balancerFor(HOST),
      3000,
      () => context(),
      4,
      (a) => latency[a]!,
    );
    const fast = counts.get(A) ?? 0;
    assert.ok(fast > 3000 * 0.6, `fast node got ${fast} of 3000`);
    assert.ok((counts.get(B) ?? 0) > 0 && (counts.get(C) ?? 0) > 0, 'slow nodes still get some traffic');
  });

  test('moves away from a node whose latency spikes at once', () => {
    const r = rig({ balancer: 'p2c-ewma' });
    r.add(node(1));
    r.add(node(2));
    r.runtime.begin(HOST, A);
    r.runtime.begin(HOST, B);
    r.balancing.responded(HOST, A, 200, 5);
    r.balancing.responded(HOST, B, 200, 5);
    r.balancing.responded(HOST, A, 200, 500);
    const balancer = r.balancing.balancerFor(HOST);
    for (let i = 0; i < 10; i++) assert.equal(balancer.candidates(r.entry(), context())[0]!.address, B);
    assert.match(balancer.explain(r.entry(), context()).reason, /10\.0\.0\.2:80=10, 10\.0\.0\.1:80=1000/);
  });

  test('tries a node that never answered while idle, but only one request at a time', () => {
    const r = rig({ balancer: 'p2c-ewma' });
    r.add(node(1));
    r.add(node(2));
    r.runtime.begin(HOST, A);
    r.balancing.responded(HOST, A, 200, 5);
    r.runtime.end(HOST, A);
    const balancer = r.balancing.balancerFor(HOST);
    assert.equal(balancer.candidates(r.entry(), context())[0]!.address, B, 'unanswered and idle: cost 0');
    r.runtime.begin(HOST, B);
    assert.equal(balancer.candidates(r.entry(), context())[0]!.address, A, 'unanswered with one in flight: penalty');
  });
});
