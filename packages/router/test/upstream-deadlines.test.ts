/**
 * Upstream timeouts as deadlines checked by a shared sweeper (upstream-deadlines.ts), and closed upstream
 * sockets reused for the next connection (socket-recycler.ts): the sweeper with an injected clock and
 * timer, then real sockets on 127.0.0.1 (short real timeouts, bounded).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, describe, test } from 'node:test';
import type { UpstreamError } from '../src/errors.js';
import type { ResponseHead } from '../src/response-parser.js';
import { UpstreamConnection, type UpstreamPhase, type UpstreamSink } from '../src/upstream-connection.js';
import { type DeadlineTarget, UpstreamDeadlines } from '../src/upstream-deadlines.js';
import { UpstreamPool } from '../src/upstream-pool.js';
import type { UpstreamTarget } from '../src/vhost-table.js';

/** A manual clock and timer: `advance(ms)` moves time and runs the armed timer when it is due. */
function manual() {
  let now = 0;
  let timer: { fn: () => void; at: number } | undefined;
  let armed = 0;
  const deadlines = new UpstreamDeadlines({
    clock: () => now,
    setTimer: (fn, ms) => {
      armed++;
      timer = { fn, at: now + ms };
      return timer;
    },
    clearTimer: (t) => {
      if (timer === t) timer = undefined;
    },
  });
  return {
    deadlines,
    armedCount: () => armed,
    advance(ms: number): void {
      const end = now + ms;
      while (timer !== undefined && timer.at <= end) {
        now = timer.at;
        const { fn } = timer;
        timer = undefined;
        fn();
      }
      now = end;
    },
    now: () => now,
  };
}

class Target implements DeadlineTarget {
  deadline: number;
  readonly slack: number;
  fired: number[] = [];
  constructor(deadline: number, slack: number) {
    this.deadline = deadline;
    this.slack = slack;
  }
  onDeadline(now: number): void {
    this.fired.push(now);
    this.deadline = Number.POSITIVE_INFINITY;
  }
}

describe('upstream deadline sweeper', () => {
  test('a deadline fires within its slack after it passes, not before', () => {
    const m = manual();
    const t = new Target(1000, m.deadlines.precisionFor(1000));
    m.deadlines.schedule(t);
    m.advance(999);
    assert.deepEqual(t.fired, []);
    m.advance(251);
    assert.equal(t.fired.length, 1);
    assert.ok(t.fired[0]! >= 1000 && t.fired[0]! <= 1000 + 250, `fired at ${t.fired[0]}`);
  });

  test('the precision is a quarter of the timeout, at most 250 ms and at least 1 ms', () => {
    const { deadlines } = manual();
    assert.equal(deadlines.precisionFor(60_000), 250);
    assert.equal(deadlines.precisionFor(300), 75);
    assert.equal(deadlines.precisionFor(2), 1);
  });

  test('moving a deadline later defers it without re-arming the timer', () => {
    const m = manual();
    const t = new Target(1000, 250);
    m.deadlines.schedule(t);
    const armed = m.armedCount();
    m.advance(900);
    t.deadline = 3000; // activity: a field write only
    m.advance(1000);
    assert.deepEqual(t.fired, [], 'the sweep found the moved deadline in the future');
    m.advance(1350);
    assert.equal(t.fired.length, 1);
    assert.ok(t.fired[0]! >= 3000 && t.fired[0]! <= 3250);
    assert.ok(m.armedCount() - armed <= 2, 'one re-arm per sweep, none per move');
  });

  test('an earlier deadline re-arms the timer so it still fires within its slack', () => {
    const m = manual();
    const late = new Target(60_000, 250);
    m.deadlines.schedule(late);
    const early = new Target(100, 25);
    m.deadlines.schedule(early);
    m.advance(125);
    assert.equal(early.fired.length, 1);
    assert.ok(early.fired[0]! >= 100 && early.fired[0]! <= 125);
    assert.deepEqual(late.fired, []);
  });

  test('a removed target never fires and an empty sweeper arms no timer', () => {
    const m = manual();
    const t = new Target(100, 25);
    m.deadlines.schedule(t);
    m.deadlines.remove(t);
    m.advance(1000);
    assert.deepEqual(t.fired, []);
    assert.equal(m.deadlines.size, 0);
    const armed = m.armedCount();
    m.advance(10_000);
    assert.equal(m.armedCount(), armed);
  });

  test('many deadlines within one slack window are handled by one sweep', () => {
    const m = manual();
    const targets = Array.from({ length: 100 }, (_, i) => new Target(1000 + i, 250));
    for (const t of targets) m.deadlines.schedule(t);
    const sweeps = m.deadlines.sweeps;
    m.advance(1400);
    assert.ok(targets.every((t) => t.fired.length === 1));
    assert.ok(m.deadlines.sweeps - sweeps <= 2, `${m.deadlines.sweeps - sweeps} sweeps`);
  });
});

