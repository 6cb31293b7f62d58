/**
 * Admin writes and subscriptions on the same table, end to end (real UDP packets, the composed app):
 * operator drains hold across announcements, admin nodes shadow and then give back subscribed ones,
 * and rejected packets appear in the event log.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { encodeSubscription } from '@switchyard/protocol';
import type { SwitchyardApp } from 'switchyard';
import { get, startApp, waitFor } from './support.js';

interface Reply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies in assertions
  body: any;
}

function admin(port: number, method: string, path: string, body?: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('admin writes and subscriptions', () => {
  let app: SwitchyardApp;
  let httpPort: number;
  let adminPort: number;
  let subscriptionPort: number;
  let backend: http.Server;
  let address: string;
  const udp = dgram.createSocket('udp4');
  const send = (command: 'subscribe' | 'unsubscribe', key: string, pairs: [string, string][] = []) =>
    new Promise<void>((resolve, reject) =>
      udp.send(
        encodeSubscription(command, [['key', key], ['address', address], ['proto', 'http'], ...pairs]),
        subscriptionPort,
        '127.0.0.1',
        (error) => (error ? reject(error) : resolve()),
      ),
    );
  const nodeOf = async (key: string) => (await admin(adminPort, 'GET', `/v1/vhosts/${key}`)).body?.nodes?.[0];

  before(async () => {
    backend = http.createServer((_req, res) => res.end('sub'));
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    address = `127.0.0.1:${(backend.address() as AddressInfo).port}`;
    ({ app, httpPort, adminPort, subscriptionPort } = await startApp());
  });
  after(async () => {
    udp.close();
    await app.close();
    backend.close();
  });

  test('an operator drain holds across announcements, and undrain brings the node back', async () => {
    await send('subscribe', 'hold.test');
    await waitFor(async () => ((await get(httpPort, 'hold.test')).status === 200 ? true : undefined), 5000, 'routable');
    const patched = await admin(adminPort, 'PATCH', `/v1/vhosts/hold.test/nodes/${address}`, { state: 'draining' });
    assert.equal(patched.body.state, 'draining');
    await send('subscribe', 'hold.test'); // a refresh
    await send('subscribe', 'hold.test', [['weight', '5']]); // a routing update
    await new Promise((resolve) => setTimeout(resolve, 100));
    const held = await nodeOf('hold.test');
    assert.deepEqual([held.state, held.source, held.weight], ['draining', 'subscription', 5]);
    assert.equal(typeof held.lastAnnounceAgeMs, 'number');
    assert.equal((await get(httpPort, 'hold.test')).status, 503);
    await admin(adminPort, 'PATCH', `/v1/vhosts/hold.test/nodes/${address}`, { state: 'active' });
    assert.equal((await get(httpPort, 'hold.test')).text, 'sub');
    // An unsubscribe still drains it: the source's drain is not lifted by the operator.
    await send('unsubscribe', 'hold.test');
    await waitFor(async () => ((await get(httpPort, 'hold.test')).status !== 200 ? true : undefined), 5000, 'drained');
  });

  test('an admin node shadows a subscribed one with the same address and gives the slot back when deleted', async () => {
    await send('subscribe', 'shadow.test');
    await waitFor(
      async () => ((await nodeOf('shadow.test'))?.source === 'subscription' ? true : undefined),
      5000,
      'sub',
    );
    const added = await admin(adminPort, 'POST', '/v1/vhosts/shadow.test/nodes', { address, weight: 7 });
    assert.equal(added.status, 201);
    await send('subscribe', 'shadow.test', [['weight', '2']]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual([(await nodeOf('shadow.test')).source, (await nodeOf('shadow.test')).weight], ['admin', 7]);
    assert.equal((await admin(adminPort, 'DELETE', `/v1/vhosts/shadow.test/nodes/${address}`)).status, 202);
    const restored = await waitFor(
      async () => {
        const node = await nodeOf('shadow.test');
        return node?.source === 'subscription' ? node : undefined;
      },
      5000,
      'the subscription back',
    );
    assert.equal(restored.weight, 2);
    assert.equal((await get(httpPort, 'shadow.test')).text, 'sub');
  });

  test('rejected packets and table changes appear in the event log', async () => {
    const since = (await admin(adminPort, 'GET', '/v1/events')).body.last;
    await new Promise<void>((resolve, reject) =>
      udp.send(
        encodeSubscription('subscribe', [
          ['key', 'events.test'],
          ['address', 'not an address'],
        ]),
        subscriptionPort,
        '127.0.0.1',
        (error) => (error ? reject(error) : resolve()),
      ),
    );
    await send('unsubscribe', 'never-subscribed.test');
    await send('subscribe', 'events.test');
    const events = await waitFor(
      async () => {
        const reply = await admin(adminPort, 'GET', `/v1/events?since=${since}`);
        const types = reply.body.events.map((e: { type: string }) => e.type);
        return types.includes('added') && types.filter((t: string) => t === 'rejected').length === 2
          ? reply.body.events
          : undefined;
      },
      5000,
      'events',
    );
    const rejected = events.filter((e: { type: string }) => e.type === 'rejected');
    assert.deepEqual(
      rejected.map((e: { reason: string; host?: string }) => [e.reason, e.host ?? null]),
      [
        ['bad-address', null],
        ['unknown-node', 'never-subscribed.test'],
      ],
    );
    const added = events.find((e: { type: string }) => e.type === 'added');
    assert.deepEqual([added.host, added.node, added.source], ['events.test', address, 'subscription']);
  });
});
