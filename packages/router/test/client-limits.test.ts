/**
 * Client limits and timeouts with short configured values: slowloris heads and slow bodies are cut at
 * their timeout without slowing other clients, idle keep-alive connections close, body size limits
 * answer 413 before dispatch (no 100 Continue first), and connections over the limit get a 503.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { describe, test } from 'node:test';
import { CLIENT_LIMIT_DEFAULTS, resolveClientLimits } from '../src/client-limits.js';
import type { RouterOptions } from '../src/index.js';
import { httpNode, startRouter } from './helpers.js';
import { type CountingBackend, rawExchange, startCountingBackend, until } from './raw-client.js';

const H = 'Host: app.test\r\n';

async function withRouter(
  options: Partial<RouterOptions>,
  fn: (port: number, backend: CountingBackend) => Promise<void>,
  handler?: Parameters<typeof startCountingBackend>[0],
): Promise<void> {
  const backend = await startCountingBackend(handler);
  const { router, port } = await startRouter(options);
  try {
    router.upsertNode(httpNode('app.test', backend.address));
    await fn(port, backend);
  } finally {
    await router.close();
    await backend.close();
  }
}

/** Latencies of `count` sequential GETs on fresh connections, ms. */
async function fastLatencies(port: number, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const result = await rawExchange(port, `GET /fast HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    assert.equal(result.responses[0]?.status, 200);
    out.push(result.elapsedMs);
  }
  return out;
}

describe('slow clients', () => {
  test('a slowloris head (1 byte per 50 ms) gets 408 SY_CLIENT_TIMEOUT at the header timeout; others are served meanwhile', async () => {
    await withRouter({ headersTimeoutMs: 500 }, async (port, backend) => {
      const head = `GET /slow HTTP/1.1\r\n${H}X-Pad: ${'x'.repeat(100)}\r\n\r\n`;
      const slow = rawExchange(port, head, {
        timeoutMs: 3000,
        pieces: [...head].map((ch) => [ch, 50] as const),
      });
      await new Promise((r) => setTimeout(r, 100));
      const latencies = await fastLatencies(port, 10);
      const result = await slow;
      assert.equal(result.responses[0]?.status, 408);
      assert.equal(result.responses[0]?.code, 'SY_CLIENT_TIMEOUT');
      assert.notEqual(result.ending, 'timeout');
      assert.ok(result.elapsedMs >= 450 && result.elapsedMs < 2500, `cut after ${result.elapsedMs} ms`);
      assert.ok(Math.max(...latencies) < 1000, `fast requests took ${latencies.join(', ')} ms`);
      assert.deepEqual(
        backend.heads.map((h) => h.url),
        Array(10).fill('/fast'),
      );
    });
  });

  test('a connection that never sends a byte gets 408 at the header timeout', async () => {
    await withRouter({ headersTimeoutMs: 300 }, async (port) => {
      const result = await rawExchange(port, '', { timeoutMs: 3000 });
      assert.equal(result.responses[0]?.code, 'SY_CLIENT_TIMEOUT');
      assert.ok(result.elapsedMs >= 250 && result.elapsedMs < 2500, `cut after ${result.elapsedMs} ms`);
    });
  });

  test('a body that stalls gets 408 SY_CLIENT_TIMEOUT at the body timeout and the node never gets it complete', async () => {
    await withRouter({ bodyTimeoutMs: 300 }, async (port, backend) => {
      const result = await rawExchange(port, '', {
        timeoutMs: 3000,
        pieces: [[`POST /up HTTP/1.1\r\n${H}Content-Length: 100\r\n\r\n0123456789`, 0]],
      });
      assert.equal(result.responses[0]?.status, 408);
      assert.equal(result.responses[0]?.code, 'SY_CLIENT_TIMEOUT');
      assert.equal(result.responses[0]?.headers.connection, 'close');
      assert.ok(result.elapsedMs >= 250 && result.elapsedMs < 2500, `cut after ${result.elapsedMs} ms`);
      await until(() => backend.heads.length === 1, 500);
      assert.equal(backend.completed().length, 0);
    });
  });

  test('a slow chunked body with a long silence is cut too; other clients are served meanwhile', async () => {
    await withRouter({ bodyTimeoutMs: 300 }, async (port, backend) => {
      const slow = rawExchange(port, '', {
        timeoutMs: 3000,
        pieces: [
          [`POST /up HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`, 100],
          ['3\r\nabc\r\n', 100],
          ['3\r\ndef\r\n', 1500],
          ['0\r\n\r\n', 0],
        ],
      });
      const latencies = await fastLatencies(port, 5);
      const result = await slow;
      assert.equal(result.responses[0]?.code, 'SY_CLIENT_TIMEOUT');
      assert.ok(Math.max(...latencies) < 1000, `fast requests took ${latencies.join(', ')} ms`);
      assert.equal(backend.completed().filter((h) => h.url === '/up').length, 0);
    });
  });

  test('a body that keeps arriving within the idle timeout is never cut, however long it takes', async () => {
    await withRouter({ bodyTimeoutMs: 300 }, async (port, backend) => {
      const pieces = Array.from({ length: 8 }, (_, i) => [`chunk${i}`, 150] as const);
      const result = await rawExchange(port, '', {
        timeoutMs: 5000,
        responses: 1,
        pieces: [[`POST /up HTTP/1.1\r\n${H}Content-Length: 48\r\n\r\n`, 150], ...pieces],
      });
      assert.equal(result.responses[0]?.status, 200);
      assert.ok(result.elapsedMs > 1000);
      assert.equal(backend.completed()[0]?.body.toString(), pieces.map(([p]) => p).join(''));
    });
  });

  test('the body clock stops while the node applies backpressure: a node slow to read is not the client’s fault', async () => {
    const size = 16 * 1024 * 1024;
    let received = 0;
    const node = http.createServer((req, res) => {
      req.pause();
      setTimeout(() => {
        req.on('data', (c: Buffer) => {
          received += c.length;
        });
        req.on('end', () => res.end('ok'));
        req.resume();
      }, 800);
    });
    await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
    const { router, port } = await startRouter({ bodyTimeoutMs: 200 });
    try {
      router.upsertNode(httpNode('app.test', `127.0.0.1:${(node.address() as net.AddressInfo).port}`));
      const head = Buffer.from(`POST /big HTTP/1.1\r\n${H}Content-Length: ${size}\r\n\r\n`);
      const result = await rawExchange(port, Buffer.concat([head, Buffer.alloc(size, 0x61)]), {
        timeoutMs: 10_000,
        responses: 1,
      });
      assert.equal(result.responses[0]?.status, 200);
      assert.ok(result.elapsedMs > 800);
      assert.equal(received, size);
    } finally {
      await router.close();
      node.closeAllConnections();
      node.close();
    }
  });

  test('a client that stops reading a large response holds the node back: the router buffers a bounded amount', async () => {
    const size = 128 * 1024 * 1024;
    let written = 0;
    const node = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Length': String(size) });
      const chunk = Buffer.alloc(64 * 1024, 0x62);
      const pump = () => {
        while (written < size) {
          written += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
    const { router, port } = await startRouter();
    try {
      router.upsertNode(httpNode('app.test', `127.0.0.1:${(node.address() as net.AddressInfo).port}`));
      const socket = net.connect(port, '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      socket.write(`GET /big HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
      let received = 0;
      let reading = false;
      socket.on('data', (c: Buffer) => {
        received += c.length;
        // Read the head, then stop reading until told to.
        if (!reading) socket.pause();
      });
      await new Promise((r) => setTimeout(r, 1000));
      const stalled = written;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(written, stalled, 'the node is held back while the client does not read');
      // Socket buffers on each hop (client, router, node) plus the router's stream buffers: a few MiB.
      assert.ok(
        stalled < 32 * 1024 * 1024,
        `the node wrote ${stalled} bytes of ${size} to a client that reads nothing`,
      );
      const done = new Promise<void>((r) => socket.once('close', () => r()));
      reading = true;
      socket.resume();
      await done;
      assert.ok(received > size, `the whole response arrives once the client reads (${received} bytes)`);
    } finally {
      await router.close();
      node.closeAllConnections();
      node.close();
    }
  });

  test('an idle keep-alive connection is closed at the keep-alive timeout, without a response', async () => {
    await withRouter({ keepAliveTimeoutMs: 300 }, async (port) => {
      const result = await rawExchange(port, `GET / HTTP/1.1\r\n${H}\r\n`, { timeoutMs: 3000 });
      assert.deepEqual(
        result.responses.map((r) => r.status),
        [200],
      );
      assert.equal(result.ending, 'end');
      assert.ok(result.elapsedMs >= 250 && result.elapsedMs < 2500, `closed after ${result.elapsedMs} ms`);
    });
  });
});