/** A scripted node on 127.0.0.1 port 0; `onConnection` scripts each accepted socket. */
async function node(
  onConnection: (socket: net.Socket) => void,
): Promise<{ target: UpstreamTarget; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    target: { kind: 'tcp', host: '127.0.0.1', port },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

interface Outcome {
  readonly head?: ResponseHead;
  readonly body: string;
  readonly error?: { code: string; phase: UpstreamPhase };
  readonly elapsedMs: number;
}

/** Runs one exchange: writes `request` once ready, collects the response or the error (bounded: 5 s). */
function exchange(connection: UpstreamConnection, request: string, written = true): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let head: ResponseHead | undefined;
    let body = '';
    const guard = setTimeout(() => reject(new Error('exchange did not end within 5 s')), 5000);
    const done = (outcome: Omit<Outcome, 'elapsedMs'>) => {
      clearTimeout(guard);
      resolve({ ...outcome, elapsedMs: performance.now() - started });
    };
    const sink: UpstreamSink = {
      onUpstreamReady(c) {
        c.write(request, 'latin1');
        if (written) c.requestWritten();
      },
      onUpstreamHead(h) {
        head = h;
      },
      onUpstreamBody(chunk) {
        body += chunk.toString('latin1');
      },
      onUpstreamComplete() {
        connection.destroy();
        done({ ...(head === undefined ? {} : { head }), body });
      },
      onUpstreamError(error: UpstreamError, phase) {
        done({ body, error: { code: error.code, phase } });
      },
      onUpstreamDrain() {},
    };
    connection.attach(sink, 'GET');
  });
}

