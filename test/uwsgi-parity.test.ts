/**
 * Environ parity with uWSGI's own HTTP router: the same raw requests go through `uwsgi --http --http-to`
 * and through Switchyard `--http-to`, in front of the SAME real uWSGI python node, which answers with its
 * WSGI environ. Every var uWSGI's router sets must arrive identically, except the differences documented
 * in README.md ("Differences from uWSGI's router"), listed here per request in EXPECTED.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort, SKIP_UWSGI, startApp } from './support.js';
import { accepts, rawExchange, startUwsgiRouter, type UwsgiRouter } from './uwsgi-router-support.js';

const BIG_SIZE = 10 * 1024 * 1024;

/** Environ echo, plus /big (10 MiB with Content-Length) and /big-stream (10 MiB, no length). */
const APP = `import json
BLOCK = bytes(range(256)) * 4096
def application(env, start_response):
    path = env['PATH_INFO']
    if path == '/big':
        start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(len(BLOCK) * 10))])
        return [BLOCK] * 10
    if path == '/big-stream':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return (BLOCK for _ in range(10))
    size = int(env.get('CONTENT_LENGTH') or 0)
    body_in = env['wsgi.input'].read(size) if size else b''
    out = {k: v for k, v in env.items() if isinstance(v, str) and k.isupper()}
    out['BODY_LENGTH'] = str(len(body_in))
    body = json.dumps(out, sort_keys=True).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
`;

function expectedBig(): Buffer {
  const block = Buffer.alloc(256 * 4096);
  for (let i = 0; i < block.length; i++) block[i] = i & 0xff;
  return Buffer.concat(Array.from({ length: 10 }, () => block));
}

/** Vars that differ on every request: each router's own listen port and its client's port. */
const ALWAYS = ['REMOTE_PORT', 'SERVER_PORT'];

interface Case {
  readonly name: string;
  readonly bytes: Buffer;
  /** Vars expected to differ (besides ALWAYS): var → [uWSGI's value, Switchyard's value]. */
  readonly expected: Readonly<Record<string, readonly [string | undefined, string | undefined]>>;
}

const HOST = 'Host: parity.test\r\n';
const CLOSE = 'Connection: close\r\n';
const CASES: readonly Case[] = [
  {
    name: 'GET with a query, a percent-encoded path and duplicate headers',
    bytes: Buffer.from(
      `GET /p/a%20b/%2Fx?x=1&y=%2F HTTP/1.1\r\n${HOST}User-Agent: parity/1\r\nAccept: */*\r\nX-Dup: one\r\nX-Dup: two\r\n${CLOSE}\r\n`,
    ),
    expected: { HTTP_CONNECTION: ['close', undefined] },
  },
  {
    name: 'POST of 1 MiB with Content-Length',
    bytes: Buffer.concat([
      Buffer.from(
        `POST /upload?a=b HTTP/1.1\r\n${HOST}Content-Type: application/octet-stream\r\nContent-Length: 1048576\r\n${CLOSE}\r\n`,
      ),
      Buffer.alloc(1024 * 1024, 0x61),
    ]),
    expected: { HTTP_CONNECTION: ['close', undefined] },
  },
  {
    name: 'chunked POST (uWSGI passes no body; Switchyard de-chunks and sets CONTENT_LENGTH)',
    bytes: Buffer.from(
      `POST /chunked HTTP/1.1\r\n${HOST}Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n${CLOSE}\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`,
    ),
    expected: {
      HTTP_CONNECTION: ['close', undefined],
      HTTP_TRANSFER_ENCODING: ['chunked', undefined],
      CONTENT_LENGTH: [undefined, '11'],
      BODY_LENGTH: ['0', '11'],
    },
  },
  {
    name: 'unicode percent-encoded path and query',
    bytes: Buffer.from(`GET /caf%C3%A9/%E2%9C%93?q=%C3%A9&r=%E2%9C%93 HTTP/1.1\r\n${HOST}${CLOSE}\r\n`),
    expected: { HTTP_CONNECTION: ['close', undefined] },
  },
  {
    name: 'HTTP/1.0 without Host',
    bytes: Buffer.from('GET /old?x HTTP/1.0\r\nUser-Agent: old/1\r\n\r\n'),
    expected: {},
  },
  {
    name: 'client X-Forwarded-For and a header name with "_" (passed by uWSGI, dropped by Switchyard)',
    bytes: Buffer.from(`GET /xff HTTP/1.1\r\n${HOST}X-Forwarded-For: 10.9.9.9\r\nX_Custom: y\r\n${CLOSE}\r\n`),
    expected: {
      HTTP_CONNECTION: ['close', undefined],
      HTTP_X_FORWARDED_FOR: ['10.9.9.9', undefined],
      HTTP_X_CUSTOM: ['y', undefined],
    },
  },
];

interface Reply {
  readonly environ: Record<string, string>;
  readonly clientPort: number;
}