describe('body size', () => {
  test('a Content-Length over --max-body-size gets 413 SY_BODY_TOO_LARGE before anything is sent to the node', async () => {
    await withRouter({ maxBodySize: 1000 }, async (port, backend) => {
      const result = await rawExchange(port, `POST / HTTP/1.1\r\n${H}Content-Length: 1001\r\n\r\n`, { responses: 1 });
      assert.equal(result.responses[0]?.status, 413);
      assert.equal(result.responses[0]?.code, 'SY_BODY_TOO_LARGE');
      assert.equal(result.responses[0]?.headers.connection, 'close');
      const ok = await rawExchange(
        port,
        `POST / HTTP/1.1\r\n${H}Content-Length: 1000\r\nConnection: close\r\n\r\n${'a'.repeat(1000)}`,
      );
      assert.equal(ok.responses[0]?.status, 200);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(backend.heads.length, 1);
    });
  });

  test('Expect: 100-continue over the limit gets 413 and no 100 Continue; within it, 100 Continue then the response', async () => {
    await withRouter({ maxBodySize: 1000 }, async (port, backend) => {
      const refused = await rawExchange(
        port,
        `POST / HTTP/1.1\r\n${H}Content-Length: 5000\r\nExpect: 100-continue\r\n\r\n`,
        {
          responses: 1,
        },
      );
      assert.deepEqual(
        refused.responses.map((r) => [r.status, r.code]),
        [[413, 'SY_BODY_TOO_LARGE']],
      );
      const accepted = await rawExchange(port, '', {
        responses: 2,
        pieces: [
          [`POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nExpect: 100-continue\r\n\r\n`, 100],
          ['hello', 0],
        ],
      });
      assert.deepEqual(
        accepted.responses.map((r) => r.status),
        [100, 200],
      );
      assert.equal(backend.heads.length, 1);
      assert.equal(backend.heads[0]!.body.toString(), 'hello');
    });
  });

  test('a chunked body going over the limit gets 413 while it streams; the node never gets it complete', async () => {
    await withRouter({ maxBodySize: 10_000 }, async (port, backend) => {
      const chunk = `1000\r\n${'b'.repeat(4096)}\r\n`;
      const result = await rawExchange(
        port,
        `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${chunk.repeat(4)}0\r\n\r\n`,
        {
          timeoutMs: 3000,
        },
      );
      assert.equal(result.responses[0]?.status, 413);
      assert.equal(result.responses[0]?.code, 'SY_BODY_TOO_LARGE');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(backend.completed().length, 0);
    });
  });
});

