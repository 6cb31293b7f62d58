import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { RetryBudget } from '../src/index.js';
import { FakeClock } from './balancing-fixtures.js';
import { httpNode, refusedPort, request, startBackend, startRouter } from './helpers.js';

describe('retry budget', () => {
  test('allows retries up to ratio × recent requests plus the floor, then refuses and counts', () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ clock: clock.now, ratio: 0.2, minPerSecond: 1, windowMs: 10_000 });
    for (let i = 0; i < 100; i++) budget.deposit();
    // 0.2 × 100 + 1/s × 10 s = 30 retries.
    let allowed = 0;
    for (let i = 0; i < 50; i++) if (budget.tryRetry()) allowed++;
    assert.equal(allowed, 30);
    assert.deepEqual(
      { retries: budget.stats().retries, exhausted: budget.stats().exhausted },
      { retries: 30, exhausted: 20 },
    );
  });

  test('forgets requests and retries that slid out of the window', () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ clock: clock.now, ratio: 0.5, minPerSecond: 0, windowMs: 10_000 });
    for (let i = 0; i < 10; i++) budget.deposit();
    for (let i = 0; i < 5; i++) assert.equal(budget.tryRetry(), true);
    assert.equal(budget.tryRetry(), false);
    clock.advance(5_000);
    assert.equal(budget.tryRetry(), false, 'still inside the window');
    clock.advance(5_000);
    assert.deepEqual(
      { requests: budget.stats().requests, retries: budget.stats().retries },
      { requests: 0, retries: 0 },
    );
    assert.equal(budget.tryRetry(), false, 'no recent request, no floor');
    for (let i = 0; i < 2; i++) budget.deposit();
    assert.equal(budget.tryRetry(), true);
  });

  test('keeps the floor available when there is no traffic', () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ clock: clock.now });
    let allowed = 0;
    for (let i = 0; i < 200; i++) if (budget.tryRetry()) allowed++;
    assert.equal(allowed, 100, 'default floor: 10 per second over a 10 s window');
  });

  test('turns retries off with ratio 0 and floor 0', () => {
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0 });
    for (let i = 0; i < 100; i++) budget.deposit();
    assert.equal(budget.tryRetry(), false);
  });

  describe('in the router', () => {
    const cleanups: (() => Promise<void> | void)[] = [];
    after(async () => {
      for (const c of cleanups.reverse()) await c();
    });

    /** A node that accepts and closes at once: a reset before any response byte (retryable for a GET). */
    async function closingNode(): Promise<string> {
      const server = net.createServer((socket) => socket.destroy());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
      return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    }

    test('answers 502 without retrying on the other node once the budget is spent', async () => {
      const healthy = await startBackend('ok');
      cleanups.push(() => healthy.close());
      const { router, port } = await startRouter({
        balancing: { retryBudget: { ratio: 0, minPerSecond: 0 }, outlier: { consecutiveErrors: 0 } },
      });
      cleanups.push(() => router.close());
      router.upsertNode(httpNode('app.test', await closingNode()));
      router.upsertNode(httpNode('app.test', healthy.address));
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await request(port)).status);
      // wrr alternates: the resetting node comes first every other request and is not retried.
      assert.deepEqual([...statuses].sort(), [200, 200, 502, 502]);
      assert.equal(router.stats().retries, 0);
      assert.equal(router.balancing.stats().retryBudget.exhausted, 2);
    });

    test('retries a refused connection on another node even with the budget spent (failover, not added load)', async () => {
      const healthy = await startBackend('ok');
      cleanups.push(() => healthy.close());
      const { router, port } = await startRouter({
        balancing: { retryBudget: { ratio: 0, minPerSecond: 0 }, outlier: { consecutiveErrors: 0 } },
      });
      cleanups.push(() => router.close());
      router.upsertNode(httpNode('app.test', `127.0.0.1:${await refusedPort()}`));
      router.upsertNode(httpNode('app.test', `127.0.0.1:${await refusedPort()}`));
      router.upsertNode(httpNode('app.test', healthy.address));
      // Two dead nodes of three, retries otherwise off: every request still reaches the live node.
      for (let i = 0; i < 30; i++) assert.equal((await request(port)).status, 200);
      assert.ok(router.stats().retries >= 20, `retries ${router.stats().retries}`);
      assert.equal(router.balancing.stats().retryBudget.exhausted, 0);
    });

    test('retries a refused connection on the other node while the budget allows', async () => {
      const healthy = await startBackend('ok');
      cleanups.push(() => healthy.close());
      const { router, port } = await startRouter({ balancing: { outlier: { consecutiveErrors: 0 } } });
      cleanups.push(() => router.close());
      router.upsertNode(httpNode('app.test', `127.0.0.1:${await refusedPort()}`));
      router.upsertNode(httpNode('app.test', healthy.address));
      for (let i = 0; i < 4; i++) assert.equal((await request(port)).status, 200);
      assert.equal(router.stats().retries, 2);
      assert.equal(router.balancing.stats().retryBudget.exhausted, 0);
    });
  });
});
