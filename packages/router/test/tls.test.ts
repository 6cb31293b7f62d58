import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { decodePacket } from '@switchyard/protocol';
import { type ClientOptions, WebSocket, WebSocketServer } from 'ws';
import { Router, type RouterOptions } from '../src/index.js';
import { httpNode, request, startBackend } from './helpers.js';
import { type CertPair, selfSigned, signedBy } from './tls-fixtures.js';

interface TlsReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

function httpsGet(port: number, servername: string, host = servername, cert?: CertPair): Promise<TlsReply> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      {
        host: '127.0.0.1',
        port,
        path: '/p?q=1',
        servername,
        headers: { host },
        rejectUnauthorized: false,
        agent: false,
        ...(cert === undefined ? {} : { cert: readFileSync(cert.cert), key: readFileSync(cert.key) }),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
  });
}

/** Handshakes with `servername` and returns the served certificate's CN, the ALPN result and the TLS version. */
async function handshake(port: number, servername: string | undefined, alpn?: string[]) {
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    ...(servername === undefined ? {} : { servername }),
    rejectUnauthorized: false,
    ...(alpn === undefined ? {} : { ALPNProtocols: alpn }),
  });
  await once(socket, 'secureConnect');
  const result = {
    cn: socket.getPeerCertificate().subject.CN,
    alpn: socket.alpnProtocol,
    version: socket.getProtocol(),
  };
  socket.destroy();
  return result;
}

