/**
 * Upstream faults, each mapped to what the client sees: before the response head went out, a coded
 * 502 / 504; after it, the client connection is cut so a truncated body can never look complete
 * (no final chunk, fewer bytes than Content-Length). Scripted raw-TCP nodes play each fault.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { describe, test } from 'node:test';
import type { RouterOptions } from '../src/index.js';
import { httpNode, refusedPort, startRouter } from './helpers.js';
import { type RawResult, rawExchange, startScriptedNode } from './raw-client.js';

const H = 'Host: app.test\r\n';

/** Runs one request through a router whose only node plays `script` once the request head arrived. */
async function throughScriptedNode(
  script: (socket: net.Socket) => void,
  request = `GET / HTTP/1.1\r\n${H}\r\n`,
  options: Partial<RouterOptions> = {},
): Promise<RawResult> {
  const node = await startScriptedNode((socket, received) => {
    let started = false;
    socket.on('data', () => {
      if (!started && received().includes('\r\n\r\n')) {
        started = true;
        script(socket);
      }
    });
  });
  const { router, port } = await startRouter({ maxAttempts: 1, ...options });
  try {
    router.upsertNode(httpNode('app.test', node.address));
    const result = await rawExchange(port, request, { timeoutMs: 4000, responses: 1 });
    // The router keeps serving afterwards.
    const probe = await rawExchange(port, `GET /probe HTTP/1.1\r\nHost: nowhere.test\r\n\r\n`, { responses: 1 });
    assert.equal(probe.responses[0]?.code, 'SY_NO_VHOST');
    return result;
  } finally {
    await router.close();
    await node.close();
  }
}

function assertCoded(result: RawResult, status: number, code: string): void {
  assert.equal(result.responses.length, 1, result.bytes.toString('latin1'));
  assert.equal(result.responses[0]!.status, status);
  assert.equal(result.responses[0]!.code, code);
}

/** The head went out, then the connection was cut: no complete response can be parsed. */
function assertTruncated(result: RawResult): void {
  assert.equal(result.responses.length, 0, `a complete response was parsed from ${result.bytes.toString('latin1')}`);
  assert.match(result.rest.toString('latin1'), /^HTTP\/1\.1 200 /);
  assert.notEqual(result.ending, 'timeout', 'the router must cut the connection');
}

