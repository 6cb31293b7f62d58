import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import type { VhostNode } from '../src/index.js';
import { request, startRouter } from './helpers.js';

/** A fake uwsgi node: records the 4-byte packet header of each request and answers 200. */
async function headerRecorder(): Promise<{ port: number; headers: number[][]; close(): Promise<void> }> {
  const headers: number[][] = [];
  const server = net.createServer((socket) => {
    socket.once('data', (chunk: Buffer) => {
      headers.push([chunk[0]!, chunk.readUInt16LE(1), chunk[3]!]);
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    headers,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function uwsgiNode(port: number, modifier1: number, modifier2: number): VhostNode {
  return {
    key: 'app.test',
    address: `127.0.0.1:${port}`,
    target: { kind: 'tcp', host: '127.0.0.1', port },
    protocol: 'uwsgi',
    weight: 1,
    modifier1,
    modifier2,
    backup: 0,
    source: 'subscription',
    state: 'active',
  };
}

describe('--http-modifier1 / --http-modifier2', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test("sends the node's own modifiers when no override is set", async () => {
    const node = await headerRecorder();
    cleanups.push(() => node.close());
    const { router, port } = await startRouter();
    cleanups.push(() => router.close());
    router.upsertNode(uwsgiNode(node.port, 5, 2));
    assert.equal((await request(port)).status, 200);
    assert.deepEqual([node.headers[0]![0], node.headers[0]![2]], [5, 2]);
  });

  test('replaces each modifier that is overridden with a non-zero value, and only that one', async () => {
    const node = await headerRecorder();
    cleanups.push(() => node.close());
    const both = await startRouter({ modifier1: 7, modifier2: 3 });
    cleanups.push(() => both.router.close());
    both.router.upsertNode(uwsgiNode(node.port, 5, 2));
    assert.equal((await request(both.port)).status, 200);
    const first = await startRouter({ modifier1: 9 });
    cleanups.push(() => first.router.close());
    first.router.upsertNode(uwsgiNode(node.port, 5, 2));
    assert.equal((await request(first.port)).status, 200);
    assert.deepEqual(
      node.headers.map((h) => [h[0], h[2]]),
      [
        [7, 3],
        [9, 2],
      ],
    );
  });
});
