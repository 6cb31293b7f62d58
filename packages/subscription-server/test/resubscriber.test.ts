/**
 * Router chaining (`--http-resubscribe`, resubscriber.ts): accepted packets go on byte for byte to the
 * next subscription server, rejected ones never, and the same bytes at most once per window (loop guard).
 * Real UDP sockets on 127.0.0.1; the dedupe window runs on an injected clock.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, describe, test } from 'node:test';
import { encodeSubscription } from '@switchyard/protocol';
import { parseResubscribeTarget, Resubscriber, SubscriptionRegistry, SubscriptionServer } from '../src/index.js';

/** A UDP socket collecting what it receives. */
async function receiver(): Promise<{ socket: Socket; port: number; received: Buffer[] }> {
  const socket = createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (msg) => received.push(msg));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, port: socket.address().port, received };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

describe('resubscriber', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('parses numeric ip:port and [ipv6]:port targets only', () => {
    assert.deepEqual(parseResubscribeTarget('10.0.0.2:2626'), { host: '10.0.0.2', port: 2626, family: 4 });
    assert.deepEqual(parseResubscribeTarget('[::1]:2626'), { host: '::1', port: 2626, family: 6 });
    for (const bad of ['router.example:2626', '10.0.0.2', '10.0.0.2:0', '10.0.0.2:70000', '[::1]', '1.2.3.999:1']) {
      assert.equal(parseResubscribeTarget(bad), undefined, bad);
    }
  });

  test('forwards accepted packets byte for byte, never rejected ones', async () => {
    const next = await receiver();
    cleanups.push(() => {
      next.socket.close();
    });
    const resubscriber = new Resubscriber({ targets: [{ host: '127.0.0.1', port: next.port, family: 4 }] });
    await resubscriber.start();
    cleanups.push(() => resubscriber.close());
    const registry = new SubscriptionRegistry();
    const server = new SubscriptionServer({ binds: ['127.0.0.1:0'], registry, forwarder: resubscriber });
    const source = { address: '127.0.0.1', port: 5000, family: 'IPv4' };
    const subscribe = encodeSubscription('subscribe', [
      ['key', 'chain.test'],
      ['address', '127.0.0.1:3031'],
    ]);
    assert.equal(server.handleDatagram(subscribe, source).accepted, true);
    const garbage = Buffer.from([224, 3, 0, 0, 1, 2, 3]);
    assert.equal(server.handleDatagram(garbage, source).accepted, false);
    const unknown = encodeSubscription('unsubscribe', [
      ['key', 'other.test'],
      ['address', '127.0.0.1:3032'],
    ]);
    assert.equal(server.handleDatagram(unknown, source).accepted, false);
    await until(() => next.received.length >= 1, 'the forwarded packet');
    await settle();
    assert.deepEqual(next.received, [subscribe]);
    assert.deepEqual(resubscriber.stats(), { forwarded: 1, repeated: 0, failed: 0 });
    registry.close();
  });

  test('sends the same bytes at most once per window, so two routers chained both ways stop bouncing', async () => {
    const next = await receiver();
    cleanups.push(() => {
      next.socket.close();
    });
    let now = 0;
    const resubscriber = new Resubscriber({
      targets: [{ host: '127.0.0.1', port: next.port, family: 4 }],
      clock: () => now,
    });
    await resubscriber.start();
    cleanups.push(() => resubscriber.close());
    const packet = encodeSubscription('subscribe', [
      ['key', 'loop.test'],
      ['address', '127.0.0.1:3031'],
    ]);
    resubscriber.forward(packet);
    now += 500;
    resubscriber.forward(packet); // the packet coming back round the loop
    now += 600;
    resubscriber.forward(packet); // the node's next refresh, a window later
    await until(() => next.received.length >= 2, 'two forwarded packets');
    await settle();
    assert.equal(next.received.length, 2);
    assert.deepEqual(resubscriber.stats(), { forwarded: 2, repeated: 1, failed: 0 });
  });
});
