/**
 * What crosses the router in each direction, seen on raw sockets at both ends: hop-by-hop headers and
 * Connection-listed names stripped both ways (without letting Connection delete proxy-owned headers),
 * forwarded headers (trust nobody by default; --trusted-proxies; --forwarded-header), and response
 * values that Node would refuse to write (never a crash).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { ForwardingPolicy } from '../src/forwarding-policy.js';
import type { RouterOptions } from '../src/index.js';
import { httpNode, startRouter } from './helpers.js';
import { rawExchange, startCountingBackend, startScriptedNode } from './raw-client.js';

const H = 'Host: app.test\r\n';

/** Runs `fn` against a router whose app.test points at a counting backend. */
async function withBackend(
  options: Partial<RouterOptions>,
  fn: (port: number, heads: () => import('./raw-client.js').SeenRequest[]) => Promise<void>,
): Promise<void> {
  const backend = await startCountingBackend();
  const { router, port } = await startRouter(options);
  try {
    router.upsertNode(httpNode('app.test', backend.address));
    await fn(port, () => backend.heads);
  } finally {
    await router.close();
    await backend.close();
  }
}

/** Raw header lines of a seen request, lowercased names, for exact assertions. */
function fieldNames(raw: readonly string[]): string[] {
  return raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
}

describe('hop-by-hop headers', () => {
  test('request: hop-by-hop fields and every name listed in Connection are stripped before the node', async () => {
    await withBackend({}, async (port, heads) => {
      const request =
        `GET / HTTP/1.1\r\n${H}Connection: keep-alive, X-Secret, x-other\r\nX-Secret: 1\r\nX-Other: 2\r\n` +
        'Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\n' +
        'Upgrade: foo/1\r\nProxy-Authorization: Basic eA==\r\nX-Kept: yes\r\n\r\n';
      const result = await rawExchange(port, request, { responses: 1 });
      assert.equal(result.responses[0]?.status, 200);
      const names = fieldNames(heads()[0]!.rawHeaders);
      for (const gone of [
        'connection',
        'x-secret',
        'x-other',
        'keep-alive',
        'proxy-connection',
        'te',
        'trailer',
        'upgrade',
        'proxy-authorization',
      ]) {
        assert.ok(!names.includes(gone), `${gone} must not reach the node`);
      }
      assert.equal(heads()[0]!.headers['x-kept'], 'yes');
    });
  });

  test('request: Connection cannot remove Host, framing or the forwarded headers the router adds', async () => {
    await withBackend({}, async (port, heads) => {
      const request =
        `POST / HTTP/1.1\r\n${H}Connection: close, Host, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, Content-Length, Transfer-Encoding\r\n` +
        'Content-Length: 5\r\n\r\nhello';
      const result = await rawExchange(port, request);
      assert.equal(result.responses[0]?.status, 200);
      const seen = heads()[0]!;
      assert.equal(seen.headers.host, 'app.test');
      assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(seen.headers['x-forwarded-proto'], 'http');
      assert.equal(seen.headers['x-forwarded-host'], 'app.test');
      assert.equal(seen.headers['content-length'], '5');
      assert.equal(seen.body.toString(), 'hello');
    });
  });

  test('response: hop-by-hop fields and Connection-listed names from the node never reach the client', async () => {
    const node = await startScriptedNode((socket, received) => {
      socket.on('data', () => {
        if (!received().includes('\r\n\r\n')) return;
        socket.end(
          'HTTP/1.1 200 OK\r\nConnection: X-Internal, close\r\nX-Internal: secret\r\nKeep-Alive: timeout=9\r\n' +
            'Proxy-Authenticate: Basic\r\nProxy-Connection: keep-alive\r\nTrailer: X-T\r\nUpgrade: foo\r\n' +
            'X-Public: yes\r\nContent-Length: 2\r\n\r\nok',
        );
      });
    });
    const { router, port } = await startRouter();
    try {
      router.upsertNode(httpNode('app.test', node.address));
      const result = await rawExchange(port, `GET / HTTP/1.1\r\n${H}\r\n`, { responses: 1 });
      const response = result.responses[0]!;
      assert.equal(response.status, 200);
      assert.equal(response.body.toString(), 'ok');
      assert.equal(response.headers['x-public'], 'yes');
      for (const gone of ['x-internal', 'proxy-authenticate', 'proxy-connection', 'trailer', 'upgrade']) {
        assert.equal(response.headers[gone], undefined, `${gone} must not reach the client`);
      }
      // The client connection's own Connection / Keep-Alive are the router's, not the node's.
      assert.equal(response.headers.connection, 'keep-alive');
      assert.doesNotMatch(response.rawHead, /timeout=9|X-Internal/i);
    } finally {
      await router.close();
      await node.close();
    }
  });
});

