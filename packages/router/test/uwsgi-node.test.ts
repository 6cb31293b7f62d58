import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { decodePacket } from '@switchyard/protocol';
import type { VhostNode } from '../src/index.js';
import { request, startRouter } from './helpers.js';

interface SeenRequest {
  readonly modifier1: number;
  readonly vars: Record<string, string>;
  readonly body: Buffer;
}

/**
 * A fake uwsgi worker: reads the packet and CONTENT_LENGTH body bytes, answers a raw HTTP response
 * (no Content-Length unless `withLength`) and closes, as uWSGI workers do.
 */
async function startFakeUwsgi(listen: { port: 0 } | { path: string }, withLength = false) {
  const seen: SeenRequest[] = [];
  const server = net.createServer((socket) => {
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (buffer.length < 4) return;
      const size = buffer.readUInt16LE(1);
      if (buffer.length < 4 + size) return;
      const decoded = decodePacket(buffer.subarray(0, 4 + size));
      assert.ok(decoded.ok);
      const vars: Record<string, string> = {};
      for (const pair of decoded.value.pairs) vars[pair.key] = pair.value.toString('latin1');
      const length = Number(vars.CONTENT_LENGTH ?? '0');
      if (buffer.length < 4 + size + length) return;
      const body = buffer.subarray(4 + size, 4 + size + length);
      seen.push({ modifier1: decoded.value.modifier1, vars, body });
      const payload = Buffer.concat([Buffer.from(`${vars.REQUEST_METHOD} ${vars.PATH_INFO} ${length}\n`), body]);
      const head = `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Sha: ${createHash('sha256').update(body).digest('hex')}\r\n${withLength ? `Content-Length: ${payload.length}\r\n` : ''}\r\n`;
      socket.end(Buffer.concat([Buffer.from(head), payload]));
      socket.removeAllListeners('data');
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(listen, resolve));
  const info = server.address();
  return { server, seen, port: typeof info === 'object' && info !== null ? info.port : 0 };
}

function uwsgiNode(key: string, address: string, target: VhostNode['target'], modifier1 = 0): VhostNode {
  return {
    key,
    address,
    target,
    protocol: 'uwsgi',
    weight: 1,
    modifier1,
    modifier2: 0,
    backup: 0,
    source: 'subscription',
    state: 'active',
  };
}

describe('uwsgi protocol nodes', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('sends uWSGI router vars and the body, and re-frames an unframed response for keep-alive clients', async () => {
    const fake = await startFakeUwsgi({ port: 0 });
    cleanups.push(() => new Promise<void>((resolve) => fake.server.close(() => resolve())));
    const { router, port } = await startRouter({ serverName: 'router-host', extraVars: [['MY_VAR', 'x']] });
    cleanups.push(() => router.close());
    router.upsertNode(
      uwsgiNode('app.test', `127.0.0.1:${fake.port}`, { kind: 'tcp', host: '127.0.0.1', port: fake.port }, 5),
    );
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const first = await request(port, {
      agent,
      method: 'POST',
      path: '/a%2Fb/c%20d?q=1&r=%20',
      body: 'hello',
      headers: { 'x-dup': 'one', 'content-type': 'text/plain' },
    });
    const second = await request(port, { agent, path: '/again' });
    agent.destroy();
    assert.equal(first.status, 200);
    assert.equal(first.text, 'POST /a/b/c d 5\nhello');
    assert.equal(first.headers['transfer-encoding'], 'chunked');
    assert.equal(second.text, 'GET /again 0\n');
    const vars = fake.seen[0]!.vars;
    assert.equal(fake.seen[0]!.modifier1, 5);
    assert.equal(vars.REQUEST_METHOD, 'POST');
    assert.equal(vars.REQUEST_URI, '/a%2Fb/c%20d?q=1&r=%20');
    assert.equal(vars.PATH_INFO, '/a/b/c d');
    assert.equal(vars.QUERY_STRING, 'q=1&r=%20');
    assert.equal(vars.SERVER_PROTOCOL, 'HTTP/1.1');
    assert.equal(vars.SERVER_NAME, 'router-host');
    assert.equal(vars.SERVER_PORT, String(port));
    assert.equal(vars.REMOTE_ADDR, '127.0.0.1');
    assert.match(vars.REMOTE_PORT!, /^\d+$/);
    assert.equal(vars.CONTENT_LENGTH, '5');
    assert.equal(vars.CONTENT_TYPE, 'text/plain');
    assert.equal(vars.HTTP_HOST, 'app.test');
    assert.equal(vars.HTTP_X_DUP, 'one');
    assert.equal(vars.MY_VAR, 'x');
    assert.equal(vars.HTTP_CONNECTION, undefined);
    assert.equal(fake.seen[1]!.vars.CONTENT_LENGTH, undefined);
  });

  test('de-chunks a chunked request body and sends it with CONTENT_LENGTH', async () => {
    const fake = await startFakeUwsgi({ port: 0 }, true);
    cleanups.push(() => new Promise<void>((resolve) => fake.server.close(() => resolve())));
    const { router, port } = await startRouter();
    cleanups.push(() => router.close());
    router.upsertNode(
      uwsgiNode('app.test', `127.0.0.1:${fake.port}`, { kind: 'tcp', host: '127.0.0.1', port: fake.port }),
    );
    const payload = randomBytes(3 * 1024 * 1024);
    const result = await new Promise<{ status: number; sha: string }>((resolve, reject) => {
      const req = http.request({ port, method: 'POST', headers: { host: 'app.test' } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, sha: String(res.headers['x-sha']) }));
      });
      req.on('error', reject);
      req.write(payload.subarray(0, 1000));
      req.end(payload.subarray(1000));
    });
    assert.equal(result.status, 200);
    assert.equal(result.sha, createHash('sha256').update(payload).digest('hex'));
    assert.equal(fake.seen[0]!.vars.CONTENT_LENGTH, String(payload.length));
  });

  test('talks to a uwsgi node over a unix socket', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-uwsgi-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const socketPath = path.join(dir, 'node.sock');
    const fake = await startFakeUwsgi({ path: socketPath });
    cleanups.push(() => new Promise<void>((resolve) => fake.server.close(() => resolve())));
    const { router, port } = await startRouter();
    cleanups.push(() => router.close());
    router.addStaticNode({
      address: socketPath,
      target: { kind: 'unix', path: socketPath },
      protocol: 'uwsgi',
      weight: 1,
      modifier1: 0,
      modifier2: 0,
      backup: 0,
    });
    const res = await request(port, { host: 'any.test', path: '/unix' });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'GET /unix 0\n');
  });

  test('drops client X-Forwarded-For and underscore headers so they cannot spoof uwsgi vars', async () => {
    const fake = await startFakeUwsgi({ port: 0 });
    cleanups.push(() => new Promise<void>((resolve) => fake.server.close(() => resolve())));
    const { router, port } = await startRouter();
    cleanups.push(() => router.close());
    router.upsertNode(
      uwsgiNode('app.test', `127.0.0.1:${fake.port}`, { kind: 'tcp', host: '127.0.0.1', port: fake.port }),
    );
    await request(port, {
      headers: { 'x-forwarded-for': '6.6.6.6', x_forwarded_for: '7.7.7.7', uwsgi_script: 'evil' },
    });
    const vars = fake.seen[0]!.vars;
    assert.equal(vars.HTTP_X_FORWARDED_FOR, undefined);
    assert.equal(vars.UWSGI_SCRIPT, undefined);
    assert.equal(vars.HTTP_UWSGI_SCRIPT, undefined);
  });
});