/** Sends `bytes` on a fresh connection, returns the environ and the client's local port. */
function exchange(port: number, bytes: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let clientPort = 0;
    socket.on('connect', () => {
      clientPort = socket.localPort ?? 0;
      socket.write(bytes);
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const all = Buffer.concat(chunks);
      const body = all.subarray(all.indexOf('\r\n\r\n') + 4);
      try {
        resolve({ environ: JSON.parse(body.toString('utf8')) as Record<string, string>, clientPort });
      } catch {
        reject(new Error(`no environ in reply: ${all.toString('latin1').slice(0, 300)}`));
      }
    });
  });
}

function byteSwap16(port: number): number {
  return ((port & 0xff) << 8) | (port >> 8);
}

describe("environ parity with uWSGI's HTTP router (same node, same requests)", { skip: SKIP_UWSGI }, () => {
  let dir = '';
  let node: ChildProcess | undefined;
  let nodePort = 0;
  let socketPath = '';
  let uwsgiPort = 0;
  let router: UwsgiRouter | undefined;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sy-parity-'));
    writeFileSync(path.join(dir, 'app.py'), APP);
    nodePort = await freePort();
    socketPath = path.join(dir, 'node.sock');
    node = spawn(
      'uwsgi',
      [
        '--plugin',
        'python3',
        '--socket',
        `127.0.0.1:${nodePort}`,
        '--socket',
        socketPath,
        '--wsgi-file',
        path.join(dir, 'app.py'),
        '--master',
        '--processes',
        '2',
        '--logto',
        path.join(dir, 'node.log'),
      ],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 10_000;
    while (!(await accepts(nodePort))) {
      if (Date.now() > deadline) throw new Error('the uWSGI node did not start');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    uwsgiPort = await freePort();
    router = await startUwsgiRouter(
      ['--http', `127.0.0.1:${uwsgiPort}`, '--http-to', `127.0.0.1:${nodePort}`, '--master'],
      uwsgiPort,
    );
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await router?.stop();
    if (node !== undefined && node.exitCode === null) {
      const exited = new Promise((resolve) => node!.once('exit', resolve));
      node.kill('SIGINT');
      const timer = setTimeout(() => node!.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  async function switchyard(httpTo: string): Promise<number> {
    const { app, httpPort } = await startApp(['--http-to', httpTo]);
    cleanups.push(() => app.close());
    return httpPort;
  }

  test('every var uWSGI sets arrives identically, apart from the documented differences', async () => {
    const ours = await switchyard(`127.0.0.1:${nodePort}`);
    for (const c of CASES) {
      const theirs = await exchange(uwsgiPort, c.bytes);
      const mine = await exchange(ours, c.bytes);
      const differing: Record<string, [string | undefined, string | undefined]> = {};
      for (const key of new Set([...Object.keys(theirs.environ), ...Object.keys(mine.environ)])) {
        if (ALWAYS.includes(key)) continue;
        if (theirs.environ[key] !== mine.environ[key]) differing[key] = [theirs.environ[key], mine.environ[key]];
      }
      assert.deepEqual(differing, c.expected, c.name);
      assert.equal(mine.environ.SERVER_PORT, String(ours), c.name);
      assert.equal(theirs.environ.SERVER_PORT, String(uwsgiPort), c.name);
      // uWSGI byte-swaps REMOTE_PORT (issue #1889); Switchyard sends the real port.
      assert.equal(mine.environ.REMOTE_PORT, String(mine.clientPort), c.name);
      assert.equal(theirs.environ.REMOTE_PORT, String(byteSwap16(theirs.clientPort)), c.name);
    }
  });

  test('carries a 10 MiB response intact, with and without Content-Length', async () => {
    const ours = await switchyard(`127.0.0.1:${nodePort}`);
    const digest = createHash('sha256').update(expectedBig()).digest('hex');
    for (const target of ['/big', '/big-stream']) {
      const reply = await rawExchange(ours, `GET ${target} HTTP/1.1\r\n${HOST}${CLOSE}\r\n`, 20_000);
      assert.equal(reply.status, 200, target);
      assert.equal(reply.body.length, BIG_SIZE, target);
      assert.equal(createHash('sha256').update(reply.body).digest('hex'), digest, target);
    }
  });

  test('routes to a static uwsgi node over TCP and over a unix socket path', async () => {
    for (const httpTo of [`127.0.0.1:${nodePort}`, socketPath]) {
      const port = await switchyard(httpTo);
      const reply = await rawExchange(port, `GET /static?via=1 HTTP/1.1\r\n${HOST}${CLOSE}\r\n`);
      assert.equal(reply.status, 200, httpTo);
      const environ = JSON.parse(reply.body.toString('utf8')) as Record<string, string>;
      assert.deepEqual(
        [environ.PATH_INFO, environ.QUERY_STRING, environ.HTTP_HOST],
        ['/static', 'via=1', 'parity.test'],
      );
    }
  });
});
