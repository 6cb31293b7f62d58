import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { httpNode, refusedPort, request, startBackend, startRouter, type TestBackend } from './helpers.js';

describe('router over real sockets', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  async function backend(name: string, handler?: Parameters<typeof startBackend>[1]): Promise<TestBackend> {
    const b = await startBackend(name, handler);
    cleanups.push(() => b.close());
    return b;
  }
  async function router(options: Parameters<typeof startRouter>[0] = {}) {
    const r = await startRouter(options);
    cleanups.push(() => r.router.close());
    return r;
  }

  test('balances weights 1:3 exactly over 400 requests with smooth weighted round-robin', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const { router: r, port } = await router();
    r.upsertNode(httpNode('app.test', a.address, 1));
    r.upsertNode(httpNode('app.test', b.address, 3));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const counts = { a: 0, b: 0 };
    const sequence: string[] = [];
    for (let i = 0; i < 400; i++) {
      const res = await request(port, { agent });
      assert.equal(res.status, 200);
      counts[res.text as 'a' | 'b']++;
      if (i < 8) sequence.push(res.text);
    }
    agent.destroy();
    assert.deepEqual(counts, { a: 100, b: 300 });
    // Smooth: never more than three b in a row.
    assert.deepEqual(sequence, ['b', 'a', 'b', 'b', 'b', 'a', 'b', 'b']);
  });

  test('answers 404 SY_NO_VHOST for an unknown host', async () => {
    const { port } = await router();
    const res = await request(port, { host: 'nothere.test' });
    assert.equal(res.status, 404);
    assert.equal(JSON.parse(res.text).error.code, 'SY_NO_VHOST');
    assert.equal(res.headers['x-switchyard-error'], 'SY_NO_VHOST');
  });

  test('answers 503 SY_NO_LIVE_NODE with Retry-After when the host has only draining nodes', async () => {
    const a = await backend('a');
    const { router: r, port } = await router();
    r.upsertNode(httpNode('app.test', a.address));
    r.setNodeState('app.test', a.address, 'draining');
    const res = await request(port);
    assert.equal(res.status, 503);
    assert.equal(JSON.parse(res.text).error.code, 'SY_NO_LIVE_NODE');
    assert.equal(res.headers['retry-after'], '1');
    assert.equal(a.seen.length, 0);
  });

  test('answers 502 SY_UPSTREAM_CONNECT when every node refuses connections', async () => {
    const { router: r, port } = await router();
    r.upsertNode(httpNode('app.test', `127.0.0.1:${await refusedPort()}`));
    r.upsertNode(httpNode('app.test', `127.0.0.1:${await refusedPort()}`));
    const res = await request(port);
    assert.equal(res.status, 502);
    assert.equal(JSON.parse(res.text).error.code, 'SY_UPSTREAM_CONNECT');
    assert.equal(r.stats().retries, 1);
  });

  test('answers 504 SY_UPSTREAM_TIMEOUT when the node never answers', async () => {
    const silent = net.createServer((s) => s.resume());
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const { router: r, port } = await router({ upstreamTimeoutMs: 200 });
    r.upsertNode(httpNode('app.test', `127.0.0.1:${(silent.address() as net.AddressInfo).port}`));
    const started = Date.now();
    const res = await request(port);
    assert.equal(res.status, 504);
    assert.equal(JSON.parse(res.text).error.code, 'SY_UPSTREAM_TIMEOUT');
    assert.ok(Date.now() - started < 5000);
  });

  test('answers 502 SY_UPSTREAM_BAD_RESPONSE for a malformed status line', async () => {
    const bad = net.createServer((s) => s.once('data', () => s.end('HTTP/1.1 2xx Nope\r\n\r\n')));
    await new Promise<void>((resolve) => bad.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => bad.close(() => resolve())));
    const { router: r, port } = await router();
    r.upsertNode(httpNode('app.test', `127.0.0.1:${(bad.address() as net.AddressInfo).port}`));
    const res = await request(port);
    assert.equal(res.status, 502);
    assert.equal(JSON.parse(res.text).error.code, 'SY_UPSTREAM_BAD_RESPONSE');
  });

  test('retries a refused connection on a different node and never on the same one', async () => {
    const good = await backend('good');
    const { router: r, port } = await router();
    const deadAddress = `127.0.0.1:${await refusedPort()}`;
    r.upsertNode(httpNode('app.test', deadAddress, 5));
    r.upsertNode(httpNode('app.test', good.address, 1));
    for (let i = 0; i < 6; i++) {
      const res = await request(port, { method: 'POST', body: 'x' });
      assert.equal(res.status, 200);
      assert.equal(res.text, 'good');
    }
    assert.ok(r.stats().retries >= 5);
    assert.equal(r.runtime.stats(deadAddress)!.failures, r.stats().retries);
  });

  test('streams 10 MiB request and response bodies intact both ways', async () => {
    const echo = await backend('echo', (_req, res, body) => {
      res.setHeader('content-type', 'application/octet-stream');
      res.setHeader('x-sha', createHash('sha256').update(body).digest('hex'));
      res.end(body);
    });
    const { router: r, port } = await router();
    r.upsertNode(httpNode('app.test', echo.address));
    const payload = randomBytes(10 * 1024 * 1024);
    const digest = createHash('sha256').update(payload).digest('hex');
    const res = await request(port, { method: 'POST', body: payload });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-sha'], digest);
    assert.equal(createHash('sha256').update(res.body).digest('hex'), digest);
    // A chunked upload is re-framed as chunked towards an HTTP node.
    const chunked = await new Promise<{ status: number; sha: string }>((resolve, reject) => {
      const req = http.request({ port, method: 'PUT', headers: { host: 'app.test' } }, (res2) => {
        res2.resume();
        res2.on('end', () => resolve({ status: res2.statusCode ?? 0, sha: String(res2.headers['x-sha']) }));
      });
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write(payload.subarray(i * 1048576, (i + 1) * 1048576));
      req.end();
    });
    assert.deepEqual(chunked, { status: 200, sha: digest });
    assert.equal(echo.seen.at(-1)!.headers['transfer-encoding'], 'chunked');
  });

  test('reuses keep-alive connections to HTTP nodes', async () => {
    const a = await backend('a');
    const { router: r, port } = await router();
    r.upsertNode(httpNode('app.test', a.address));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 20; i++) assert.equal((await request(port, { agent })).status, 200);
    agent.destroy();
    const upstreamPorts = new Set(a.seen.map((s) => s.socketPort));
    assert.equal(upstreamPorts.size, 1);
    assert.equal(r.pool.created, 1);
    assert.equal(r.pool.reusedCount, 19);
  });

  test('routes host:port keys before host keys and sets forwarded headers', async () => {
    const plain = await backend('plain');
    const ported = await backend('ported');
    const { router: r, port } = await router();
    r.upsertNode(httpNode('app.test', plain.address));
    r.upsertNode(httpNode('app.test:8080', ported.address));
    assert.equal((await request(port, { host: 'App.Test:8080' })).text, 'ported');
    assert.equal((await request(port, { host: 'app.test:9999' })).text, 'plain');
    const res = await request(port, {
      host: 'app.test.',
      headers: { 'x-forwarded-for': '6.6.6.6', connection: 'close, x-secret', 'x-secret': 's', 'x-kept': 'k' },
    });
    assert.equal(res.text, 'plain');
    const seen = plain.seen.at(-1)!;
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-host'], 'app.test.');
    assert.equal(seen.headers['x-secret'], undefined);
    assert.equal(seen.headers['x-kept'], 'k');
  });

  test('drains a node: in-flight requests finish, new ones go elsewhere, drained is reported once idle', async () => {
    let release: () => void = () => undefined;
    const slow = await backend('slow', (_req, res) => {
      release = () => res.end('slow');
    });
    const fast = await backend('fast');
    const { router: r, port } = await router();
    r.upsertNode(httpNode('app.test', slow.address, 100));
    r.upsertNode(httpNode('app.test', fast.address, 1));
    const drained: string[] = [];
    r.onNodeDrained((key, address) => drained.push(`${key} ${address}`));
    const inflight = request(port);
    while (slow.seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    r.setNodeState('app.test', slow.address, 'draining');
    assert.equal((await request(port)).text, 'fast');
    assert.deepEqual(drained, []);
    release();
    assert.equal((await inflight).text, 'slow');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(drained, [`app.test ${slow.address}`]);
  });

  test('rejects a request with two Host headers and never reaches the node', async () => {
    const a = await backend('a');
    const { router: r, port } = await router();
    r.upsertNode(httpNode('app.test', a.address));
    const { rawRequest } = await import('./helpers.js');
    const reply = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: app.test\r\nHost: other.test\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 400 /);
    assert.match(reply, /SY_BAD_HOST/);
    assert.equal(a.seen.length, 0);
  });
});
