/**
 * PROXY protocol on client listeners (proxy-protocol.ts): the v1/v2 header parser, then the router over
 * real sockets — the header's source reaches the node as the client address on HTTP and HTTPS listeners,
 * and a connection without a valid header is closed unanswered and counted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import tls from 'node:tls';
import { parseProxyHeader, Router } from '../src/index.js';
import { httpNode, rawRequest, startBackend } from './helpers.js';
import { selfSigned } from './tls-fixtures.js';

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A v2 header: command (0 LOCAL, 1 PROXY), family/transport byte, address payload. */
function v2(command: number, familyTransport: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x20 | command;
  head[1] = familyTransport;
  head.writeUInt16BE(payload.length, 2);
  return Buffer.concat([SIGNATURE, head, payload]);
}

function v2Inet(src: number[], sport: number): Buffer {
  const payload = Buffer.alloc(12);
  Buffer.from(src).copy(payload, 0);
  Buffer.from([127, 0, 0, 1]).copy(payload, 4);
  payload.writeUInt16BE(sport, 8);
  payload.writeUInt16BE(80, 10);
  return v2(1, 0x11, payload);
}

describe('PROXY header parser', () => {
  test('reads v1 TCP4, TCP6 and UNKNOWN lines and reports their length', () => {
    const line = 'PROXY TCP4 203.0.113.7 10.0.0.1 51234 80\r\n';
    assert.deepEqual(parseProxyHeader(Buffer.from(`${line}GET /`)), {
      kind: 'ok',
      length: line.length,
      source: { address: '203.0.113.7', port: 51234, family: 'IPv4' },
    });
    const six = 'PROXY TCP6 2001:db8::7 2001:db8::1 4000 443\r\n';
    assert.deepEqual(parseProxyHeader(Buffer.from(six)), {
      kind: 'ok',
      length: six.length,
      source: { address: '2001:db8::7', port: 4000, family: 'IPv6' },
    });
    assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { kind: 'ok', length: 15, source: undefined });
  });

  test('waits for more bytes while the start could still be a header, and refuses anything else', () => {
    for (const partial of ['P', 'PROXY', 'PROXY TCP4 1.2.3.4', '\r\n\r\n\0', '']) {
      assert.deepEqual(parseProxyHeader(Buffer.from(partial, 'latin1')), { kind: 'incomplete' }, partial);
    }
    const cases: [string | Buffer, string][] = [
      ['GET / HTTP/1.1\r\n\r\n', 'no-header'],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n', 'v1-malformed'],
      ['PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n', 'v1-protocol'],
      ['PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n', 'v1-address'],
      ['PROXY TCP4 ::1 5.6.7.8 1 2\r\n', 'v1-address'],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n', 'v1-address'],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n', 'v1-address'],
      [`PROXY TCP4 ${'1'.repeat(120)}`, 'v1-too-long'],
      [v2(1, 0x12, Buffer.alloc(12)), 'v2-datagram'],
      [v2(1, 0x11, Buffer.alloc(4)), 'v2-address'],
      [Buffer.concat([SIGNATURE, Buffer.from([0x31, 0x11, 0, 0])]), 'v2-version'],
      [Buffer.concat([SIGNATURE, Buffer.from([0x21, 0x11, 0x20, 0x00])]), 'v2-too-long'],
    ];
    for (const [bytes, reason] of cases) {
      const data = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
      assert.deepEqual(parseProxyHeader(data), { kind: 'invalid', reason }, reason);
    }
  });

  test('reads v2 IPv4 and IPv6 sources, keeps the real peer for LOCAL and UNSPEC, and skips TLVs', () => {
    const four = v2Inet([198, 51, 100, 9], 40000);
    assert.deepEqual(parseProxyHeader(Buffer.concat([four, Buffer.from('GET')])), {
      kind: 'ok',
      length: four.length,
      source: { address: '198.51.100.9', port: 40000, family: 'IPv4' },
    });
    const payload6 = Buffer.alloc(36 + 7);
    Buffer.from([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x09]).copy(payload6, 0);
    payload6.writeUInt16BE(5555, 32);
    const six = v2(1, 0x21, payload6);
    assert.deepEqual(parseProxyHeader(six), {
      kind: 'ok',
      length: six.length,
      source: { address: '2001:db8::9', port: 5555, family: 'IPv6' },
    });
    assert.deepEqual(parseProxyHeader(v2(0, 0x00, Buffer.alloc(0))), { kind: 'ok', length: 16, source: undefined });
    assert.deepEqual(parseProxyHeader(v2(1, 0x00, Buffer.alloc(0))), { kind: 'ok', length: 16, source: undefined });
    assert.deepEqual(parseProxyHeader(four.subarray(0, 20)), { kind: 'incomplete' });
  });
});

