/**
 * Framing and header rules of the data plane (http-hardening notes §1.1, §1.3, §2.1), over raw sockets:
 * every refused request gets its status and SY_* code with `Connection: close`, and nothing reaches the
 * node (the backend counts request heads).
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { Balancer, HostEntry, Router } from '../src/index.js';
import { httpNode, startRouter } from './helpers.js';
import { type CountingBackend, rawExchange, startCountingBackend, startScriptedNode, until } from './raw-client.js';

const H = 'Host: app.test\r\n';

/** [behaviour, request bytes, status, code] */
type Refusal = readonly [string, string, number, string];

const FRAMING: readonly Refusal[] = [
  [
    'Content-Length with Transfer-Encoding',
    `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'Transfer-Encoding with Content-Length',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'Transfer-Encoding: gzip, chunked',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'Transfer-Encoding: chunked, gzip',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'Transfer-Encoding: ,chunked',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  ['Transfer-Encoding: identity', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n`, 400, 'SY_BAD_REQUEST'],
  [
    'Transfer-Encoding: xchunked',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'Transfer-Encoding: chunked, chunked',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'two Transfer-Encoding: chunked fields',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'x then chunked in two Transfer-Encoding fields',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'Transfer-Encoding on HTTP/1.0',
    `POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'two equal Content-Length fields',
    `POST / HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 1\r\n\r\na`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'two different Content-Length fields',
    `POST / HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab`,
    400,
    'SY_BAD_REQUEST',
  ],
  ['Content-Length: 3, 3', `POST / HTTP/1.1\r\n${H}Content-Length: 3, 3\r\n\r\nabc`, 400, 'SY_BAD_REQUEST'],
  ['Content-Length: +3', `POST / HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\nabc`, 400, 'SY_BAD_REQUEST'],
  ['Content-Length: 0x3', `POST / HTTP/1.1\r\n${H}Content-Length: 0x3\r\n\r\nabc`, 400, 'SY_BAD_REQUEST'],
  ['Content-Length: -1', `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`, 400, 'SY_BAD_REQUEST'],
  ['an empty Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length:\r\n\r\n`, 400, 'SY_BAD_REQUEST'],
  ['Content-Length: 1 3', `POST / HTTP/1.1\r\n${H}Content-Length: 1 3\r\n\r\nabc`, 400, 'SY_BAD_REQUEST'],
  [
    'a 23-digit Content-Length',
    `POST / HTTP/1.1\r\n${H}Content-Length: 10000000000000000000000\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'a space before the colon of Content-Length',
    `POST / HTTP/1.1\r\n${H}Content-Length : 3\r\n\r\nabc`,
    400,
    'SY_BAD_REQUEST',
  ],
  ['an obs-fold continuation line', `GET / HTTP/1.1\r\n${H}X-A: 1\r\n  folded\r\n\r\n`, 400, 'SY_BAD_REQUEST'],
  ['a bare LF between header fields', `GET / HTTP/1.1\r\n${H}X-A: 1\nX-B: 2\r\n\r\n`, 400, 'SY_BAD_REQUEST'],
  ['a bare LF after the request line', `GET / HTTP/1.1\n${H}\r\n`, 400, 'SY_BAD_REQUEST'],
  ['a bare CR inside the head', `GET / HTTP/1.1\r\n${H}X-A: 1\rX-B: 2\r\n\r\n`, 400, 'SY_BAD_REQUEST'],
  [
    'the \\r\\n\\rX head terminator (CVE-2025-23167)',
    `GET / HTTP/1.1\r\n${H}\rXGET /evil HTTP/1.1\r\n${H}\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  ['a NUL byte in a header value', `GET / HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n`, 400, 'SY_BAD_REQUEST'],
];

/**
 * Errors inside a body: the head was valid, so it may already be on its way to the node (bodies stream),
 * but the node never receives a complete request: the router cuts the upstream connection.
 */
const BODY_ERRORS: readonly Refusal[] = [
  [
    'a 0x-prefixed chunk size',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'a chunk size with a trailing space',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'a negative chunk size',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'an overflowing chunk size',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${'f'.repeat(17)}\r\nabc\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'chunk data not followed by CRLF',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'a bare LF after a chunk size',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'a CR inside a chunk extension (5\\r\\r;ABCD)',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  [
    'a missing last chunk',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nfoo\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
];

const HOSTS: readonly Refusal[] = [
  ['an HTTP/1.1 request without Host', 'GET / HTTP/1.1\r\n\r\n', 400, 'SY_BAD_HOST'],
  ['two Host fields', `GET / HTTP/1.1\r\n${H}Host: other.test\r\n\r\n`, 400, 'SY_BAD_HOST'],
  ['two identical Host fields', `GET / HTTP/1.1\r\n${H}${H}\r\n`, 400, 'SY_BAD_HOST'],
  ['an empty Host', 'GET / HTTP/1.1\r\nHost:\r\n\r\n', 400, 'SY_BAD_HOST'],
  ['a Host with /', 'GET / HTTP/1.1\r\nHost: app.test/x\r\n\r\n', 400, 'SY_BAD_HOST'],
  ['a Host with \\', 'GET / HTTP/1.1\r\nHost: app.test\\x\r\n\r\n', 400, 'SY_BAD_HOST'],
  ['a Host with ..', 'GET / HTTP/1.1\r\nHost: app..test\r\n\r\n', 400, 'SY_BAD_HOST'],
  ['a Host with userinfo @', 'GET / HTTP/1.1\r\nHost: evil@app.test\r\n\r\n', 400, 'SY_BAD_HOST'],
  ['a Host with a control byte', 'GET / HTTP/1.1\r\nHost: app\x01.test\r\n\r\n', 400, 'SY_BAD_REQUEST'],
  ['a Host with an inner space', 'GET / HTTP/1.1\r\nHost: app .test\r\n\r\n', 400, 'SY_BAD_HOST'],
  ['a Host with port 99999', 'GET / HTTP/1.1\r\nHost: app.test:99999\r\n\r\n', 400, 'SY_BAD_HOST'],
  ['a Host with a non-numeric port', 'GET / HTTP/1.1\r\nHost: app.test:80x\r\n\r\n', 400, 'SY_BAD_HOST'],
  [
    'an absolute-form authority that differs from Host',
    `GET http://evil.test/x HTTP/1.1\r\n${H}\r\n`,
    400,
    'SY_BAD_HOST',
  ],
  ['an absolute-form authority with userinfo', `GET http://u@app.test/x HTTP/1.1\r\n${H}\r\n`, 400, 'SY_BAD_HOST'],
  ['an absolute-form authority with another port', `GET http://app.test:81/x HTTP/1.1\r\n${H}\r\n`, 400, 'SY_BAD_HOST'],
];

const TARGETS: readonly Refusal[] = [
  ['GET *', `GET * HTTP/1.1\r\n${H}\r\n`, 400, 'SY_BAD_REQUEST'],
  ['a relative target (GET admin)', `GET admin HTTP/1.1\r\n${H}\r\n`, 400, 'SY_BAD_REQUEST'],
  ['authority-form outside CONNECT', `GET app.test:80 HTTP/1.1\r\n${H}\r\n`, 400, 'SY_BAD_REQUEST'],
  ['an ftp:// absolute-form target', `GET ftp://app.test/x HTTP/1.1\r\n${H}\r\n`, 400, 'SY_BAD_REQUEST'],
  ['CONNECT (not proxied)', `CONNECT app.test:443 HTTP/1.1\r\n${H}\r\n`, 400, 'SY_BAD_REQUEST'],
  ['a space inside the target', `GET /a b HTTP/1.1\r\n${H}\r\n`, 400, 'SY_BAD_REQUEST'],
  ['a target over 8 KiB', `GET /${'a'.repeat(8192)} HTTP/1.1\r\n${H}\r\n`, 414, 'SY_URI_TOO_LONG'],
  ['HTTP/2.0 with HTTP/1 framing', `GET / HTTP/2.0\r\n${H}\r\n`, 505, 'SY_VERSION_NOT_SUPPORTED'],
  ['HTTP/0.9 (no version)', 'GET /\r\n\r\n', 505, 'SY_VERSION_NOT_SUPPORTED'],
  ['HTTP/1.2', `GET / HTTP/1.2\r\n${H}\r\n`, 505, 'SY_VERSION_NOT_SUPPORTED'],
  ['a malformed version (HTTP/1.10)', `GET / HTTP/1.10\r\n${H}\r\n`, 400, 'SY_BAD_REQUEST'],
  ['an unknown method', `FOO / HTTP/1.1\r\n${H}\r\n`, 400, 'SY_BAD_REQUEST'],
  ['a lowercase method', `get / HTTP/1.1\r\n${H}\r\n`, 400, 'SY_BAD_REQUEST'],
  ['Upgrade: h2c', `GET / HTTP/1.1\r\n${H}Upgrade: h2c\r\n\r\n`, 400, 'SY_BAD_REQUEST'],
  ['h2c among Upgrade tokens', `GET / HTTP/1.1\r\n${H}Upgrade: foo/1, H2C\r\n\r\n`, 400, 'SY_BAD_REQUEST'],
  [
    'an h2c upgrade with Connection: Upgrade, HTTP2-Settings',
    `GET / HTTP/1.1\r\n${H}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`,
    400,
    'SY_BAD_REQUEST',
  ],
  ['an HTTP2-Settings field', `GET / HTTP/1.1\r\n${H}HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`, 400, 'SY_BAD_REQUEST'],
  [
    '101 header fields',
    `GET / HTTP/1.1\r\n${H}${Array.from({ length: 100 }, (_, i) => `X-${i}: v\r\n`).join('')}\r\n`,
    431,
    'SY_HEADERS_TOO_LARGE',
  ],
  [
    '3,000 empty header fields (16 KiB of name+value bytes is not the whole head)',
    `GET / HTTP/1.1\r\n${H}${'X:\r\n'.repeat(3000)}\r\n`,
    431,
    'SY_HEADERS_TOO_LARGE',
  ],
  [
    'a header block over 16 KiB',
    `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(16 * 1024)}\r\n\r\n`,
    431,
    'SY_HEADERS_TOO_LARGE',
  ],
  [
    '60 fields whose whole head is over 16 KiB',
    `GET / HTTP/1.1\r\n${H}${Array.from({ length: 60 }, (_, i) => `X-${i}: ${'v'.repeat(270)}\r\n`).join('')}\r\n`,
    431,
    'SY_HEADERS_TOO_LARGE',
  ],
  ['Expect: something-else', `GET / HTTP/1.1\r\n${H}Expect: something-else\r\n\r\n`, 417, 'SY_EXPECTATION_FAILED'],
];

describe('request framing and header rules over raw sockets', () => {
  let backend: CountingBackend;
  let router: Router;
  let port: number;
  before(async () => {
    backend = await startCountingBackend();
    ({ router, port } = await startRouter());
    router.upsertNode(httpNode('app.test', backend.address));
  });
  after(async () => {
    await router.close();
    await backend.close();
  });
  beforeEach(() => {
    backend.heads.length = 0;
  });

  async function assertRefused(bytes: string, status: number, code: string): Promise<void> {
    const result = await rawExchange(port, bytes);
    assert.equal(result.responses.length, 1, `one response, got ${JSON.stringify(result.bytes.toString('latin1'))}`);
    const response = result.responses[0]!;
    assert.equal(response.status, status);
    assert.equal(response.code, code);
    assert.equal(JSON.parse(response.body.toString()).error.code, code);
    assert.equal(response.headers.connection, 'close');
    assert.notEqual(result.ending, 'timeout', 'the router closes the connection');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(backend.heads.length, 0, 'nothing reached the node');
  }

  for (const [what, bytes, status, code] of [...FRAMING, ...HOSTS, ...TARGETS]) {
    test(`refuses ${what} with ${status} ${code}, closes, and the node sees nothing`, () =>
      assertRefused(bytes, status, code));
  }

  for (const [what, bytes, status, code] of BODY_ERRORS) {
    test(`refuses ${what} with ${status} ${code}, and the node never gets a complete request`, async () => {
      const result = await rawExchange(port, bytes);
      assert.deepEqual(
        result.responses.map((r) => [r.status, r.code, r.headers.connection]),
        [[status, code, 'close']],
      );
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(backend.completed().length, 0);
      assert.ok(backend.heads.length <= 1);
    });
  }

  test('the parser is strict: the CL+TE smuggling probe is a 400, never a proxied request', async () => {
    const probe = `POST / HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n`;
    const result = await rawExchange(port, probe);
    assert.deepEqual(
      result.responses.map((r) => r.status),
      [400],
    );
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(backend.heads.length, 0);
  });

  test('accepts exactly 100 header fields and a target of exactly 8 KiB', async () => {
    const fields = Array.from({ length: 98 }, (_, i) => `X-${i}: v\r\n`).join('');
    const many = await rawExchange(port, `GET / HTTP/1.1\r\n${H}${fields}Connection: close\r\n\r\n`);
    assert.equal(many.responses[0]?.status, 200);
    const target = `/${'a'.repeat(8191)}`;
    const long = await rawExchange(port, `GET ${target} HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    assert.equal(long.responses[0]?.status, 200);
    assert.equal(backend.heads.length, 2);
    assert.equal(backend.heads[1]!.url, target);
  });

  test('OPTIONS * is proxied with the target *', async () => {
    const result = await rawExchange(port, `OPTIONS * HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    assert.equal(result.responses[0]?.status, 200);
    assert.equal(backend.heads[0]!.url, '*');
  });

  test('an absolute-form target is routed by its authority and forwarded in origin-form', async () => {
    const same = await rawExchange(port, `GET http://APP.test/x?y=1 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    assert.equal(same.responses[0]?.status, 200);
    const noHost = await rawExchange(port, 'GET http://app.test?q HTTP/1.0\r\n\r\n');
    assert.equal(noHost.responses[0]?.status, 200);
    assert.deepEqual(
      backend.heads.map((h) => [h.url, h.headers.host]),
      [
        ['/x?y=1', 'app.test'],
        ['/?q', 'app.test'],
      ],
    );
  });

  test('path bytes are forwarded exactly as received (no decoding, no dot-segment removal)', async () => {
    const targets = [
      '/a/../b',
      '/a/%2f/..%2F..%2fc',
      '//x//y',
      '/a%2e%2e/b?x=%00&y=..',
      '/a/./b/#frag',
      '/~user/%7e;p=1',
    ];
    for (const target of targets) {
      const result = await rawExchange(port, `GET ${target} HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
      assert.equal(result.responses[0]?.status, 200, target);
    }
    assert.deepEqual(
      backend.heads.map((h) => h.url),
      targets,
    );
  });

  test('a request after Connection: close is never served', async () => {
    const result = await rawExchange(
      port,
      `GET /1 HTTP/1.1\r\n${H}Connection: close\r\n\r\nGET /2 HTTP/1.1\r\n${H}\r\n`,
    );
    assert.deepEqual(
      result.responses.map((r) => r.status),
      [200],
    );
    assert.equal(result.ending, 'end');
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      backend.heads.map((h) => h.url),
      ['/1'],
    );
  });

  test('pipelined garbage after a good request: the good response comes first, then a 400, in order', async () => {
    const result = await rawExchange(port, `GET /1 HTTP/1.1\r\n${H}\r\nGET /2 HTTP/1.1\r\n${H}X: a\r\n b\r\n\r\n`);
    assert.deepEqual(
      result.responses.map((r) => [r.status, r.headers['x-backend'] ?? r.code]),
      [
        [200, 'yes'],
        [400, 'SY_BAD_REQUEST'],
      ],
    );
    assert.deepEqual(
      backend.heads.map((h) => h.url),
      ['/1'],
    );
  });

  test('a client that half-closes right after its request still gets the whole response', async () => {
    const result = await rawExchange(port, `PUT /half HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`, {
      endAfterWrite: true,
    });
    assert.deepEqual(
      result.responses.map((r) => [r.status, r.headers['x-body-length']]),
      [[200, '5']],
    );
    assert.equal(result.ending, 'end');
  });

  test('two pipelined requests are both served, in order', async () => {
    const result = await rawExchange(
      port,
      `GET /1 HTTP/1.1\r\n${H}\r\nGET /2 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
    );
    assert.deepEqual(
      result.responses.map((r) => r.status),
      [200, 200],
    );
    assert.deepEqual(
      backend.heads.map((h) => h.url),
      ['/1', '/2'],
    );
  });

  test('an HTTP/2 connection preface is closed without reaching the node', async () => {
    const result = await rawExchange(port, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    assert.notEqual(result.ending, 'timeout');
    assert.ok(result.responses.every((r) => r.status === 400 || r.status === 505));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(backend.heads.length, 0);
  });

  test('the router survives all of the above: a normal request still works', async () => {
    const result = await rawExchange(port, `GET /alive HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    assert.equal(result.responses[0]?.status, 200);
    assert.ok(await until(() => backend.heads.length === 1, 1000));
  });
});

describe('framing is decoded and re-framed, never forwarded', () => {
  test('a chunked body with extensions and trailers reaches the node re-chunked, client framing headers dropped', async () => {
    let captured: Buffer = Buffer.alloc(0);
    const node = await startScriptedNode((socket, received) => {
      socket.on('data', () => {
        const text = received().toString('latin1');
        if (text.includes('\r\n0\r\n\r\n') || /Content-Length: \d+\r\n\r\n[\s\S]*hello world/.test(text)) {
          captured = received();
          socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
        }
      });
    });
    const { router, port } = await startRouter();
    try {
      router.upsertNode(httpNode('app.test', node.address));
      const chunked = `POST /c HTTP/1.1\r\n${H}Transfer-Encoding: Chunked\r\nConnection: close\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n`;
      const result = await rawExchange(port, chunked);
      assert.equal(result.responses[0]?.status, 200);
      const head = captured.toString('latin1').split('\r\n\r\n')[0]!;
      assert.match(head, /^POST \/c HTTP\/1\.1\r\n/);
      assert.equal((head.match(/transfer-encoding/gi) ?? []).length, 1);
      assert.match(head, /\r\nTransfer-Encoding: chunked(\r\n|$)/);
      assert.doesNotMatch(head, /Chunked|Content-Length|X-Trailer/);
      assert.doesNotMatch(captured.toString('latin1'), /ext=1|X-Trailer/);

      const length = `POST /l HTTP/1.1\r\n${H}Content-Length: 0011\r\nConnection: close\r\n\r\nhello world`;
      const second = await rawExchange(port, length);
      assert.equal(second.responses[0]?.status, 200);
      const head2 = captured.toString('latin1').split('\r\n\r\n')[0]!;
      assert.match(head2, /\r\nContent-Length: 11(\r\n|$)/);
      assert.doesNotMatch(head2, /0011|Transfer-Encoding/i);
    } finally {
      await router.close();
      await node.close();
    }
  });
});

describe('a bug in the request path', () => {
  test('a throw inside the request path is answered 500 SY_INTERNAL; the router keeps serving and closes promptly', async () => {
    const backend = await startCountingBackend();
    let calls = 0;
    const { router, port } = await startRouter({
      shutdownGraceMs: 5000,
      balancer: {
        name: 'throwing',
        candidates(entry: HostEntry) {
          calls++;
          if (calls === 1) throw new Error('bug');
          return entry.live;
        },
        explain: () => assert.fail('not used'),
      } as unknown as Balancer,
    });
    try {
      router.upsertNode(httpNode('app.test', backend.address));
      const failed = await rawExchange(port, `GET / HTTP/1.1\r\n${H}\r\n`, { responses: 1 });
      assert.deepEqual(
        failed.responses.map((r) => [r.status, r.code]),
        [[500, 'SY_INTERNAL']],
      );
      const ok = await rawExchange(port, `GET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
      assert.equal(ok.responses[0]?.status, 200);
      assert.equal(router.stats().inFlight, 0);
    } finally {
      const started = Date.now();
      await router.close();
      assert.ok(Date.now() - started < 2000, 'no request left in flight');
      await backend.close();
    }
  });
});