describe('upstream connection deadlines and socket reuse over real sockets', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  test('a silent node fails the exchange with SY_UPSTREAM_TIMEOUT after the idle timeout', async () => {
    const n = await node(() => {});
    cleanups.push(n.close);
    const c = UpstreamConnection.open('n', n.target, { connectMs: 1000, idleMs: 120 });
    const outcome = await exchange(c, 'GET / HTTP/1.1\r\n\r\n', false);
    assert.deepEqual(outcome.error, { code: 'SY_UPSTREAM_TIMEOUT', phase: 'request' });
    assert.ok(outcome.elapsedMs >= 110 && outcome.elapsedMs < 1500, `after ${outcome.elapsedMs} ms`);
  });

  test('bytes that keep arriving hold off the idle timeout', async () => {
    const n = await node((s) => {
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
        let sent = 0;
        const drip = setInterval(() => {
          s.write('x');
          if (++sent === 5) clearInterval(drip);
        }, 60);
        s.on('close', () => clearInterval(drip));
      });
    });
    cleanups.push(n.close);
    const c = UpstreamConnection.open('n', n.target, { connectMs: 1000, idleMs: 150 });
    const outcome = await exchange(c, 'GET / HTTP/1.1\r\n\r\n');
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.body, 'xxxxx');
    assert.ok(outcome.elapsedMs >= 250, 'the exchange outlived one idle timeout');
  });

  test('a node that sends no head fails at the response-header timeout even when idle is long', async () => {
    const n = await node(() => {});
    cleanups.push(n.close);
    const c = UpstreamConnection.open('n', n.target, { connectMs: 1000, idleMs: 10_000, responseHeaderMs: 120 });
    const outcome = await exchange(c, 'GET / HTTP/1.1\r\n\r\n');
    assert.deepEqual(outcome.error, { code: 'SY_UPSTREAM_TIMEOUT', phase: 'request' });
    assert.ok(outcome.elapsedMs >= 110 && outcome.elapsedMs < 1500, `after ${outcome.elapsedMs} ms`);
  });

  test('a refused connect fails in phase connect with SY_UPSTREAM_CONNECT, retryable', async () => {
    const n = await node(() => {});
    await n.close();
    const c = UpstreamConnection.open('n', n.target, { connectMs: 1000, idleMs: 1000 });
    let retryable: boolean | undefined;
    const outcome = await new Promise<Outcome>((resolve) => {
      c.attach(
        {
          onUpstreamReady: () => resolve({ body: 'connected?', elapsedMs: 0 }),
          onUpstreamHead: () => {},
          onUpstreamBody: () => {},
          onUpstreamComplete: () => {},
          onUpstreamError: (error, phase) => {
            retryable = error.retryable;
            resolve({ body: '', error: { code: error.code, phase }, elapsedMs: 0 });
          },
          onUpstreamDrain: () => {},
        },
        'GET',
      );
    });
    assert.deepEqual(outcome.error, { code: 'SY_UPSTREAM_CONNECT', phase: 'connect' });
    assert.equal(retryable, true);
    assert.equal(c.destroyed, true);
  });

  test("a response without Content-Length ends at the node's close, and the byte counters match", async () => {
    const n = await node((s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\n\r\nuntil-close')));
    cleanups.push(n.close);
    const c = UpstreamConnection.open('n', n.target, { connectMs: 1000, idleMs: 1000 });
    const outcome = await exchange(c, 'GET / HTTP/1.1\r\n\r\n');
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.head?.statusCode, 200);
    assert.equal(outcome.body, 'until-close');
    assert.equal(c.socket.bytesWritten, 'GET / HTTP/1.1\r\n\r\n'.length);
    assert.equal(c.socket.bytesRead, 'HTTP/1.1 200 OK\r\n\r\nuntil-close'.length);
  });

  test('a node closing without a response is SY_UPSTREAM_RESET in phase request', async () => {
    const n = await node((s) => s.once('data', () => s.end()));
    cleanups.push(n.close);
    const c = UpstreamConnection.open('n', n.target, { connectMs: 1000, idleMs: 1000 });
    const outcome = await exchange(c, 'GET / HTTP/1.1\r\n\r\n');
    assert.deepEqual(outcome.error, { code: 'SY_UPSTREAM_RESET', phase: 'request' });
  });

  test('a node closing mid-body is SY_UPSTREAM_RESET in phase response', async () => {
    const n = await node((s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')));
    cleanups.push(n.close);
    const c = UpstreamConnection.open('n', n.target, { connectMs: 1000, idleMs: 1000 });
    const outcome = await exchange(c, 'GET / HTTP/1.1\r\n\r\n');
    assert.deepEqual(outcome.error, { code: 'SY_UPSTREAM_RESET', phase: 'response' });
    assert.equal(outcome.body, 'abc');
  });

  test('a node resetting the connection is SY_UPSTREAM_RESET', async () => {
    const n = await node((s) => s.once('data', () => s.resetAndDestroy()));
    cleanups.push(n.close);
    const c = UpstreamConnection.open('n', n.target, { connectMs: 1000, idleMs: 1000 });
    const outcome = await exchange(c, 'GET / HTTP/1.1\r\n\r\n');
    assert.deepEqual(outcome.error, { code: 'SY_UPSTREAM_RESET', phase: 'request' });
  });

  test('a malformed response is SY_UPSTREAM_BAD_RESPONSE', async () => {
    const n = await node((s) => s.once('data', () => s.end('NOT HTTP AT ALL\r\n\r\n')));
    cleanups.push(n.close);
    const c = UpstreamConnection.open('n', n.target, { connectMs: 1000, idleMs: 1000 });
    const outcome = await exchange(c, 'GET / HTTP/1.1\r\n\r\n');
    assert.equal(outcome.error?.code, 'SY_UPSTREAM_BAD_RESPONSE');
  });

  test('a pooled idle connection is closed after the pool idle timeout', async () => {
    const n = await node((s) => s.on('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')));
    cleanups.push(n.close);
    const pool = new UpstreamPool({ connectMs: 1000, idleMs: 10_000, idleTimeoutMs: 120 });
    const c = pool.acquire('n', n.target);
    await new Promise<void>((resolve, reject) => {
      c.attach(
        {
          onUpstreamReady: (conn) => conn.write('GET / HTTP/1.1\r\n\r\n', 'latin1'),
          onUpstreamHead: () => {},
          onUpstreamBody: () => {},
          onUpstreamComplete: () => {
            pool.release(c);
            resolve();
          },
          onUpstreamError: (error) => reject(error),
          onUpstreamDrain: () => {},
        },
        'GET',
      );
    });
    assert.equal(pool.idleCount('n'), 1);
    const started = performance.now();
    while (pool.idleCount('n') > 0 && performance.now() - started < 2000) await new Promise((r) => setTimeout(r, 10));
    const elapsed = performance.now() - started;
    assert.equal(pool.idleCount('n'), 0);
    assert.ok(elapsed >= 100 && elapsed < 1500, `closed after ${elapsed} ms`);
    pool.close();
  });

  test('a cleanly finished connection lends its socket to the next one, which sees only its own response', async () => {
    let served = 0;
    const n = await node((s) =>
      s.once('data', () => {
        served++;
        s.end(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n${served}${served}`);
      }),
    );
    cleanups.push(n.close);
    const before = UpstreamConnection.recycleStats().reused;
    const sockets = new Set<net.Socket>();
    for (let i = 1; i <= 5; i++) {
      const c = UpstreamConnection.open('n', n.target, { connectMs: 1000, idleMs: 1000 });
      sockets.add(c.socket);
      const outcome = await exchange(c, 'GET / HTTP/1.1\r\n\r\n');
      assert.equal(outcome.body, `${i}${i}`);
      // Let 'close' run so the socket is parked before the next open.
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(UpstreamConnection.recycleStats().reused - before >= 3, 'sockets were reused');
    assert.ok(sockets.size < 5);
  });

  test('a connection destroyed while paused with unread bytes is not reused, and a stale holder cannot touch the socket', async () => {
    const n = await node((s) =>
      s.once('data', () => s.write(`HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n${'a'.repeat(50_000)}`)),
    );
    cleanups.push(n.close);
    const c = UpstreamConnection.open('n', n.target, { connectMs: 1000, idleMs: 1000 });
    await new Promise<void>((resolve) => {
      c.attach(
        {
          onUpstreamReady: (conn) => conn.write('GET / HTTP/1.1\r\n\r\n', 'latin1'),
          onUpstreamHead: () => {},
          onUpstreamBody: () => {
            c.pause();
            resolve();
          },
          onUpstreamComplete: () => {},
          onUpstreamError: () => {},
          onUpstreamDrain: () => {},
        },
        'GET',
      );
    });
    const socket = c.socket;
    await new Promise((r) => setTimeout(r, 30));
    c.destroy();
    await new Promise((r) => setTimeout(r, 20));
    // Closed: the stale connection reports destroyed and its writes go nowhere.
    assert.equal(c.destroyed, true);
    assert.equal(c.write('late bytes'), false);
    // The paused socket was not parked: a new connection never gets it.
    const next = UpstreamConnection.open('n', n.target, { connectMs: 1000, idleMs: 1000 });
    assert.notEqual(next.socket, socket);
    next.destroy();
  });
});
