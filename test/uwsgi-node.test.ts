import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { get, SKIP_UWSGI, startApp, startUwsgiNode, type UwsgiNode, waitFor } from './support.js';

describe('a real uWSGI 2.0 node subscribing with --subscribe-to', { skip: SKIP_UWSGI }, () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('is routable within a second of its subscription and stops receiving after a graceful shutdown', async () => {
    const { app, httpPort, subscriptionPort } = await startApp();
    cleanups.push(() => app.close());
    let addedAt = 0;
    app.registry.onEvent((event) => {
      if (event.type === 'added' && addedAt === 0) addedAt = performance.now();
    });
    const node: UwsgiNode = await startUwsgiNode('u1', () => [
      '--subscribe-to',
      `127.0.0.1:${subscriptionPort}:wsgi.test`,
    ]);
    cleanups.push(() => node.stop());
    await waitFor(() => (addedAt > 0 ? true : undefined), 15_000, 'the uWSGI subscription');
    const reply = await waitFor(
      async () => {
        const r = await get(httpPort, 'wsgi.test', '/hello?x=1');
        return r.status === 200 ? r : undefined;
      },
      5_000,
      'a routed request',
    );
    const routableMs = performance.now() - addedAt;
    console.log(`uWSGI node routable ${routableMs.toFixed(2)} ms after its subscription was applied`);
    assert.ok(routableMs < 1000, `routable after ${routableMs} ms`);
    const environ = JSON.parse(reply.text) as Record<string, string>;
    assert.equal(environ.NODE, 'u1');
    assert.equal(environ.PATH_INFO, '/hello');
    assert.equal(environ.QUERY_STRING, 'x=1');
    assert.equal(environ.HTTP_HOST, 'wsgi.test');
    const registered = app.registry.get('wsgi.test')!;
    assert.equal(registered[0]!.protocol, 'uwsgi');
    assert.equal(registered[0]!.address, `127.0.0.1:${node.port}`);

    await node.stop('SIGINT');
    // The unsubscribe drains the node; with nothing in flight it leaves the table at once.
    await waitFor(() => (app.registry.get('wsgi.test') === undefined ? true : undefined), 5_000, 'the node to leave');
    const after = await get(httpPort, 'wsgi.test');
    assert.equal(after.status, 404);
  });

  test('balances 1:3 between a --subscribe-to node and a --subscribe2 node with weight 3', async () => {
    const { app, httpPort, subscriptionPort } = await startApp();
    cleanups.push(() => app.close());
    const a = await startUwsgiNode('a', () => ['--subscribe-to', `127.0.0.1:${subscriptionPort}:mix.test`]);
    cleanups.push(() => a.stop());
    const b = await startUwsgiNode('b', (port) => [
      '--subscribe2',
      `server=127.0.0.1:${subscriptionPort},key=mix.test,addr=127.0.0.1:${port},weight=3`,
    ]);
    cleanups.push(() => b.stop());
    await waitFor(() => ((app.registry.get('mix.test')?.length ?? 0) === 2 ? true : undefined), 15_000, 'two nodes');
    // Let both nodes finish starting their workers before counting.
    await waitFor(async () => ((await get(httpPort, 'mix.test')).status === 200 ? true : undefined), 5_000, 'routable');
    const counts: Record<string, number> = {};
    for (let i = 0; i < 40; i++) {
      const r = await get(httpPort, 'mix.test');
      assert.equal(r.status, 200);
      const name = (JSON.parse(r.text) as { NODE: string }).NODE;
      counts[name] = (counts[name] ?? 0) + 1;
    }
    assert.deepEqual(counts, { a: 10, b: 30 });
  });
});
