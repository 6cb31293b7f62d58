import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { encodeSubscription, type SubscriptionCommand } from '@switchyard/protocol';
import { pino } from 'pino';
import {
  DROP_REASONS,
  type DropReason,
  parseBindAddress,
  SubscriptionError,
  SubscriptionRegistry,
  SubscriptionServer,
  type SubscriptionServerOptions,
  type SubscriptionVerifier,
} from '../src/index.js';

const SOURCE = { address: '127.0.0.1', port: 40000 };

function packet(fields: Record<string, string>, command: SubscriptionCommand = 'subscribe'): Buffer {
  return encodeSubscription(command, Object.entries(fields));
}

const GOOD = packet({ key: 'app.test', address: '127.0.0.1:9001' });

/** Polls `condition` every 5 ms; fails after `timeoutMs`. */
async function waitFor(condition: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Captures pino output as parsed objects. */
function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.length > 0) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

const clients: Socket[] = [];
after(async () => {
  await Promise.all(clients.map((c) => new Promise<void>((resolve) => c.close(() => resolve()))));
});

async function send(datagrams: Buffer[], port: number, host = '127.0.0.1', type: 'udp4' | 'udp6' = 'udp4') {
  const client = createSocket(type);
  clients.push(client);
  for (const d of datagrams) {
    await new Promise<void>((resolve, reject) => client.send(d, port, host, (err) => (err ? reject(err) : resolve())));
  }
}

function makeServer(overrides: Partial<SubscriptionServerOptions> = {}) {
  const registry = overrides.registry ?? new SubscriptionRegistry();
  const server = new SubscriptionServer({ binds: ['127.0.0.1:0'], registry, ...overrides });
  return { registry, server };
}