describe('connection limit', () => {
  test('connections over --max-connections get 503 SY_TOO_MANY_CONNECTIONS with Retry-After and are closed', async () => {
    await withRouter({ maxConnections: 3 }, async (port, backend) => {
      const held: net.Socket[] = [];
      for (let i = 0; i < 3; i++) {
        const socket = net.connect(port, '127.0.0.1');
        await new Promise((r) => socket.once('connect', r));
        held.push(socket);
      }
      await new Promise((r) => setTimeout(r, 50));
      const refused = await rawExchange(port, `GET /over HTTP/1.1\r\n${H}\r\n`);
      assert.equal(refused.responses[0]?.status, 503);
      assert.equal(refused.responses[0]?.code, 'SY_TOO_MANY_CONNECTIONS');
      assert.equal(refused.responses[0]?.headers['retry-after'], '1');
      assert.notEqual(refused.ending, 'timeout');
      held.pop()!.destroy();
      await new Promise((r) => setTimeout(r, 50));
      const served = await rawExchange(port, `GET /ok HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
      assert.equal(served.responses[0]?.status, 200);
      for (const s of held) s.destroy();
      assert.deepEqual(
        backend.heads.map((h) => h.url),
        ['/ok'],
      );
    });
  });
});

describe('limit configuration', () => {
  test('defaults are documented values and invalid limits are a SY_BAD_CONFIG', () => {
    assert.deepEqual(resolveClientLimits({}), CLIENT_LIMIT_DEFAULTS);
    assert.equal(CLIENT_LIMIT_DEFAULTS.maxUriLength, 8192);
    assert.throws(() => resolveClientLimits({ maxHeaderCount: 0 }), { code: 'SY_BAD_CONFIG' });
    assert.throws(() => resolveClientLimits({ bodyTimeoutMs: -1 }), { code: 'SY_BAD_CONFIG' });
    assert.throws(() => resolveClientLimits({ maxBodySize: 1.5 }), { code: 'SY_BAD_CONFIG' });
    assert.throws(() => resolveClientLimits({ headersTimeoutMs: 5000, requestTimeoutMs: 1000 }), {
      code: 'SY_BAD_CONFIG',
    });
    assert.equal(resolveClientLimits({ maxBodySize: 0, maxConnections: 0 }).maxBodySize, 0);
  });

  test('a whole-request timeout, when configured, cuts a request whose body never ends', async () => {
    await withRouter({ headersTimeoutMs: 200, requestTimeoutMs: 400, bodyTimeoutMs: 0 }, async (port) => {
      const result = await rawExchange(port, '', {
        timeoutMs: 3000,
        pieces: [
          [`POST / HTTP/1.1\r\n${H}Content-Length: 1000\r\n\r\n`, 100],
          ...Array.from({ length: 29 }, () => ['x', 100] as const),
        ],
      });
      assert.equal(result.responses[0]?.code, 'SY_CLIENT_TIMEOUT');
      assert.ok(result.elapsedMs < 2500, `cut after ${result.elapsedMs} ms`);
    });
  });

  test('http.get through the router still works with every limit at its default', async () => {
    await withRouter({}, async (port) => {
      const status = await new Promise<number>((resolve, reject) => {
        http
          .get({ port, host: '127.0.0.1', headers: { host: 'app.test' }, agent: false }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
          .on('error', reject);
      });
      assert.equal(status, 200);
    });
  });
});