describe('upstream faults before the response head', () => {
  test('a refused connection is 502 SY_UPSTREAM_CONNECT', async () => {
    const { router, port } = await startRouter();
    try {
      router.upsertNode(httpNode('app.test', `127.0.0.1:${await refusedPort()}`));
      assertCoded(await rawExchange(port, `GET / HTTP/1.1\r\n${H}\r\n`, { responses: 1 }), 502, 'SY_UPSTREAM_CONNECT');
    } finally {
      await router.close();
    }
  });

  test('a node that hangs before its head is 504 SY_UPSTREAM_TIMEOUT at the response-header timeout', async () => {
    const result = await throughScriptedNode(() => {}, undefined, {
      responseHeaderTimeoutMs: 300,
      upstreamTimeoutMs: 10_000,
    });
    assertCoded(result, 504, 'SY_UPSTREAM_TIMEOUT');
    assert.ok(result.elapsedMs >= 250 && result.elapsedMs < 2000, `after ${result.elapsedMs} ms`);
  });

  test('the response-header timeout starts once the request body is sent, not at dispatch', async () => {
    const result = await throughScriptedNode(
      (socket) => setTimeout(() => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 600),
      `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\n`,
      { responseHeaderTimeoutMs: 300 },
    ).catch((error: unknown) => error);
    // The client never sends its 5 body bytes and the node answers after 600 ms: no 504 at 300 ms.
    assert.ok(!(result instanceof Error));
    assert.equal((result as RawResult).responses[0]?.status, 200);
    assert.ok((result as RawResult).elapsedMs >= 550);
  });

  test('a 100 Continue followed by silence is still a response-header timeout', async () => {
    const result = await throughScriptedNode((socket) => socket.write('HTTP/1.1 100 Continue\r\n\r\n'), undefined, {
      responseHeaderTimeoutMs: 300,
    });
    assertCoded(result, 504, 'SY_UPSTREAM_TIMEOUT');
  });

  test('a node silent longer than --http-timeout is 504 SY_UPSTREAM_TIMEOUT', async () => {
    const result = await throughScriptedNode(() => {}, undefined, {
      upstreamTimeoutMs: 300,
      responseHeaderTimeoutMs: 0,
    });
    assertCoded(result, 504, 'SY_UPSTREAM_TIMEOUT');
  });

  test('a malformed status line is 502 SY_UPSTREAM_BAD_RESPONSE', async () => {
    assertCoded(
      await throughScriptedNode((s) => s.end('HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n')),
      502,
      'SY_UPSTREAM_BAD_RESPONSE',
    );
    assertCoded(await throughScriptedNode((s) => s.end('garbage\r\n\r\n')), 502, 'SY_UPSTREAM_BAD_RESPONSE');
  });

  test('oversized response headers are 502 SY_UPSTREAM_BAD_RESPONSE', async () => {
    const big = `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(128 * 1024)}\r\nContent-Length: 0\r\n\r\n`;
    assertCoded(await throughScriptedNode((s) => s.end(big)), 502, 'SY_UPSTREAM_BAD_RESPONSE');
  });

  test('Content-Length with Transfer-Encoding from a node is 502 SY_UPSTREAM_BAD_RESPONSE', async () => {
    const both = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n';
    assertCoded(await throughScriptedNode((s) => s.end(both)), 502, 'SY_UPSTREAM_BAD_RESPONSE');
  });

  test('a node that closes without answering is 502 SY_UPSTREAM_RESET', async () => {
    assertCoded(await throughScriptedNode((s) => s.end()), 502, 'SY_UPSTREAM_RESET');
    assertCoded(
      await throughScriptedNode((s) => s.end(), `POST / HTTP/1.1\r\n${H}Content-Length: 2\r\n\r\nhi`),
      502,
      'SY_UPSTREAM_RESET',
    );
  });

  test('a node that resets without answering is 502 SY_UPSTREAM_RESET', async () => {
    assertCoded(await throughScriptedNode((s) => s.resetAndDestroy()), 502, 'SY_UPSTREAM_RESET');
  });

  test('a partial head then close is 502, never a response', async () => {
    const result = await throughScriptedNode((s) => s.end('HTTP/1.1 200 OK\r\nContent-Le'));
    assert.equal(result.responses[0]?.status, 502);
    assert.match(result.responses[0]?.code ?? '', /^SY_UPSTREAM_(RESET|BAD_RESPONSE)$/);
  });
});

describe('upstream faults after the response head', () => {
  test('a reset mid-body cuts the client connection: the truncated body cannot look complete', async () => {
    const result = await throughScriptedNode((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789');
      setTimeout(() => s.resetAndDestroy(), 50);
    });
    assertTruncated(result);
    assert.equal(result.rest.toString('latin1').split('\r\n\r\n')[1], '0123456789');
  });

  test('a short Content-Length body followed by a clean close cuts the client connection', async () => {
    const result = await throughScriptedNode((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789');
      setTimeout(() => s.end(), 50);
    });
    assertTruncated(result);
  });

  test('a chunked body without its last chunk cuts the client connection (no 0 chunk is invented)', async () => {
    const result = await throughScriptedNode((s) => {
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      setTimeout(() => s.end(), 50);
    });
    assertTruncated(result);
    assert.doesNotMatch(result.rest.toString('latin1'), /\r\n0\r\n\r\n$/);
  });

  test('a node silent mid-body past --http-timeout cuts the client connection', async () => {
    const result = await throughScriptedNode(
      (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123'),
      undefined,
      {
        upstreamTimeoutMs: 300,
      },
    );
    assertTruncated(result);
    assert.ok(result.elapsedMs < 2000);
  });

  test('informational 1xx heads are consumed and the final response reaches the client', async () => {
    const result = await throughScriptedNode((s) =>
      s.end(
        'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
      ),
    );
    assert.deepEqual(
      result.responses.map((r) => [r.status, r.body.toString()]),
      [[200, 'ok']],
    );
  });

  test('a close-delimited body is complete at EOF and re-framed for the client', async () => {
    const result = await throughScriptedNode((s) => s.end('HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil-eof'));
    assert.equal(result.responses.length, 1);
    assert.equal(result.responses[0]!.body.toString(), 'until-eof');
  });
});