describe('HTTPS listeners with SNI certificates', () => {
  let dir: string;
  let certDir: string;
  const certs: Record<string, CertPair> = {};
  const cleanups: (() => Promise<void> | void)[] = [];
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sy-tls-'));
    certDir = path.join(dir, 'certs');
    mkdirSync(certDir);
    certs.default = selfSigned(dir, 'default', 'default.test');
    certs.a = selfSigned(dir, 'a', 'a.test');
    certs.wild = selfSigned(dir, 'wild', '*.w.test');
    certs.b = selfSigned(certDir, 'b.test', 'b.test');
    certs.ca = selfSigned(dir, 'ca', 'Test Client CA');
    certs.client = signedBy(dir, 'client', 'client-1', certs.ca);
    certs.stranger = selfSigned(dir, 'stranger', 'client-2');
    certs.secure = selfSigned(dir, 'secure', 'secure.test');
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    rmSync(dir, { recursive: true, force: true });
  });
  async function router(options: Partial<RouterOptions> = {}) {
    const r = new Router({
      http: ['127.0.0.1:0'],
      https: [{ address: '127.0.0.1:0' }],
      defaultCertificate: certs.default!,
      certificates: {
        hosts: [
          ['a.test', certs.a!],
          ['*.w.test', certs.wild!],
        ],
        dir: certDir,
        dirDebounceMs: 50,
      },
      ...options,
    });
    await r.start();
    cleanups.push(() => r.close());
    return { router: r, port: r.httpsAddresses()[0]!.port, httpPort: r.addresses()[0]!.port };
  }

  test('serves the certificate SNI selects: per-host option, directory, wildcard, default for the rest', async () => {
    const { port } = await router();
    assert.equal((await handshake(port, 'a.test')).cn, 'a.test');
    assert.equal((await handshake(port, 'A.Test')).cn, 'a.test');
    assert.equal((await handshake(port, 'b.test')).cn, 'b.test');
    assert.equal((await handshake(port, 'x.w.test')).cn, '*.w.test');
    assert.equal((await handshake(port, 'deeper.x.w.test')).cn, 'default.test');
    assert.equal((await handshake(port, 'unknown.test')).cn, 'default.test');
    assert.equal((await handshake(port, undefined)).cn, 'default.test');
  });

  test('negotiates HTTP/1.1 by ALPN over TLS 1.2 or later', async () => {
    const { port } = await router();
    const result = await handshake(port, 'a.test', ['h2', 'http/1.1']);
    assert.equal(result.alpn, 'http/1.1');
    assert.ok(result.version === 'TLSv1.3' || result.version === 'TLSv1.2');
    const legacy = tls.connect({
      host: '127.0.0.1',
      port,
      maxVersion: 'TLSv1.1',
      minVersion: 'TLSv1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    const [error] = (await once(legacy, 'error')) as [NodeJS.ErrnoException];
    assert.ok(error.code !== undefined);
  });

  test('routes over TLS with X-Forwarded-Proto https, and answers routing errors like plain HTTP', async () => {
    const backend = await startBackend('a');
    cleanups.push(() => backend.close());
    const { router: r, port } = await router();
    r.upsertNode(httpNode('a.test', backend.address));
    const ok = await httpsGet(port, 'a.test');
    assert.equal(ok.status, 200);
    assert.equal(ok.text, 'a');
    assert.equal(backend.seen[0]!.headers['x-forwarded-proto'], 'https');
    const missing = await httpsGet(port, 'a.test', 'nothere.test');
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['x-switchyard-error'], 'SY_NO_VHOST');
  });

  test('sends HTTPS=on and the TLS listener port as SERVER_PORT to uwsgi nodes', async () => {
    const seen: Record<string, string>[] = [];
    const fake = net.createServer((socket) => {
      socket.once('data', (chunk: Buffer) => {
        const decoded = decodePacket(chunk.subarray(0, 4 + chunk.readUInt16LE(1)));
        assert.ok(decoded.ok);
        const vars: Record<string, string> = {};
        for (const pair of decoded.value.pairs) vars[pair.key] = pair.value.toString('latin1');
        seen.push(vars);
        socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      });
    });
    fake.listen(0, '127.0.0.1');
    await once(fake, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => fake.close(() => resolve())));
    const fakePort = (fake.address() as net.AddressInfo).port;
    const { router: r, port, httpPort } = await router();
    r.upsertNode({ ...httpNode('a.test', `127.0.0.1:${fakePort}`), protocol: 'uwsgi' });
    assert.equal((await httpsGet(port, 'a.test')).text, 'ok');
    assert.equal(seen[0]!.HTTPS, 'on');
    assert.equal(seen[0]!.SERVER_PORT, String(port));
    const plain = await request(httpPort, { host: 'a.test' });
    assert.equal(plain.text, 'ok');
    assert.equal(seen[1]!.HTTPS, undefined);
  });

  test('reloads a directory certificate when its files change, and drops it when they go', async () => {
    const { router: r, port } = await router();
    assert.equal((await handshake(port, 'c.test')).cn, 'default.test');
    const fresh = selfSigned(dir, 'c-new', 'c.test');
    copyFileSync(fresh.key, path.join(certDir, 'c.test.key'));
    copyFileSync(fresh.cert, path.join(certDir, 'c.test.crt'));
    await waitUntil(() => r.certificates.find('c.test') !== undefined);
    assert.equal((await handshake(port, 'c.test')).cn, 'c.test');
    const renamed = selfSigned(dir, 'c-renamed', 'c.test');
    // Rotate: same file names, another certificate (another subject serial, same CN: check the subject key).
    const before = r.certificates.find('c.test')!.stamp;
    copyFileSync(renamed.key, path.join(certDir, 'c.test.key'));
    copyFileSync(renamed.cert, path.join(certDir, 'c.test.crt'));
    await waitUntil(() => r.certificates.find('c.test')?.stamp !== before);
    rmSync(path.join(certDir, 'c.test.crt'));
    await waitUntil(() => r.certificates.find('c.test') === undefined);
    assert.equal((await handshake(port, 'c.test')).cn, 'default.test');
  });

  test('serves subscription certificates offered for a key and forgets them when the key is withdrawn', async () => {
    const { router: r, port } = await router();
    const sub = selfSigned(dir, 'sub', 'sub.test');
    r.certificates.offer('sub.test:443', sub);
    await waitUntil(() => r.certificates.find('sub.test') !== undefined);
    assert.equal((await handshake(port, 'sub.test')).cn, 'sub.test');
    // An operator's certificate wins over a subscription's for the same name.
    r.certificates.offer('a.test', sub);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal((await handshake(port, 'a.test')).cn, 'a.test');
    r.certificates.withdraw('sub.test:443');
    assert.equal((await handshake(port, 'sub.test')).cn, 'default.test');
  });

  test('requires a client certificate from the host CA when the host certificate carries one', async () => {
    const backend = await startBackend('secure');
    cleanups.push(() => backend.close());
    const { router: r, port, httpPort } = await router({ requestClientCertificates: true });
    r.upsertNode(httpNode('secure.test', backend.address));
    r.upsertNode(httpNode('a.test', backend.address));
    r.certificates.offer('secure.test', { ...certs.secure!, ca: certs.ca!.cert });
    await waitUntil(() => r.certificates.find('secure.test') !== undefined);
    const without = await httpsGet(port, 'secure.test');
    assert.equal(without.status, 403);
    assert.equal(without.headers['x-switchyard-error'], 'SY_CLIENT_CERT_REQUIRED');
    const wrongCa = await httpsGet(port, 'secure.test', 'secure.test', certs.stranger);
    assert.equal(wrongCa.headers['x-switchyard-error'], 'SY_CLIENT_CERT_REQUIRED');
    const good = await httpsGet(port, 'secure.test', 'secure.test', certs.client);
    assert.equal(good.status, 200);
    // SNI for another host, then Host: secure.test, must not bypass the requirement; nor may plain HTTP.
    const fronted = await httpsGet(port, 'a.test', 'secure.test', certs.client);
    assert.equal(fronted.headers['x-switchyard-error'], 'SY_CLIENT_CERT_REQUIRED');
    const plain = await request(httpPort, { host: 'secure.test' });
    assert.equal(plain.headers['x-switchyard-error'], 'SY_CLIENT_CERT_REQUIRED');
    assert.equal((await httpsGet(port, 'a.test')).status, 200, 'other hosts need no client certificate');
  });

  test('proxies wss:// WebSocket connections through the TLS listener', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    let proto = '';
    wss.on('connection', (ws, req) => {
      proto = String(req.headers['x-forwarded-proto']);
      ws.on('message', (d) => ws.send(`echo:${d.toString()}`));
    });
    cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    const { router: r, port } = await router();
    r.upsertNode(httpNode('x.w.test', `127.0.0.1:${(wss.address() as net.AddressInfo).port}`));
    // `servername` reaches tls.connect through ws's https request options (not in ws's ClientOptions type).
    const options = { headers: { host: 'x.w.test' }, servername: 'x.w.test', rejectUnauthorized: false };
    const ws = new WebSocket(`wss://127.0.0.1:${port}/`, options as ClientOptions);
    await once(ws, 'open');
    ws.send('hi');
    const [data] = (await once(ws, 'message')) as [Buffer];
    assert.equal(data.toString(), 'echo:hi');
    assert.equal(proto, 'https');
    ws.close();
    await once(ws, 'close');
  });

  test('fails start with SY_BAD_CERTIFICATE when a key does not match its certificate', async () => {
    const r = new Router({
      http: [],
      https: [{ address: '127.0.0.1:0', certificate: { cert: certs.a!.cert, key: certs.default!.key } }],
    });
    await assert.rejects(r.start(), (error: { code?: string }) => error.code === 'SY_BAD_CERTIFICATE');
    await r.close();
    const missing = new Router({ http: [], https: [{ address: '127.0.0.1:0' }] });
    await assert.rejects(missing.start(), (error: { code?: string }) => error.code === 'SY_BAD_CONFIG');
    await missing.close();
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