describe('forwarded headers', () => {
  const spoof =
    'X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\n' +
    'Forwarded: for=6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n';

  test('by default nobody is trusted: client forwarded headers are replaced by the socket peer', async () => {
    await withBackend({}, async (port, heads) => {
      await rawExchange(port, `GET / HTTP/1.1\r\n${H}${spoof}Connection: close\r\n\r\n`);
      const seen = heads()[0]!;
      assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(seen.headers['x-forwarded-proto'], 'http');
      assert.equal(seen.headers['x-forwarded-host'], 'app.test');
      assert.equal(seen.headers.forwarded, undefined);
      assert.equal(seen.headers['x-real-ip'], undefined);
      const names = fieldNames(seen.rawHeaders);
      assert.equal(names.filter((n) => n === 'x-forwarded-for').length, 1);
    });
  });

  test('a trusted proxy peer: its X-Forwarded-For chain is kept and the peer appended, its proto and host kept', async () => {
    await withBackend({ trustedProxies: ['10.0.0.0/8', '127.0.0.1/32'] }, async (port, heads) => {
      const request = `GET / HTTP/1.1\r\n${H}X-Forwarded-For: 203.0.113.9, 10.1.1.1\r\nX-Forwarded-For: 10.2.2.2\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: www.example.com\r\nX-Real-IP: 6.6.6.6\r\nConnection: close\r\n\r\n`;
      await rawExchange(port, request);
      const seen = heads()[0]!;
      assert.equal(seen.headers['x-forwarded-for'], '203.0.113.9, 10.1.1.1, 10.2.2.2, 127.0.0.1');
      assert.equal(seen.headers['x-forwarded-proto'], 'https');
      assert.equal(seen.headers['x-forwarded-host'], 'www.example.com');
      assert.equal(seen.headers['x-real-ip'], undefined);
    });
  });

  test('a trusted proxy peer without forwarded headers gets the router defaults', async () => {
    await withBackend({ trustedProxies: ['127.0.0.1'] }, async (port, heads) => {
      await rawExchange(port, `GET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
      const seen = heads()[0]!;
      assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(seen.headers['x-forwarded-proto'], 'http');
      assert.equal(seen.headers['x-forwarded-host'], 'app.test');
    });
  });

  test('a peer outside the trusted blocks is not trusted', async () => {
    await withBackend({ trustedProxies: ['10.0.0.0/8', '::1'] }, async (port, heads) => {
      await rawExchange(port, `GET / HTTP/1.1\r\n${H}${spoof}Connection: close\r\n\r\n`);
      assert.equal(heads()[0]!.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(heads()[0]!.headers['x-forwarded-proto'], 'http');
    });
  });

  test('--forwarded-header adds an RFC 7239 Forwarded element; a trusted peer keeps the earlier ones', async () => {
    await withBackend({ forwardedHeader: true }, async (port, heads) => {
      await rawExchange(port, `GET / HTTP/1.1\r\n${H}${spoof}Connection: close\r\n\r\n`);
      assert.equal(heads()[0]!.headers.forwarded, 'for=127.0.0.1;host=app.test;proto=http');
    });
    await withBackend({ forwardedHeader: true, trustedProxies: ['127.0.0.0/8'] }, async (port, heads) => {
      await rawExchange(
        port,
        `GET / HTTP/1.1\r\n${H}Forwarded: for=192.0.2.60;proto=https\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(heads()[0]!.headers.forwarded, 'for=192.0.2.60;proto=https, for=127.0.0.1;host=app.test;proto=http');
    });
  });

  test('Forwarded quotes IPv6 peers and host:port; copied values with control bytes are dropped, never forwarded', () => {
    const policy = new ForwardingPolicy({ trustedProxies: ['::1'], forwardedHeader: true });
    const req = {
      socket: {},
      rawHeaders: ['X-Forwarded-For', '198.51.100.1', 'X-Forwarded-Host', 'a\x01b', 'Forwarded', 'for=192.0.2.1'],
    } as unknown as http.IncomingMessage;
    assert.deepEqual(policy.fields(req, '::1', 'app.test:8080'), [
      ['X-Forwarded-For', '198.51.100.1, ::1'],
      ['X-Forwarded-Proto', 'http'],
      ['X-Forwarded-Host', 'app.test:8080'],
      ['Forwarded', 'for=192.0.2.1, for="[::1]";host="app.test:8080";proto=http'],
    ]);
    const untrusted = policy.fields(req, '2001:db8::9', undefined);
    assert.deepEqual(untrusted, [
      ['X-Forwarded-For', '2001:db8::9'],
      ['X-Forwarded-Proto', 'http'],
      ['Forwarded', 'for="[2001:db8::9]";proto=http'],
    ]);
  });

  test('trusted blocks match IPv4, IPv4-mapped IPv6 and IPv6 peers; invalid blocks are a SY_BAD_CONFIG', () => {
    const policy = new ForwardingPolicy({ trustedProxies: ['10.0.0.0/8', '2001:db8::/32', '[::1]'] });
    assert.equal(policy.isTrusted('10.9.8.7'), true);
    assert.equal(policy.isTrusted('::ffff:10.9.8.7'), true);
    assert.equal(policy.isTrusted('11.0.0.1'), false);
    assert.equal(policy.isTrusted('2001:db8:1::5'), true);
    assert.equal(policy.isTrusted('2001:db9::5'), false);
    assert.equal(policy.isTrusted('::1'), true);
    assert.equal(policy.isTrusted(''), false);
    assert.equal(new ForwardingPolicy().isTrusted('127.0.0.1'), false);
    for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0/8', '::1/129', '']) {
      assert.throws(() => new ForwardingPolicy({ trustedProxies: [bad] }), { code: 'SY_BAD_CONFIG' });
    }
  });
});

