/**
 * Balancer choice end to end: `--balancer`, a subscription's `algo` over real UDP (first packet of a host
 * wins, unknown names fall back to wrr and are counted), `--slow-start` showing a joining node.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { encodeSubscription } from '@switchyard/protocol';
import { parseCli } from 'switchyard';
import { startApp, waitFor } from './support.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function backend(name: string): Promise<string> {
  const server = http.createServer((_req, res) => res.end(name));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function subscribe(port: number, fields: Record<string, string>): Promise<void> {
  const socket = createSocket('udp4');
  const packet = encodeSubscription('subscribe', Object.entries(fields));
  await new Promise<void>((resolve, reject) =>
    socket.send(packet, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())),
  );
  await new Promise<void>((resolve) => socket.close(() => resolve()));
}

function get(port: number, host: string, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, headers: { host, ...headers }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => resolve(`${res.statusCode} ${body}`));
      })
      .on('error', reject);
  });
}

describe('balancer choice', () => {
  test('takes the default balancer from --balancer (and its uWSGI alias --subscription-algo)', async () => {
    const { app } = await startApp(['--balancer', 'p2c-ewma']);
    cleanups.push(() => app.close());
    assert.equal(app.router.balancer.name, 'p2c-ewma');
    const parsed = parseCli(['--subscription-algo', 'lrc']);
    assert.equal(parsed.kind === 'run' && parsed.config.balancing.balancer, 'lrc');
  });

  test('refuses an unknown --balancer with SY_BAD_OPTION', () => {
    assert.throws(() => parseCli(['--balancer', 'round-robin']), { code: 'SY_BAD_OPTION' });
    assert.throws(() => parseCli(['--outlier-max-ejection-percent', '150']), { code: 'SY_BAD_OPTION' });
  });

  test('uses the algo of the packet that created a host, sticks a header to one node, and counts unknown names', async () => {
    const { app, httpPort, subscriptionPort } = await startApp();
    cleanups.push(() => app.close());
    const a = await backend('a');
    const b = await backend('b');
    await subscribe(subscriptionPort, { key: 'sticky.test', address: a, proto: 'http', algo: 'hash-header:X-User' });
    await waitFor(() => app.router.table.get('sticky.test'), 3000, 'sticky.test');
    // A later packet's algo is ignored (uWSGI honours the one that creates the pool).
    await subscribe(subscriptionPort, { key: 'sticky.test', address: b, proto: 'http', algo: 'lrc' });
    await waitFor(() => (app.router.table.get('sticky.test')?.live.length === 2 ? true : undefined), 3000, 'two nodes');
    assert.equal(app.router.balancerFor('sticky.test').name, 'hash-header:x-user');
    for (const user of ['alice', 'bob', 'carol']) {
      const answers = new Set<string>();
      for (let i = 0; i < 6; i++) answers.add(await get(httpPort, 'sticky.test', { 'x-user': user }));
      assert.equal(answers.size, 1, `${user} always lands on one node: ${[...answers].join(', ')}`);
    }

    await subscribe(subscriptionPort, { key: 'odd.test', address: a, proto: 'http', algo: 'fastest-please' });
    await waitFor(() => app.router.table.get('odd.test'), 3000, 'odd.test');
    assert.equal(app.router.balancerFor('odd.test').name, 'wrr');
    assert.equal(app.router.balancing.stats().unknownAlgorithms, 1);
    assert.equal(await get(httpPort, 'odd.test'), '200 a');
  });

  test('shows a node joining a serving host as joining under --slow-start', async () => {
    const { app, subscriptionPort } = await startApp(['--slow-start', '60']);
    cleanups.push(() => app.close());
    const a = await backend('a');
    const b = await backend('b');
    await subscribe(subscriptionPort, { key: 'ramp.test', address: a, proto: 'http' });
    await waitFor(() => app.router.table.get('ramp.test'), 3000, 'ramp.test');
    await subscribe(subscriptionPort, { key: 'ramp.test', address: b, proto: 'http' });
    await waitFor(() => (app.router.table.get('ramp.test')?.live.length === 2 ? true : undefined), 3000, 'two nodes');
    assert.equal(app.router.lifecycleState('ramp.test', a), 'active');
    assert.equal(app.router.lifecycleState('ramp.test', b), 'joining');
  });
});
