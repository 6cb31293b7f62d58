/**
 * RawStream (raw-stream.ts): a node connection on the bare libuv handle, over real sockets on loopback
 * (TCP on 127.0.0.1 and ::1, and a unix socket). The events are recorded in order, so each test checks the
 * contract: what arrives, in which order, and that nothing arrives after destroy().
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { RawStream, type RawStreamEvents, rawStreamReaches, rawStreamsAvailable } from '../src/raw-stream.js';
import type { UpstreamTarget } from '../src/vhost-table.js';

interface Recorder {
  readonly log: string[];
  readonly chunks: Buffer[];
  errorCode?: string | undefined;
  onEvent?: ((name: string) => void) | undefined;
}

const events: RawStreamEvents<Recorder> = {
  connect: (r) => record(r, 'connect'),
  data: (r, chunk) => {
    r.chunks.push(chunk);
    record(r, 'data');
  },
  end: (r) => record(r, 'end'),
  error: (r, error) => {
    r.errorCode = error.code;
    record(r, 'error');
  },
  drain: (r) => record(r, 'drain'),
  close: (r, hadError) => record(r, `close:${hadError}`),
};

function record(r: Recorder, name: string): void {
  // Consecutive data events are folded into one entry: chunking is the kernel's business.
  if (name !== 'data' || r.log.at(-1) !== 'data') r.log.push(name);
  r.onEvent?.(name);
}

function recorder(): Recorder {
  return { log: [], chunks: [] };
}

/** Resolves when `name` has been recorded (bounded: 5 s). */
function until(r: Recorder, name: string): Promise<void> {
  if (r.log.includes(name)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => reject(new Error(`no '${name}' within 5 s (saw ${r.log.join(' ')})`)), 5000);
    const previous = r.onEvent;
    r.onEvent = (event) => {
      previous?.(event);
      if (event === name) {
        clearTimeout(guard);
        resolve();
      }
    };
  });
}

