import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { httpNode, startRouter } from './helpers.js';

const EVENTS = 8;
const INTERVAL_MS = 50;

/** Reads an SSE stream through the router; returns the time each `data:` event arrived. */
function readEvents(port: number): Promise<{ received: number[]; contentType: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        host: '127.0.0.1',
        port,
        path: '/events',
        headers: { host: 'app.test', accept: 'text/event-stream' },
        agent: false,
      },
      (res) => {
        const received: number[] = [];
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          let end = text.indexOf('\n\n');
          while (end >= 0) {
            received.push(performance.now());
            text = text.slice(end + 2);
            end = text.indexOf('\n\n');
          }
        });
        res.on('end', () => resolve({ received, contentType: res.headers['content-type'] }));
      },
    );
    req.on('error', reject);
  });
}

describe('streamed responses', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  async function listen(server: net.Server): Promise<number> {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return (server.address() as net.AddressInfo).port;
  }

  test('delivers each server-sent event from an HTTP node before the node sends the next one', async () => {
    const sent: number[] = [];
    const node = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let i = 0;
      const timer = setInterval(() => {
        sent.push(performance.now());
        res.write(`id: ${i}\ndata: event ${i}\n\n`);
        if (++i === EVENTS) {
          clearInterval(timer);
          res.end();
        }
      }, INTERVAL_MS);
    });
    const nodePort = await listen(node);
    const { router: r, port } = await startRouter();
    cleanups.push(() => r.close());
    r.upsertNode(httpNode('app.test', `127.0.0.1:${nodePort}`));
    const { received, contentType } = await readEvents(port);
    assert.equal(contentType, 'text/event-stream');
    assert.equal(received.length, EVENTS);
    for (let i = 0; i + 1 < EVENTS; i++) {
      assert.ok(received[i]! < sent[i + 1]!, `event ${i} arrived before event ${i + 1} was sent`);
    }
  });

  test('delivers each event of a close-delimited uwsgi node stream before the next one', async () => {
    const sent: number[] = [];
    const node = net.createServer((socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n');
        let i = 0;
        const timer = setInterval(() => {
          sent.push(performance.now());
          socket.write(`data: event ${i}\n\n`);
          if (++i === EVENTS) {
            clearInterval(timer);
            socket.end();
          }
        }, INTERVAL_MS);
      });
      socket.on('error', () => undefined);
    });
    const nodePort = await listen(node);
    const { router: r, port } = await startRouter();
    cleanups.push(() => r.close());
    r.upsertNode({ ...httpNode('app.test', `127.0.0.1:${nodePort}`), protocol: 'uwsgi' });
    const { received } = await readEvents(port);
    assert.equal(received.length, EVENTS);
    for (let i = 0; i + 1 < EVENTS; i++) {
      assert.ok(received[i]! < sent[i + 1]!, `event ${i} arrived before event ${i + 1} was sent`);
    }
  });

  test('stops reading from the node while the client reads nothing, and resumes when it reads again', async () => {
    let accepted = 0;
    let stop = false;
    const chunk = Buffer.alloc(64 * 1024, 0x78);
    const node = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const pump = (): void => {
        while (!stop && accepted < 1024 * 1024 * 1024) {
          accepted += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
      res.on('error', () => undefined);
    });
    const nodePort = await listen(node);
    cleanups.push(() => {
      stop = true;
      node.closeAllConnections();
    });
    const { router: r, port } = await startRouter();
    cleanups.push(() => r.close());
    r.upsertNode(httpNode('app.test', `127.0.0.1:${nodePort}`));
    const client = net.connect(port, '127.0.0.1');
    client.write('GET /big HTTP/1.1\r\nHost: app.test\r\n\r\n');
    await once(client, 'data');
    client.pause();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const stalled = accepted;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(accepted, stalled, 'the node is stalled while the client reads nothing');
    assert.ok(stalled < 64 * 1024 * 1024, `the node got ${stalled} bytes accepted`);
    if (process.env.SY_REPORT === '1') console.log(`response stalled after ${stalled} bytes`);
    let read = 0;
    client.on('data', (c: Buffer) => (read += c.length));
    client.resume();
    const deadline = Date.now() + 5000;
    while (accepted < stalled + 8 * 1024 * 1024 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(accepted >= stalled + 8 * 1024 * 1024, 'the node resumes once the client reads');
    assert.ok(read > 1024 * 1024, `the client read ${read} bytes after resuming`);
    stop = true;
    client.destroy();
  });
});
