import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { OutlierEvent } from '../src/index.js';
import { NodeHealthHooks } from '../src/node-health.js';
import { addresses, context, HOST, node, rig } from './balancing-fixtures.js';

const A = '10.0.0.1:80';
const B = '10.0.0.2:80';
const C = '10.0.0.3:80';

function threeNodes(options: Parameters<typeof rig>[0] = {}) {
  const r = rig(options);
  for (let i = 1; i <= 3; i++) r.add(node(i));
  const events: OutlierEvent[] = [];
  r.balancing.outliers.onEvent((e) => events.push(e));
  return { r, events, pick: () => addresses(r.balancing.defaultBalancer.candidates(r.entry(), context())) };
}

function fail(r: ReturnType<typeof rig>, address: string, times: number): void {
  for (let i = 0; i < times; i++) r.balancing.failed(HOST, address);
}

describe('passive outlier ejection', () => {
  test('ejects a node after 5 consecutive connect failures and not before', () => {
    const { r, events, pick } = threeNodes();
    fail(r, B, 4);
    assert.equal(r.balancing.outliers.status(B, r.clock.time), 'admitted');
    fail(r, B, 1);
    assert.equal(r.balancing.outliers.status(B, r.clock.time), 'ejected');
    assert.deepEqual(
      events.map((e) => [e.type, e.address, e.type === 'ejected' ? e.reason : '']),
      [['ejected', B, 'errors']],
    );
    for (let i = 0; i < 30; i++) assert.ok(!pick().includes(B));
  });

  test('ejects a node after 5 consecutive 5xx responses; a 2xx in between resets the streak', () => {
    const { r } = threeNodes();
    for (let i = 0; i < 4; i++) r.balancing.responded(HOST, C, 503, 1);
    r.balancing.responded(HOST, C, 200, 1);
    for (let i = 0; i < 4; i++) r.balancing.responded(HOST, C, 500, 1);
    assert.equal(r.balancing.outliers.status(C, r.clock.time), 'admitted');
    r.balancing.responded(HOST, C, 502, 1);
    assert.equal(r.balancing.outliers.info(C)?.lastReason, '5xx');
    assert.equal(r.balancing.outliers.status(C, r.clock.time), 'ejected');
  });

  test('honours configured thresholds, 0 disabling a signal', () => {
    const { r } = threeNodes({ outlier: { consecutiveErrors: 2, consecutive5xx: 0 } });
    for (let i = 0; i < 50; i++) r.balancing.responded(HOST, A, 500, 1);
    assert.equal(r.balancing.outliers.status(A, r.clock.time), 'admitted');
    fail(r, A, 2);
    assert.equal(r.balancing.outliers.status(A, r.clock.time), 'ejected');
  });

  test('ejects for 30 s × the ejection count, capped at 5 minutes', () => {
    const { r, events } = threeNodes();
    const periods: number[] = [];
    for (let round = 0; round < 12; round++) {
      if (round === 0) fail(r, A, 5);
      else {
        // The period ends; the probe fails and re-ejects.
        r.clock.time = (events.at(-1) as Extract<OutlierEvent, { type: 'ejected' }>).until;
        assert.equal(r.balancing.outliers.status(A, r.clock.time), 'half-open');
        r.balancing.failed(HOST, A);
      }
      const last = events.at(-1) as Extract<OutlierEvent, { type: 'ejected' }>;
      periods.push((last.until - last.at) / 1000);
    }
    assert.deepEqual(periods, [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300]);
    assert.equal((events.at(-1) as Extract<OutlierEvent, { type: 'ejected' }>).reason, 'probe-failed');
  });

  test('admits exactly one probe request when the ejection ends, and re-admits the node when it succeeds', () => {
    const { r, events, pick } = threeNodes({ balancer: 'wrr' });
    fail(r, A, 5);
    r.clock.advance(30_000);
    const picks = Array.from({ length: 30 }, pick);
    const withA = picks.filter((p) => p.includes(A));
    assert.equal(withA.length, 1, 'one candidate list holds the probe');
    assert.equal(withA[0]![0], A, 'the probe is a first choice, never a fallback');
    assert.equal(r.balancing.outliers.status(A, r.clock.time), 'probing');
    r.balancing.responded(HOST, A, 200, 3);
    assert.equal(r.balancing.outliers.status(A, r.clock.time), 'admitted');
    assert.deepEqual(
      events.map((e) => e.type),
      ['ejected', 'readmitted'],
    );
    assert.ok(Array.from({ length: 6 }, pick).every((p) => p.includes(A)));
  });

  test('frees the probe slot when the probe attempt ends without an answer', () => {
    const { r, pick } = threeNodes();
    fail(r, A, 5);
    r.clock.advance(30_000);
    let probed = false;
    for (let i = 0; i < 10 && !probed; i++) probed = pick()[0] === A;
    assert.ok(probed, 'wrr puts the half-open node first within a cycle');
    r.runtime.begin(HOST, A);
    r.runtime.end(HOST, A);
    r.balancing.attemptEnded(A);
    assert.equal(r.balancing.outliers.status(A, r.clock.time), 'half-open');
  });

  test('ignores outcomes of requests sent before the ejection while the node is out', () => {
    const { r } = threeNodes();
    fail(r, A, 5);
    r.balancing.responded(HOST, A, 200, 1);
    assert.equal(r.balancing.outliers.status(A, r.clock.time), 'ejected');
  });

  test('never ejects the last active node of a host', () => {
    const r = rig();
    r.add(node(1));
    r.add(node(2, { state: 'draining' }));
    fail(r, A, 20);
    assert.equal(r.balancing.outliers.status(A, r.clock.time), 'admitted');
    assert.ok(r.balancing.outliers.stats().suppressed >= 1);
    assert.deepEqual(addresses(r.balancing.defaultBalancer.candidates(r.entry(), context())), [A]);
  });

  test('refuses to eject more than half of a host’s nodes', () => {
    const { r } = threeNodes();
    fail(r, A, 5);
    fail(r, B, 5);
    assert.equal(r.balancing.outliers.status(A, r.clock.time), 'ejected');
    assert.equal(r.balancing.outliers.status(B, r.clock.time), 'admitted');
    assert.equal(r.balancing.outliers.stats().suppressed, 1);
  });

  test('enters panic mode and ignores ejection when most of a host’s nodes are out', () => {
    const r = rig();
    for (let i = 1; i <= 3; i++) r.add(node(i));
    fail(r, A, 5);
    // Another host's view ejected C too (the guard judges from the reporting host).
    r.table.upsert({ ...node(3), key: 'other.test' });
    r.table.upsert({ ...node(4), key: 'other.test' });
    r.table.upsert({ ...node(5), key: 'other.test' });
    for (let i = 0; i < 5; i++) r.balancing.failed('other.test', C);
    assert.equal(r.balancing.outliers.status(C, r.clock.time), 'ejected');
    const explained = r.balancing.explain(r.entry(), context());
    assert.equal(explained.panic, true);
    assert.match(explained.reason, /panic/);
    const seen = new Set<string>();
    for (let i = 0; i < 9; i++) seen.add(addresses(r.balancing.defaultBalancer.candidates(r.entry(), context()))[0]!);
    assert.deepEqual([...seen].sort(), [A, B, C]);
  });

  test('serves from the backup level while every primary is ejected', () => {
    const r = rig();
    r.add(node(1));
    r.add(node(2, { backup: 1 }));
    fail(r, A, 5);
    assert.equal(r.balancing.outliers.status(A, r.clock.time), 'ejected');
    assert.deepEqual(addresses(r.balancing.defaultBalancer.candidates(r.entry(), context())), ['10.0.0.2:80']);
  });

  test('publishes ejections and re-admissions to the operator surface with their state', () => {
    const { r } = threeNodes();
    const hooks = new NodeHealthHooks();
    r.balancing.reportTo(hooks);
    const seen: string[] = [];
    hooks.on((e) => seen.push(`${e.type} ${e.key} ${e.address} ${e.reason ?? ''}`));
    fail(r, A, 5);
    assert.deepEqual(hooks.describe(HOST, A), {
      ejected: true,
      until: r.clock.time + 30_000,
      reason: 'errors',
      detail: { status: 'ejected', ejections: 1 },
    });
    assert.equal(hooks.describe(HOST, B), undefined);
    r.clock.advance(30_000);
    r.balancing.responded(HOST, A, 204, 1);
    assert.deepEqual(seen, [`ejected ${HOST} ${A} errors`, `readmitted ${HOST} ${A} `]);
    assert.equal(hooks.describe(HOST, A), undefined);
  });

  test('forgets the ejection count once the node stayed admitted for the longest period', () => {
    const { r, events } = threeNodes();
    fail(r, A, 5);
    r.clock.advance(30_000);
    r.balancing.responded(HOST, A, 200, 1);
    r.clock.advance(300_000);
    fail(r, A, 5);
    const last = events.at(-1) as Extract<OutlierEvent, { type: 'ejected' }>;
    assert.equal(last.ejections, 1);
    assert.equal(last.until - last.at, 30_000);
  });
});
