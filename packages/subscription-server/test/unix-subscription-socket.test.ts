/**
 * A subscription server on a UNIX datagram socket (uWSGI's `--http-subscription-server /path`): packets
 * sent to the path reach the registry; stale socket files are replaced, other files refused; close()
 * removes the file. Uses the optional unix-dgram addon (skipped where it did not build).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { encodeSubscription } from '@switchyard/protocol';
import { loadUnixDgram, SubscriptionRegistry, SubscriptionServer } from '../src/index.js';

const addon = loadUnixDgram();
const SKIP = 'error' in addon ? `unix-dgram addon unavailable: ${addon.error}` : false;

interface Sender {
  send(buf: Buffer, offset: number, length: number, path: string, cb: (err?: Error) => void): void;
  close(): void;
}

function sendTo(socketPath: string, packet: Buffer): Promise<void> {
  const unix = createRequire(import.meta.url)('unix-dgram') as { createSocket(type: 'unix_dgram'): Sender };
  const sender = unix.createSocket('unix_dgram');
  return new Promise((resolve, reject) => {
    sender.send(packet, 0, packet.length, socketPath, (err) => {
      sender.close();
      if (err) reject(err);
      else resolve();
    });
  });
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const subscribe = (key: string) =>
  encodeSubscription('subscribe', [
    ['key', key],
    ['address', '127.0.0.1:3031'],
  ]);

describe('subscription server on a UNIX datagram socket', { skip: SKIP }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sy-unix-sub-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('takes subscriptions sent to the path, next to a UDP bind, and removes its file on close', async () => {
    const socketPath = path.join(dir, 'sub.sock');
    const registry = new SubscriptionRegistry();
    const server = new SubscriptionServer({ binds: ['127.0.0.1:0', socketPath], registry });
    await server.start();
    assert.deepEqual(server.unixPaths(), [socketPath]);
    assert.equal(server.addresses().length, 1);
    await sendTo(socketPath, subscribe('unix.test'));
    await until(() => registry.get('unix.test') !== undefined, 'the subscription');
    assert.equal(registry.get('unix.test')![0]!.address, '127.0.0.1:3031');
    await server.close();
    await server.close();
    assert.equal(existsSync(socketPath), false);
    registry.close();
  });

  test('replaces a stale socket file, refuses any other file with SY_BIND_FAILED, and binds abstract names', async () => {
    const socketPath = path.join(dir, 'stale.sock');
    const registry = new SubscriptionRegistry();
    const first = new SubscriptionServer({ binds: [socketPath], registry });
    await first.start();
    // A crash leaves the file behind: bind again while it exists (the first server still holds its fd).
    const second = new SubscriptionServer({ binds: [socketPath], registry });
    await second.start();
    await sendTo(socketPath, subscribe('stale.test'));
    await until(() => registry.get('stale.test') !== undefined, 'the subscription on the new socket');
    await second.close();
    await first.close();

    const regular = path.join(dir, 'not-a-socket');
    writeFileSync(regular, 'data');
    const refused = new SubscriptionServer({ binds: ['127.0.0.1:0', regular], registry });
    await assert.rejects(refused.start(), { code: 'SY_BIND_FAILED' });
    assert.equal(existsSync(regular), true, 'the file is left alone');
    assert.deepEqual(refused.addresses(), [], 'the UDP bind is undone');

    const abstract = `@sy-test-${process.pid}`;
    const named = new SubscriptionServer({ binds: [abstract], registry });
    await named.start();
    assert.deepEqual(named.unixPaths(), [abstract]);
    await sendTo(`\0${abstract.slice(1)}`, subscribe('abstract.test'));
    await until(() => registry.get('abstract.test') !== undefined, 'the subscription on the abstract socket');
    await named.close();
    registry.close();
  });
});