describe('UDP intake', () => {
  test('announcements sent over real UDP reach the registry', async () => {
    const { registry, server } = makeServer();
    await server.start();
    try {
      const [bound] = server.addresses();
      assert.ok(bound !== undefined && bound.port > 0);
      assert.equal(bound.family, 'IPv4');
      await send([GOOD], bound.port);
      await waitFor(() => registry.get('app.test') !== undefined, 'the subscribe');
      await send([packet({ key: 'app.test', address: '127.0.0.1:9001' }, 'unsubscribe')], bound.port);
      await waitFor(() => server.stats().unsubscribes === 1, 'the unsubscribe');
      assert.equal(registry.get('app.test')?.[0]?.state, 'draining');
      const stats = server.stats();
      assert.equal(stats.received, 2);
      assert.equal(stats.accepted, 2);
      assert.equal(stats.subscribes, 1);
    } finally {
      await server.close();
    }
  });

  test('malformed packets are counted by reason and the server keeps serving', async () => {
    const { registry, server } = makeServer();
    await server.start();
    try {
      const port = server.addresses()[0]!.port;
      const wrongModifier = Buffer.from(GOOD);
      wrongModifier[0] = 0;
      const sizeMismatch = Buffer.concat([GOOD, Buffer.from([0])]);
      await send(
        [
          Buffer.from([0xe0, 0x00]),
          wrongModifier,
          sizeMismatch,
          Buffer.concat([GOOD, Buffer.alloc(5000)]),
          packet({ address: '127.0.0.1:9001' }),
          packet({ key: 'app.test', address: 'nowhere' }),
          packet({ key: 'app.test', address: '127.0.0.1:9001', weight: '9999' }),
          packet({ key: 'other.test', address: '127.0.0.1:9001' }, 'unsubscribe'),
          GOOD,
        ],
        port,
      );
      await waitFor(() => registry.get('app.test') !== undefined, 'the valid packet after the bad ones');
      const stats = server.stats();
      assert.equal(stats.received, 9);
      assert.equal(stats.accepted, 1);
      const nonZero = Object.fromEntries(Object.entries(stats.dropped).filter(([, n]) => n > 0));
      assert.deepEqual(nonZero, {
        'truncated-header': 1,
        'wrong-modifier1': 1,
        'size-mismatch': 1,
        'oversized-packet': 1,
        'missing-key': 1,
        'bad-address': 1,
        'bad-field': 1,
        'unknown-node': 1,
      });
    } finally {
      await server.close();
    }
  });

  test('binding an address in use rejects with SY_BIND_FAILED and leaves nothing bound', async () => {
    const busy = createSocket('udp4');
    clients.push(busy);
    await new Promise<void>((resolve) => busy.bind(0, '127.0.0.1', resolve));
    const busyPort = busy.address().port;
    // A free port for the first bind, to check afterwards that it was released.
    const probe = createSocket('udp4');
    await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
    const firstPort = probe.address().port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const binds = [`127.0.0.1:${firstPort}`, `127.0.0.1:${busyPort}`];
    const { server } = makeServer({ binds });
    await assert.rejects(
      server.start(),
      (err: unknown) =>
        err instanceof SubscriptionError &&
        err.code === 'SY_BIND_FAILED' &&
        'address' in err &&
        err.address === `127.0.0.1:${busyPort}`,
    );
    assert.deepEqual(server.addresses(), []);
    const again = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(firstPort, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => again.close(() => resolve()));
    await server.close();
  });

  test('close() twice is safe and start() after close() rejects with SY_CLOSED', async () => {
    const { server } = makeServer();
    await server.start();
    assert.equal(server.addresses().length, 1);
    await Promise.all([server.close(), server.close()]);
    await server.close();
    assert.deepEqual(server.addresses(), []);
    await assert.rejects(
      server.start(),
      (err: unknown) => err instanceof SubscriptionError && err.code === 'SY_CLOSED',
    );
  });

  test('an IPv6 bind on [::1] receives announcements when the machine supports IPv6', async (t) => {
    const probe = createSocket('udp6');
    const supported = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.bind(0, '::1', () => resolve(true));
    });
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    if (!supported) {
      t.skip('no IPv6 loopback on this machine');
      return;
    }
    const { registry, server } = makeServer({ binds: ['[::1]:0', '127.0.0.1:0'] });
    await server.start();
    try {
      const [v6, v4] = server.addresses();
      assert.equal(v6?.family, 'IPv6');
      assert.equal(v6?.address, '::1');
      assert.equal(v4?.family, 'IPv4');
      await send([GOOD], v6!.port, '::1', 'udp6');
      await waitFor(() => registry.get('app.test') !== undefined, 'the subscribe over IPv6');
    } finally {
      await server.close();
    }
  });

  test('the effective receive buffer is logged and a capped one is warned about', async (t) => {
    if (process.platform !== 'linux') {
      t.skip('the cap check relies on Linux SO_RCVBUF reporting');
      return;
    }
    const { logger, lines } = captureLogger();
    const { server } = makeServer({ logger, recvBufferSize: 0x7fff_ffff });
    await server.start();
    await server.close();
    const bound = lines.find((l) => l['level'] === 30 && l['requested'] === 0x7fff_ffff);
    assert.ok(bound !== undefined);
    assert.equal(typeof bound['effective'], 'number');
    assert.ok((bound['effective'] as number) > 0);
    assert.ok(lines.some((l) => l['level'] === 40 && l['requested'] === 0x7fff_ffff));
  });
});

