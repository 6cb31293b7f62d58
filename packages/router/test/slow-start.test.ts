import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Router, SlowStart } from '../src/index.js';
import { context, FakeClock, HOST, node, rig, simulate } from './balancing-fixtures.js';

const A = '10.0.0.1:80';
const B = '10.0.0.2:80';

describe('slow start (joining → active)', () => {
  test('ramps a joining node’s weight linearly from 10% to 100% over the window', () => {
    const clock = new FakeClock();
    const ramp = new SlowStart({ clock: clock.now, windowMs: 10_000 });
    ramp.joined(HOST, B);
    const factors: number[] = [];
    for (let s = 0; s <= 12; s += 2) factors.push(Math.round(ramp.factor(HOST, B, clock.time + s * 1000) * 100) / 100);
    assert.deepEqual(factors, [0.1, 0.28, 0.46, 0.64, 0.82, 1, 1]);
    assert.equal(ramp.factor(HOST, A, clock.time), 1, 'a node that is not joining keeps its weight');
    assert.equal(ramp.ramping(HOST), false, 'the record is dropped once the ramp is over');
  });

  test('ramps a node the operator adds to a serving host, as it ramps a subscribed one', () => {
    const router = new Router({ http: [], balancing: { slowStartMs: 10_000 } });
    router.ops.operator.addNode('admin.test', { address: '127.0.0.1:3001', protocol: 'http', weight: 1 });
    router.ops.operator.addNode('admin.test', { address: '127.0.0.1:3002', protocol: 'http', weight: 1 });
    assert.equal(router.lifecycleState('admin.test', '127.0.0.1:3001'), 'active', 'the first node does not ramp');
    assert.equal(router.lifecycleState('admin.test', '127.0.0.1:3002'), 'joining');
  });

  test('is off with a window of 0 (the default)', () => {
    const r = rig();
    r.add(node(1));
    r.add(node(2));
    assert.equal(r.balancing.lifecycleState(HOST, B), 'active');
    assert.deepEqual(r.balancing.balancerFor(HOST).explain(r.entry(), context()).pool.weights, [1, 1]);
  });

  test('shows a node added to a serving host as joining, then active, and draining when it drains', () => {
    const r = rig({ slowStartMs: 10_000 });
    r.add(node(1));
    r.add(node(2));
    assert.equal(r.balancing.lifecycleState(HOST, A), 'active', 'the first node of a host does not ramp');
    assert.equal(r.balancing.lifecycleState(HOST, B), 'joining');
    r.clock.advance(10_000);
    assert.equal(r.balancing.lifecycleState(HOST, B), 'active');
    r.table.setState(HOST, B, 'draining');
    assert.equal(r.balancing.lifecycleState(HOST, B), 'draining');
    r.remove(B);
    assert.equal(r.balancing.lifecycleState(HOST, B), undefined);
  });

  test('gives a joining node a growing share of picks as its ramp progresses', () => {
    const r = rig({ slowStartMs: 10_000 });
    r.add(node(1));
    r.add(node(2));
    const balancer = r.balancing.balancerFor(HOST);
    const share = () => {
      // 100 picks within 100 ms: the factor barely moves during one sample.
      const counts = simulate(r, balancer, 100, () => context(), 1);
      return (counts.get(B) ?? 0) / 100;
    };
    const early = share();
    r.clock.advance(4_900);
    const middle = share();
    r.clock.advance(5_000);
    const late = share();
    assert.ok(Math.abs(early - 0.1 / 1.1) < 0.03, `early share ${early}`);
    assert.ok(Math.abs(middle - 0.55 / 1.55) < 0.03, `middle share ${middle}`);
    assert.ok(Math.abs(late - 0.5) < 0.03, `late share ${late}`);
    const weights = balancer.explain(r.entry(), context()).pool.weights;
    assert.deepEqual(weights, [1, 1]);
  });

  test('applies to the effective weight, never to the table', () => {
    const r = rig({ slowStartMs: 10_000 });
    r.add(node(1, { weight: 4 }));
    r.add(node(2, { weight: 4 }));
    const explained = r.balancing.explain(r.entry(), context());
    assert.deepEqual(explained.candidates.map((c) => [c.address, c.weight, c.effectiveWeight, c.lifecycle]).sort(), [
      [A, 4, 4, 'active'],
      [B, 4, 0.4, 'joining'],
    ]);
    assert.equal(r.table.node(HOST, B)?.weight, 4);
  });

  test('does not ramp a node that comes back from draining', () => {
    const r = rig({ slowStartMs: 10_000 });
    r.add(node(1));
    r.add(node(2));
    r.clock.advance(10_000);
    r.table.setState(HOST, B, 'draining');
    r.add(node(2));
    assert.equal(r.balancing.lifecycleState(HOST, B), 'active');
  });
});
