/** Passive ejection end to end over real sockets: a node answering 500 is ejected, the healthy one serves. */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, test } from 'node:test';
import type { OutlierEvent } from '../src/index.js';
import { FakeClock } from './balancing-fixtures.js';
import { httpNode, request, startBackend, startRouter } from './helpers.js';

describe('outlier ejection over real sockets', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('ejects the node that answers 500, then serves every request from the healthy node, then probes it again', async () => {
    let broken = true;
    const bad = await startBackend('bad', (_req, res) => {
      res.statusCode = broken ? 500 : 200;
      res.end(broken ? 'bad' : 'fixed');
    });
    const good = await startBackend('good');
    cleanups.push(
      () => bad.close(),
      () => good.close(),
    );
    const clock = new FakeClock();
    clock.time = Date.now();
    const { router, port } = await startRouter({ clock: clock.now });
    cleanups.push(() => router.close());
    const events: OutlierEvent[] = [];
    router.balancing.outliers.onEvent((e) => events.push(e));
    router.upsertNode(httpNode('app.test', bad.address));
    router.upsertNode(httpNode('app.test', good.address));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());

    const before: number[] = [];
    for (let i = 0; i < 10; i++) before.push((await request(port, { agent })).status);
    assert.deepEqual(before.filter((s) => s === 500).length, 5, 'wrr alternates until the fifth 500');
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.address}`),
      [`ejected ${bad.address}`],
    );
    const explained = router.explainRoute(router.table.get('app.test')!, { clientAddress: '127.0.0.1' });
    assert.deepEqual(
      explained.candidates.map((c) => c.address),
      [good.address],
    );

    const seenBefore = bad.seen.length;
    for (let i = 0; i < 20; i++) {
      const res = await request(port, { agent });
      assert.equal(res.status, 200);
      assert.equal(res.text, 'good');
    }
    assert.equal(bad.seen.length, seenBefore, 'the ejected node got no request');

    // The ejection period ends: one probe goes to the (now fixed) node and re-admits it.
    broken = false;
    clock.advance(30_000);
    const after: string[] = [];
    for (let i = 0; i < 4; i++) after.push((await request(port, { agent })).text);
    assert.ok(after.includes('fixed'), `the probe reached the node: ${after.join(' ')}`);
    assert.deepEqual(
      events.map((e) => e.type),
      ['ejected', 'readmitted'],
    );
  });
});