describe('a router with --http-enable-proxy-protocol', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sy-proxy-'));
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    rmSync(dir, { recursive: true, force: true });
  });

  async function setup(headersTimeoutMs = 30_000) {
    const backend = await startBackend('ok', (req, res) => res.end(String(req.headers['x-forwarded-for'])));
    const cert = selfSigned(dir, 'default', 'app.test');
    const router = new Router({
      http: ['127.0.0.1:0'],
      https: [{ address: '127.0.0.1:0' }],
      defaultCertificate: cert,
      proxyProtocol: true,
      headersTimeoutMs,
    });
    await router.start();
    router.upsertNode(httpNode('app.test', backend.address));
    cleanups.push(
      () => backend.close(),
      () => router.close(),
    );
    return { router, port: router.addresses()[0]!.port, tlsPort: router.httpsAddresses()[0]!.port };
  }

  const GET = 'GET / HTTP/1.1\r\nHost: app.test\r\n\r\n';
  const CLOSE = 'GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n';

  test("gives the node the header's source as the client, for every request of the connection", async () => {
    const { port } = await setup();
    const reply = await rawRequest(port, `PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\n${GET}${CLOSE}`);
    const bodies = reply.split('\r\n\r\n').slice(1);
    assert.match(reply, /^HTTP\/1\.1 200/);
    assert.equal(bodies.length, 2);
    assert.ok(
      bodies.every((b) => b.startsWith('203.0.113.7')),
      reply,
    );
  });

  test('accepts a v2 header, and a header split across writes', async () => {
    const { port } = await setup();
    const reply = await rawRequest(port, Buffer.concat([v2Inet([198, 51, 100, 9], 40000), Buffer.from(CLOSE)]));
    assert.match(reply, /\r\n\r\n198\.51\.100\.9$/);
    const split = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      socket.on('error', reject);
      socket.write('PROXY TCP4 192.0.2');
      setTimeout(() => socket.write(`.1 127.0.0.1 1 80\r\n${CLOSE}`), 50);
    });
    assert.match(split, /\r\n\r\n192\.0\.2\.1$/);
  });

  test('closes a connection without a valid header unanswered and counts it, but not a peer that leaves first', async () => {
    const { router, port } = await setup(200);
    const before = router.stats().errors.SY_BAD_PROXY_HEADER ?? 0;
    assert.equal(await rawRequest(port, CLOSE), '');
    assert.equal(await rawRequest(port, `PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n${CLOSE}`), '');
    assert.equal((router.stats().errors.SY_BAD_PROXY_HEADER ?? 0) - before, 2);
    // A TCP health check: connect, send nothing, close. Not a bad header.
    await new Promise<void>((resolve) => {
      const probe = net.connect(port, '127.0.0.1', () => probe.end());
      probe.on('close', () => resolve());
    });
    // Past the 200 ms header timeout: the probe's wait was dropped with it, nothing more was counted.
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal((router.stats().errors.SY_BAD_PROXY_HEADER ?? 0) - before, 2);
  });

  test('reads the header before the TLS handshake on an HTTPS listener', async () => {
    const { tlsPort } = await setup();
    const raw = net.connect(tlsPort, '127.0.0.1');
    await new Promise((resolve) => raw.once('connect', resolve));
    raw.write('PROXY TCP6 2001:db8::7 2001:db8::1 4000 443\r\n');
    const socket = tls.connect({ socket: raw, servername: 'app.test', rejectUnauthorized: false });
    const reply = await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
      socket.on('error', reject);
      socket.write(CLOSE);
    });
    assert.match(reply, /^HTTP\/1\.1 200/);
    assert.match(reply, /\r\n\r\n2001:db8::7$/);
  });
});