describe('pipeline', () => {
  test('a verifier refusal or throw is counted as rejected-by-verifier and nothing is applied', () => {
    let calls = 0;
    const verifier: SubscriptionVerifier = {
      verify: (_packet, announcement) => {
        calls++;
        if (announcement.key === 'boom.test') throw new Error('verifier bug');
        return announcement.key === 'allowed.test' ? { ok: true } : { ok: false, detail: 'not allowed' };
      },
    };
    const { registry, server } = makeServer({ verifier });
    const refused = server.handleDatagram(GOOD, SOURCE);
    assert.equal(refused.accepted ? 'accepted' : refused.reason, 'rejected-by-verifier');
    server.handleDatagram(packet({ key: 'boom.test', address: '127.0.0.1:1' }), SOURCE);
    const ok = server.handleDatagram(packet({ key: 'allowed.test', address: '127.0.0.1:1' }), SOURCE);
    assert.deepEqual(ok, { accepted: true, change: 'added' });
    assert.equal(calls, 3);
    assert.equal(server.stats().dropped['rejected-by-verifier'], 2);
    assert.deepEqual([...registry.hosts()], ['allowed.test']);
  });

  test('registry limits are counted as drops and existing hosts are unaffected', () => {
    const registry = new SubscriptionRegistry({ maxHosts: 1, maxNodesPerHost: 1 });
    const { server } = makeServer({ registry });
    server.handleDatagram(GOOD, SOURCE);
    server.handleDatagram(packet({ key: 'other.test', address: '127.0.0.1:9001' }), SOURCE);
    server.handleDatagram(packet({ key: 'app.test', address: '127.0.0.1:9002' }), SOURCE);
    assert.deepEqual(server.handleDatagram(GOOD, SOURCE), { accepted: true, change: 'refreshed' });
    const stats = server.stats();
    assert.equal(stats.dropped['too-many-hosts'], 1);
    assert.equal(stats.dropped['too-many-nodes'], 1);
    assert.equal(stats.accepted, 2);
    assert.deepEqual(
      registry.get('app.test')?.map((n) => n.address),
      ['127.0.0.1:9001'],
    );
  });

  test('drop logging is limited to one line per reason per second with a suppressed count', () => {
    const { logger, lines } = captureLogger();
    const clock = { now: 0 };
    const { server } = makeServer({ logger, clock: () => clock.now });
    const truncated = Buffer.from([0xe0]);
    for (let i = 0; i < 100; i++) server.handleDatagram(truncated, SOURCE);
    server.handleDatagram(packet({ address: '127.0.0.1:1' }), SOURCE);
    const drops = () => lines.filter((l) => l['reason'] !== undefined);
    assert.deepEqual(
      drops().map((l) => l['reason']),
      ['truncated-header', 'missing-key'],
    );
    clock.now += 1_000;
    server.handleDatagram(truncated, SOURCE);
    const last = drops().at(-1);
    assert.equal(last?.['reason'], 'truncated-header');
    assert.equal(last?.['suppressed'], 99);
    assert.equal(server.stats().dropped['truncated-header'], 101);
  });

  test('stats list every drop reason, starting at zero', () => {
    const { server } = makeServer();
    const dropped = server.stats().dropped;
    const reasons: DropReason[] = ['truncated-header', 'bad-key', 'unknown-node', 'rejected-by-verifier'];
    for (const reason of reasons) assert.equal(dropped[reason], 0);
    assert.equal(Object.keys(dropped).length, DROP_REASONS.length);
  });

  test('invalid bind addresses are refused at construction with SY_BAD_OPTIONS', () => {
    for (const binds of [[], ['nope'], ['127.0.0.1:70000'], ['[not-v6]:1'], ['::1:80']]) {
      assert.throws(
        () => new SubscriptionServer({ binds, registry: new SubscriptionRegistry() }),
        (err: unknown) => err instanceof SubscriptionError && err.code === 'SY_BAD_OPTIONS',
        JSON.stringify(binds),
      );
    }
  });

  test('bind addresses select udp4 or udp6 from the address', () => {
    assert.equal(parseBindAddress('127.0.0.1:0')?.type, 'udp4');
    assert.equal(parseBindAddress('[::1]:1717')?.type, 'udp6');
    assert.deepEqual(parseBindAddress(':1717'), { text: ':1717', host: '0.0.0.0', port: 1717, type: 'udp4' });
    assert.equal(parseBindAddress('localhost:1717')?.host, 'localhost');
  });
});
