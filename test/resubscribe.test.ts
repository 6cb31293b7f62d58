/**
 * Router chaining end to end (`--http-resubscribe`, uWSGI's option): a node subscribed to the front
 * router is routable on the router behind it too, and its unsubscribe reaches both.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { encodeSubscription } from '@switchyard/protocol';
import { get, startApp, waitFor } from './support.js';

describe('--http-resubscribe', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('a node subscribed to the front router is routable behind it, and its unsubscribe reaches both', async () => {
    const node = http.createServer((_req, res) => res.end('chained'));
    await new Promise<void>((resolve) => node.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => node.close(() => resolve())));
    const nodeAddress = `127.0.0.1:${(node.address() as AddressInfo).port}`;

    const back = await startApp();
    cleanups.push(() => back.app.close());
    const front = await startApp(['--http-resubscribe', `127.0.0.1:${back.subscriptionPort}`]);
    cleanups.push(() => front.app.close());

    const udp = createSocket('udp4');
    cleanups.push(() => new Promise<void>((resolve) => udp.close(() => resolve())));
    const send = (command: 'subscribe' | 'unsubscribe') =>
      udp.send(
        encodeSubscription(command, [
          ['key', 'chain.test'],
          ['address', nodeAddress],
          ['proto', 'http'],
        ]),
        front.subscriptionPort,
        '127.0.0.1',
      );
    send('subscribe');
    for (const { httpPort } of [front, back]) {
      const reply = await waitFor(
        async () => {
          const r = await get(httpPort, 'chain.test');
          return r.status === 200 ? r : undefined;
        },
        5000,
        'the chained node routable',
      );
      assert.equal(reply.text, 'chained');
    }
    send('unsubscribe');
    for (const { app } of [front, back]) {
      await waitFor(() => (app.registry.get('chain.test') === undefined ? true : undefined), 5000, 'the node gone');
    }
    assert.equal(front.app.resubscriber?.stats().forwarded, 2);
  });
});
