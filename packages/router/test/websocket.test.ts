import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { AccessLog } from '../src/index.js';
import { httpNode, rawRequest, refusedPort, startRouter } from './helpers.js';

/** A `ws` echo server tagging each reply with its name. */
async function echoNode(name: string): Promise<{ wss: WebSocketServer; address: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => res.end(name));
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    ws.on('message', (data, binary) => ws.send(binary ? data : `${name}:${data.toString()}`, { binary }));
    ws.on('error', () => undefined);
    (ws as unknown as { forwarded: string }).forwarded = String(req.headers['x-forwarded-proto']);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    wss,
    address: `127.0.0.1:${port}`,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function connect(port: number, host = 'app.test'): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`, { headers: { host } });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    ws.once('message', (data) => resolve(data.toString()));
    ws.once('close', (code) => reject(new Error(`closed ${code}`)));
  });
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

const UPGRADE = 'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

describe('WebSocket upgrades', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  async function node(name: string) {
    const n = await echoNode(name);
    cleanups.push(() => n.close());
    return n;
  }
  async function router(options: Parameters<typeof startRouter>[0] = {}) {
    const r = await startRouter(options);
    cleanups.push(() => r.router.close());
    return r;
  }

  test('echoes text and 1 MiB binary messages through the router to an HTTP node', async () => {
    const a = await node('a');
    const { router: r, port } = await router();
    r.upsertNode(httpNode('app.test', a.address));
    const ws = await connect(port);
    ws.send('hello');
    assert.equal(await nextMessage(ws), 'a:hello');
    const big = Buffer.alloc(1024 * 1024, 7);
    const echoed = new Promise<Buffer>((resolve) => ws.once('message', (d) => resolve(d as Buffer)));
    ws.send(big);
    assert.deepEqual(await echoed, big);
    const [serverSide] = [...a.wss.clients];
    assert.equal((serverSide as unknown as { forwarded: string }).forwarded, 'http');
    assert.equal(r.tunnels.stats().open, 1);
    assert.equal(r.runtime.inFlightFor('app.test', a.address), 1);
    ws.close(1000);
    assert.equal(await closed(ws), 1000);
    await waitUntil(() => r.tunnels.stats().open === 0);
    assert.equal(r.runtime.inFlightFor('app.test', a.address), 0);
    assert.equal(r.stats().inFlight, 0);
  });

  test('logs each upgrade as one access-log line: a tunnel as 101 with its node, bytes and lifetime', async () => {
    const a = await node('a');
    const { router: r, port } = await router();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-ws-access-'));
    const file = path.join(dir, 'access.log');
    const log = new AccessLog({ destination: file });
    await log.start();
    r.ops.accessLog = log;
    try {
      r.upsertNode(httpNode('app.test', a.address));
      const before = r.ops.metrics.total;
      const ws = await connect(port);
      ws.send('hello');
      assert.equal(await nextMessage(ws), 'a:hello');
      await new Promise((resolve) => setTimeout(resolve, 50));
      ws.close(1000);
      await closed(ws);
      await waitUntil(() => r.tunnels.stats().open === 0);
      await assert.rejects(connect(port, 'nope.test'));
      await waitUntil(() => r.ops.metrics.total === before + 2);
      await log.close();
      const [tunnel, missing] = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(tunnel.status, 101);
      assert.equal(tunnel.code, 'OK');
      assert.equal(tunnel.host, 'app.test');
      assert.equal(tunnel.path, '/chat');
      assert.equal(tunnel.node, a.address);
      assert.equal(tunnel.attempts, 1);
      assert.ok(tunnel.in >= 11 && tunnel.out >= 7, `frames both ways (in ${tunnel.in}, out ${tunnel.out})`);
      assert.ok(tunnel.ms >= 50, 'the duration is the tunnel lifetime');
      assert.equal(missing.status, 404);
      assert.equal(missing.code, 'SY_NO_VHOST');
    } finally {
      r.ops.accessLog = undefined;
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('relays a refused handshake as a normal response and closes the connection', async () => {
    const server = http.createServer((_req, res) => res.end('plain'));
    server.on('upgrade', (_req, socket: net.Socket) => {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\nX-Why: nope\r\n\r\nnope');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { router: r, port } = await router();
    r.upsertNode(httpNode('app.test', `127.0.0.1:${(server.address() as net.AddressInfo).port}`));
    const raw = await rawRequest(port, `GET / HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\n${UPGRADE}\r\n`);
    assert.match(raw, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(raw, /\r\nX-Why: nope\r\n/);
    assert.match(raw, /\r\nConnection: close\r\n\r\nnope$/);
  });

  test('refuses other upgrades with SY_UPGRADE_REFUSED and h2c with SY_BAD_REQUEST, without contacting the node', async () => {
    const a = await node('a');
    const { router: r, port } = await router();
    r.upsertNode(httpNode('app.test', a.address));
    const other = await rawRequest(port, `GET / HTTP/1.1\r\nHost: app.test\r\nUpgrade: tls/1.2\r\n${UPGRADE}\r\n`);
    assert.match(other, /^HTTP\/1\.1 400 /);
    assert.match(other, /X-Switchyard-Error: SY_UPGRADE_REFUSED/);
    const post = await rawRequest(port, `POST / HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\n${UPGRADE}\r\n`);
    assert.match(post, /X-Switchyard-Error: SY_UPGRADE_REFUSED/);
    const h2c = await rawRequest(
      port,
      'GET / HTTP/1.1\r\nHost: app.test\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n',
    );
    assert.match(h2c, /^HTTP\/1\.1 400 /);
    assert.match(h2c, /X-Switchyard-Error: SY_BAD_REQUEST/);
    assert.equal(a.wss.clients.size, 0);
    assert.equal(r.stats().errors.SY_UPGRADE_REFUSED, 2);
    assert.equal(r.stats().inFlight, 0, 'refused upgrades are not left in flight');
  });

  test('answers 503 SY_MAINTENANCE to an upgrade for a host in maintenance mode', async () => {
    const a = await node('a');
    const { router: r, port } = await router();
    r.upsertNode(httpNode('app.test', a.address));
    r.ops.policies.apply('app.test', { maintenance: { enabled: true } });
    const raw = await rawRequest(port, `GET / HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\n${UPGRADE}\r\n`);
    assert.match(raw, /^HTTP\/1\.1 503 /);
    assert.match(raw, /X-Switchyard-Error: SY_MAINTENANCE/);
    assert.match(raw, /Retry-After: 1/);
    assert.equal(a.wss.clients.size, 0);
  });

  test('answers 404 SY_NO_VHOST to an upgrade for an unknown host', async () => {
    const { port } = await router();
    const raw = await rawRequest(port, `GET / HTTP/1.1\r\nHost: nothere.test\r\nUpgrade: websocket\r\n${UPGRADE}\r\n`);
    assert.match(raw, /^HTTP\/1\.1 404 /);
    assert.match(raw, /X-Switchyard-Error: SY_NO_VHOST/);
  });

  test('retries an upgrade on the next node when the first refuses connections', async () => {
    const b = await node('b');
    const { router: r, port } = await router();
    r.upsertNode(httpNode('app.test', `127.0.0.1:${await refusedPort()}`, 10));
    r.upsertNode(httpNode('app.test', b.address, 1));
    const ws = await connect(port);
    ws.send('x');
    assert.equal(await nextMessage(ws), 'b:x');
    assert.equal(r.stats().retries, 1);
    ws.terminate();
  });

  test('sends 1001 Going Away to every open tunnel when the router shuts down', async () => {
    const a = await node('a');
    const { router: r, port } = await startRouter({ shutdownGraceMs: 5000 });
    r.upsertNode(httpNode('app.test', a.address));
    const sockets = await Promise.all([connect(port), connect(port)]);
    const codes = sockets.map(closed);
    const started = Date.now();
    await r.close();
    assert.deepEqual(await Promise.all(codes), [1001, 1001]);
    assert.ok(Date.now() - started < 2000, 'tunnels do not hold shutdown for the grace period');
    assert.equal(r.tunnels.stats().goingAway.shutdown, 2);
  });

  test('keeps a draining node tunnel working until the host drain deadline, then closes it with 1001', async () => {
    const a = await node('a');
    const b = await node('b');
    const { router: r, port } = await router({ hostDrainDeadlines: new Map([['app.test', 400]]) });
    r.upsertNode(httpNode('app.test', a.address));
    const drained: string[] = [];
    r.onNodeDrained((_key, address) => drained.push(address));
    const ws = await connect(port);
    const code = closed(ws);
    r.upsertNode(httpNode('app.test', b.address));
    r.setNodeState('app.test', a.address, 'draining');
    await new Promise((resolve) => setTimeout(resolve, 150));
    ws.send('still');
    assert.equal(await nextMessage(ws), 'a:still');
    assert.deepEqual(drained, [], 'an open tunnel counts as in flight');
    const fresh = await connect(port);
    fresh.send('new');
    assert.equal(await nextMessage(fresh), 'b:new', 'new tunnels go to live nodes');
    assert.equal(await code, 1001);
    await waitUntil(() => drained.length === 1);
    assert.deepEqual(drained, [a.address]);
    assert.equal(r.tunnels.stats().goingAway.drain, 1);
    fresh.terminate();
  });

  test('cancels the drain deadline when the node becomes active again', async () => {
    const a = await node('a');
    const { router: r, port } = await router({ drainDeadlineMs: 200 });
    r.upsertNode(httpNode('app.test', a.address));
    const ws = await connect(port);
    r.setNodeState('app.test', a.address, 'draining');
    r.setNodeState('app.test', a.address, 'active');
    await new Promise((resolve) => setTimeout(resolve, 350));
    ws.send('alive');
    assert.equal(await nextMessage(ws), 'a:alive');
    ws.terminate();
  });

  test('closes an idle tunnel with 1001 after the tunnel idle timeout', async () => {
    const a = await node('a');
    const { router: r, port } = await router({ tunnelIdleTimeoutMs: 250 });
    r.upsertNode(httpNode('app.test', a.address));
    const ws = await connect(port);
    const started = Date.now();
    assert.equal(await closed(ws), 1001);
    assert.ok(Date.now() - started >= 200);
    await waitUntil(() => r.tunnels.stats().open === 0);
    assert.equal(r.tunnels.stats().goingAway.idle, 1);
  });

  test('writes the going-away close after the frame the node is sending, not inside it', async () => {
    // A raw node: answers 101, then sends the first half of a 64 KiB frame and the rest 300 ms later.
    const frameHead = Buffer.from([0x82, 126, 0x01, 0x00]); // 256 bytes payload
    const payload = Buffer.alloc(256, 0x62);
    const server = net.createServer((socket) => {
      socket.once('data', () => {
        socket.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
        );
        socket.write(Buffer.concat([frameHead, payload.subarray(0, 100)]));
        setTimeout(() => socket.write(payload.subarray(100)), 300);
      });
      socket.on('error', () => undefined);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { router: r, port } = await startRouter({ shutdownGraceMs: 3000 });
    r.upsertNode(httpNode('app.test', `127.0.0.1:${(server.address() as net.AddressInfo).port}`));
    const client = net.connect(port, '127.0.0.1');
    client.write(`GET / HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\n${UPGRADE}\r\n`);
    const chunks: Buffer[] = [];
    client.on('data', (c: Buffer) => chunks.push(c));
    const clientClosed = once(client, 'close');
    await waitUntil(() => Buffer.concat(chunks).length >= 100);
    await r.close();
    await clientClosed;
    const all = Buffer.concat(chunks);
    const body = all.subarray(all.indexOf('\r\n\r\n') + 4);
    assert.deepEqual(body, Buffer.concat([frameHead, payload, Buffer.from([0x88, 0x02, 0x03, 0xe9])]));
  });

  test('pauses the node when the client stops reading a tunnel (bounded buffering)', async () => {
    let accepted = 0;
    let stop = false;
    const frame = Buffer.concat([Buffer.from([0x82, 126, 0xff, 0xff]), Buffer.alloc(65535)]);
    const server = net.createServer((socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
        const pump = (): void => {
          while (!stop && accepted < 1024 * 1024 * 1024) {
            accepted += frame.length;
            if (!socket.write(frame)) {
              socket.once('drain', pump);
              return;
            }
          }
        };
        pump();
      });
      socket.on('error', () => undefined);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => {
      stop = true;
      server.close();
    });
    const { router: r, port } = await router();
    r.upsertNode(httpNode('app.test', `127.0.0.1:${(server.address() as net.AddressInfo).port}`));
    const client = net.connect(port, '127.0.0.1');
    client.write(`GET / HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\n${UPGRADE}\r\n`);
    await once(client, 'data');
    client.pause();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const stalled = accepted;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(accepted, stalled, 'the node is stalled');
    assert.ok(stalled < 64 * 1024 * 1024, `node got ${stalled} bytes accepted while the client read nothing`);
    if (process.env.SY_REPORT === '1') console.log(`tunnel stalled after ${stalled} bytes`);
    let read = 0;
    client.on('data', (c: Buffer) => (read += c.length));
    client.resume();
    await waitUntil(() => accepted > stalled + 8 * 1024 * 1024);
    stop = true;
    client.destroy();
    assert.ok(read > 0);
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