describe('response values the router cannot forward', () => {
  const cases: readonly (readonly [string, string])[] = [
    ['a DEL byte in the reason phrase', 'HTTP/1.1 200 O\x7fK\r\nContent-Length: 2\r\n\r\nok'],
    ['a DEL byte in a header value', 'HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\nContent-Length: 2\r\n\r\nok'],
    ['a bare CR in a header value', 'HTTP/1.1 200 OK\r\nX-A: a\rInjected: 1\r\nContent-Length: 2\r\n\r\nok'],
    ['a bare LF splitting a header value', 'HTTP/1.1 200 OK\r\nX-A: a\nSet-Cookie: x=1\r\nContent-Length: 2\r\n\r\nok'],
    ['a NUL byte in a header value', 'HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok'],
    ['a header name with a space', 'HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 2\r\n\r\nok'],
  ];
  for (const [what, response] of cases) {
    test(`a node response with ${what} becomes 502 SY_UPSTREAM_BAD_RESPONSE and the router keeps serving`, async () => {
      const node = await startScriptedNode((socket, received) => {
        socket.on('data', () => {
          if (received().includes('\r\n\r\n')) socket.end(Buffer.from(response, 'latin1'));
        });
      });
      const good = await startCountingBackend();
      const { router, port } = await startRouter();
      try {
        router.upsertNode(httpNode('bad.test', node.address));
        router.upsertNode(httpNode('app.test', good.address));
        const result = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: bad.test\r\n\r\n', { responses: 1 });
        assert.equal(result.responses[0]?.status, 502);
        assert.equal(result.responses[0]?.code, 'SY_UPSTREAM_BAD_RESPONSE');
        assert.doesNotMatch(result.bytes.toString('latin1'), /Injected|Set-Cookie/);
        const after = await new Promise<number>((resolve, reject) => {
          http
            .get({ port, host: '127.0.0.1', headers: { host: 'app.test' }, agent: false }, (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            })
            .on('error', reject);
        });
        assert.equal(after, 200);
      } finally {
        await router.close();
        await node.close();
        await good.close();
      }
    });
  }

  test('8-bit header values pass byte for byte in both directions', async () => {
    let requestHead = '';
    const node = await startScriptedNode((socket, received) => {
      socket.on('data', () => {
        if (!received().includes('\r\n\r\n')) return;
        requestHead = received().toString('latin1');
        socket.end(Buffer.from('HTTP/1.1 200 OK\r\nX-Name: Gr\xfc\xdfe \xff\r\nContent-Length: 0\r\n\r\n', 'latin1'));
      });
    });
    const { router, port } = await startRouter();
    try {
      router.upsertNode(httpNode('app.test', node.address));
      const result = await rawExchange(port, `GET / HTTP/1.1\r\n${H}X-City: D\xfcsseldorf\r\n\r\n`, { responses: 1 });
      assert.match(requestHead, /\r\nX-City: D\xfcsseldorf\r\n/);
      assert.match(result.responses[0]!.rawHead, /\r\nX-Name: Gr\xfc\xdfe \xff/);
    } finally {
      await router.close();
      await node.close();
    }
  });
});