const servers: net.Server[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((resolve) => s.close(() => resolve()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A server on `listen` (port 0 or a path); every accepted socket is handed to `onConnection`. */
async function server(
  onConnection: (socket: net.Socket) => void,
  listen: { host: string } | { path: string } = { host: '127.0.0.1' },
): Promise<UpstreamTarget> {
  const sockets = new Set<net.Socket>();
  const s = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  const close = s.close.bind(s);
  s.close = ((cb?: (err?: Error) => void) => {
    for (const socket of sockets) socket.destroy();
    return close(cb);
  }) as typeof s.close;
  servers.push(s);
  if ('path' in listen) {
    await new Promise<void>((resolve) => s.listen(listen.path, resolve));
    return { kind: 'unix', path: listen.path };
  }
  await new Promise<void>((resolve) => s.listen(0, listen.host, resolve));
  return { kind: 'tcp', host: listen.host, port: (s.address() as net.AddressInfo).port };
}

/** A node answering `reply` to the first bytes it gets, then closing. */
function answering(reply: string): (socket: net.Socket) => void {
  return (socket) => socket.once('data', () => socket.end(reply));
}

describe('RawStream', { skip: !rawStreamsAvailable() && 'this runtime offers no raw stream handles' }, () => {
  test('connects, sends its bytes, and reports data, end and close(false) in order', async () => {
    const target = await server(answering('pong'));
    const r = recorder();
    const stream = new RawStream(target, r, events);
    await until(r, 'connect');
    assert.equal(stream.write(Buffer.from('ping')), true);
    await until(r, 'close:false');
    assert.deepEqual(r.log, ['connect', 'data', 'end', 'close:false']);
    assert.equal(Buffer.concat(r.chunks).toString(), 'pong');
    assert.equal(stream.bytesWritten, 4);
    assert.equal(stream.bytesRead, 4);
    assert.equal(stream.destroyed, true);
  });

  test('a refused connect reports ECONNREFUSED and close(true), never from inside the constructor', async () => {
    const target = await server(() => {});
    await new Promise<void>((resolve) => servers.pop()!.close(() => resolve()));
    const r = recorder();
    new RawStream(target, r, events);
    assert.deepEqual(r.log, [], 'nothing is delivered before the constructor returns');
    await until(r, 'close:true');
    assert.deepEqual(r.log, ['error', 'close:true']);
    assert.equal(r.errorCode, 'ECONNREFUSED');
  });

  test('destroy() while connecting cancels the connect: close(false) and nothing else', async () => {
    const target = await server(answering('never read'));
    const r = recorder();
    const stream = new RawStream(target, r, events);
    stream.destroy();
    stream.destroy();
    assert.equal(stream.write('late'), false);
    await until(r, 'close:false');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(r.log, ['close:false']);
  });

  test('bytes written before connect are sent once connected', async () => {
    let received = '';
    const target = await server((socket) => {
      socket.on('data', (chunk) => {
        received += chunk.toString();
        if (received.length >= 6) socket.end('ok');
      });
    });
    const r = recorder();
    const stream = new RawStream(target, r, events);
    stream.write('abc');
    stream.write('def', 'latin1');
    await until(r, 'close:false');
    assert.equal(received, 'abcdef');
    assert.equal(Buffer.concat(r.chunks).toString(), 'ok');
  });

  test('write returns false above the high-water mark, and drain follows once the node reads', async () => {
    let peer: net.Socket | undefined;
    const hash = createHash('sha256');
    let received = 0;
    const total = 8 * 1024 * 1024;
    const target = await server((socket) => {
      peer = socket;
      socket.pause();
      socket.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        received += chunk.length;
        if (received === total) socket.end();
      });
    });
    const r = recorder();
    const stream = new RawStream(target, r, events);
    await until(r, 'connect');
    const sent = createHash('sha256');
    let written = 0;
    let accepted = true;
    while (accepted && written < total) {
      const chunk = Buffer.alloc(64 * 1024, written / 1024);
      sent.update(chunk);
      written += chunk.length;
      accepted = stream.write(chunk);
    }
    assert.equal(accepted, false, 'a node that reads nothing pushes back before 8 MiB');
    assert.ok(!r.log.includes('drain'));
    peer!.resume();
    await until(r, 'drain');
    while (written < total) {
      const chunk = Buffer.alloc(64 * 1024, written / 1024);
      sent.update(chunk);
      written += chunk.length;
      if (!stream.write(chunk)) await until(r, 'drain').then(() => r.log.splice(r.log.indexOf('drain'), 1));
    }
    await until(r, 'close:false');
    assert.equal(received, total);
    assert.equal(hash.digest('hex'), sent.digest('hex'));
  });

  test('pause() stops data delivery until resume()', async () => {
    let peer: net.Socket | undefined;
    const target = await server((socket) => {
      peer = socket;
      socket.write('first');
    });
    const r = recorder();
    const stream = new RawStream(target, r, events);
    await until(r, 'data');
    stream.pause();
    peer!.end('second');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(r.log, ['connect', 'data'], 'nothing is delivered while paused');
    stream.resume();
    await until(r, 'close:false');
    assert.equal(Buffer.concat(r.chunks).toString(), 'firstsecond');
  });

  test('a reset by the node reports ECONNRESET and close(true)', async () => {
    const target = await server((socket) => socket.once('data', () => socket.resetAndDestroy()));
    const r = recorder();
    const stream = new RawStream(target, r, events);
    await until(r, 'connect');
    stream.write('x');
    await until(r, 'close:true');
    assert.equal(r.errorCode, 'ECONNRESET');
    assert.deepEqual(r.log, ['connect', 'error', 'close:true']);
  });

  test('reaches a unix socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-raw-'));
    dirs.push(dir);
    const target = await server(answering('over unix'), { path: join(dir, 'node.sock') });
    const r = recorder();
    const stream = new RawStream(target, r, events);
    stream.write('hi');
    await until(r, 'close:false');
    assert.equal(Buffer.concat(r.chunks).toString(), 'over unix');
  });

  test('reaches an IPv6 loopback node', async (t) => {
    let target: UpstreamTarget;
    try {
      target = await server(answering('over v6'), { host: '::1' });
    } catch {
      t.skip('no IPv6 loopback here');
      return;
    }
    const r = recorder();
    const stream = new RawStream(target, r, events);
    stream.write('hi');
    await until(r, 'close:false');
    assert.equal(Buffer.concat(r.chunks).toString(), 'over v6');
  });

  test('reaches numeric addresses and unix sockets only (names need DNS: net.Socket)', () => {
    assert.equal(rawStreamReaches({ kind: 'tcp', host: '127.0.0.1', port: 1 }), true);
    assert.equal(rawStreamReaches({ kind: 'tcp', host: '::1', port: 1 }), true);
    assert.equal(rawStreamReaches({ kind: 'unix', path: '/tmp/x.sock' }), true);
    assert.equal(rawStreamReaches({ kind: 'tcp', host: 'localhost', port: 1 }), false);
  });
});
