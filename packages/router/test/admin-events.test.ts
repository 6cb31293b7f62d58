import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { EVENTS_SUBPROTOCOL, EventLog } from '../src/index.js';
import { ADMIN_TOKEN, type AdminRig, call, startAdminRig } from './admin-support.js';

/** Opens the event stream and collects messages until `count` arrived (or 3 s passed). */
function stream(
  port: number,
  query: string,
  count: number,
  options: { token?: string; protocols?: string[] } = {},
): { opened: Promise<void>; messages: Promise<Record<string, unknown>[]>; socket: WebSocket } {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/events${query}`, options.protocols ?? [], {
    headers: options.token === undefined ? {} : { authorization: `Bearer ${options.token}` },
  });
  const received: Record<string, unknown>[] = [];
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  const messages = new Promise<Record<string, unknown>[]>((resolve) => {
    const timer = setTimeout(() => {
      socket.terminate();
      resolve(received);
    }, 3000);
    socket.on('message', (data) => {
      received.push(JSON.parse(String(data)) as Record<string, unknown>);
      if (received.length >= count) {
        clearTimeout(timer);
        socket.close();
        resolve(received);
      }
    });
  });
  return { opened, messages, socket };
}

describe('GET /v1/events', () => {
  let rig: AdminRig;
  before(async () => {
    rig = await startAdminRig();
  });
  after(async () => {
    await rig.close();
  });

  test('streams live events over a WebSocket, filtered by host', async () => {
    const events = rig.router.ops.events;
    const s = stream(rig.adminPort, '?host=live.test', 2);
    await s.opened;
    events.record({ type: 'added', host: 'other.test', node: '127.0.0.1:1', source: 'subscription' });
    events.record({ type: 'added', host: 'live.test', node: '127.0.0.1:2', source: 'subscription' });
    events.record({ type: 'draining', host: 'live.test', node: '127.0.0.1:2', source: 'admin' });
    const got = await s.messages;
    assert.deepEqual(
      got.map((e) => [e.type, e.host, e.node]),
      [
        ['added', 'live.test', '127.0.0.1:2'],
        ['draining', 'live.test', '127.0.0.1:2'],
      ],
    );
    assert.ok((got[1]!.seq as number) > (got[0]!.seq as number));
  });

  test('resumes from a sequence number: the missed events first, then live ones, none twice', async () => {
    const events = rig.router.ops.events;
    const base = events.last;
    events.record({ type: 'added', host: 'resume.test', node: 'n1' });
    events.record({ type: 'added', host: 'resume.test', node: 'n2' });
    const s = stream(rig.adminPort, `?since=${base + 1}`, 2);
    await s.opened;
    events.record({ type: 'removed', host: 'resume.test', node: 'n1' });
    const got = await s.messages;
    assert.deepEqual(
      got.map((e) => [e.seq, e.type, e.node]),
      [
        [base + 2, 'added', 'n2'],
        [base + 3, 'removed', 'n1'],
      ],
    );
  });

  test('plain HTTP GET returns the events after since as JSON', async () => {
    const events = rig.router.ops.events;
    const base = events.last;
    events.record({ type: 'policy', host: 'http.test', source: 'admin' });
    const reply = await call(rig.adminPort, 'GET', `/v1/events?since=${base}&host=http.test`);
    assert.equal(reply.status, 200);
    assert.deepEqual(
      reply.body.events.map((e: { type: string }) => e.type),
      ['policy'],
    );
    assert.equal(reply.body.last, base + 1);
    assert.equal(reply.body.truncated, false);
    assert.equal((await call(rig.adminPort, 'GET', '/v1/events?since=-1')).body.error.code, 'SY_INVALID_BODY');
  });

  test('admin writes appear as events', async () => {
    const base = rig.router.ops.events.last;
    await call(rig.adminPort, 'POST', '/v1/vhosts/write.test/nodes', { body: { address: '127.0.0.1:9' } });
    await call(rig.adminPort, 'PATCH', '/v1/vhosts/write.test/nodes/127.0.0.1:9', { body: { state: 'draining' } });
    const reply = await call(rig.adminPort, 'GET', `/v1/events?since=${base}`);
    assert.deepEqual(
      reply.body.events.map((e: { type: string; source: string }) => [e.type, e.source]),
      [
        ['added', 'admin'],
        ['draining', 'admin'],
      ],
    );
  });
});

describe('event stream auth', () => {
  test('the WebSocket needs the token, as a header or as a bearer subprotocol', async () => {
    const rig = await startAdminRig({ tokens: { admin: ADMIN_TOKEN } });
    try {
      const refused = new WebSocket(`ws://127.0.0.1:${rig.adminPort}/v1/events`);
      const status = await new Promise<number>((resolve) => {
        refused.on('unexpected-response', (req, res) => {
          resolve(res.statusCode ?? 0);
          req.destroy();
        });
        refused.on('error', () => resolve(-1));
      });
      assert.equal(status, 401);
      const header = stream(rig.adminPort, '', 1, { token: ADMIN_TOKEN });
      await header.opened;
      rig.router.ops.events.record({ type: 'added', host: 'a.test' });
      assert.equal((await header.messages).length, 1);
      const encoded = Buffer.from(ADMIN_TOKEN).toString('base64url');
      const sub = stream(rig.adminPort, '', 1, { protocols: [EVENTS_SUBPROTOCOL, `bearer.${encoded}`] });
      await sub.opened;
      assert.equal(sub.socket.protocol, EVENTS_SUBPROTOCOL);
      rig.router.ops.events.record({ type: 'added', host: 'b.test' });
      assert.equal((await sub.messages)[0]!.host, 'b.test');
    } finally {
      await rig.close();
    }
  });
});

describe('EventLog', () => {
  test('keeps a bounded ring and reports when a resume point was dropped', () => {
    const log = new EventLog({ capacity: 3 });
    for (let i = 0; i < 5; i++) log.record({ type: 'added', host: `h${i}` });
    const replay = log.since(0);
    assert.equal(replay.truncated, true);
    assert.equal(replay.oldest, 3);
    assert.deepEqual(
      replay.events.map((e) => e.seq),
      [3, 4, 5],
    );
    assert.equal(log.since(2).truncated, false);
    assert.deepEqual(
      log.since(4).events.map((e) => e.host),
      ['h4'],
    );
  });

  test('samples refreshes per node and rate-limits rejected packets', () => {
    let now = 0;
    const log = new EventLog({ clock: () => now, refreshSampleMs: 10_000, rejectedPerSecond: 2 });
    assert.ok(log.refreshed('h', 'n') !== undefined);
    now = 9_999;
    assert.equal(log.refreshed('h', 'n'), undefined);
    assert.ok(log.refreshed('h', 'other') !== undefined);
    now = 10_000;
    assert.ok(log.refreshed('h', 'n') !== undefined);
    now = 20_000;
    assert.ok(log.rejected('bad-key', 'x', '127.0.0.1:1') !== undefined);
    assert.ok(log.rejected('bad-key', 'x', '127.0.0.1:1') !== undefined);
    assert.equal(log.rejected('bad-key', 'x', '127.0.0.1:1'), undefined);
    assert.equal(log.rejected('bad-key', 'x', '127.0.0.1:1'), undefined);
    now = 21_000;
    assert.equal(log.rejected('bad-key', 'x', '127.0.0.1:1')?.suppressed, 2);
  });
});
