import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { describe, it } from 'node:test';
import { decodeSubscription, type SubscriptionPacket } from '@switchyard/protocol';
import { type AgentError, type AnnounceOptions, announce, resolveAnnounceOptions } from '../src/index.js';

interface Received {
  readonly packet: SubscriptionPacket;
  readonly at: number;
}

/** A UDP listener on loopback that decodes every datagram; `next()` waits at most `timeoutMs`. */
class Receiver {
  readonly packets: Received[] = [];
  private waiters: Array<() => void> = [];
  private constructor(
    private readonly socket: Socket,
    readonly port: number,
  ) {}

  static async open(host = '127.0.0.1', type: 'udp4' | 'udp6' = 'udp4'): Promise<Receiver> {
    const socket = createSocket(type);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, host, () => resolve());
    });
    const receiver = new Receiver(socket, socket.address().port);
    socket.on('message', (msg) => {
      const decoded = decodeSubscription(msg);
      assert.ok(decoded.ok, 'the agent sent a malformed datagram');
      receiver.packets.push({ packet: decoded.value, at: performance.now() });
      for (const w of receiver.waiters.splice(0)) w();
    });
    return receiver;
  }

  /** Resolves once `count` packets have arrived in total; fails after `timeoutMs`. */
  async waitFor(count: number, timeoutMs = 2000): Promise<Received[]> {
    const deadline = performance.now() + timeoutMs;
    while (this.packets.length < count) {
      const left = deadline - performance.now();
      if (left <= 0) assert.fail(`expected ${count} datagrams within ${timeoutMs} ms, got ${this.packets.length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.packets.slice(0, count);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function fieldList(p: SubscriptionPacket): Array<[string, string]> {
  return [...p.fields.entries()];
}

describe('announce', () => {
  it('sends the first subscribe at once with the pairs in uWSGI order and no proto for uwsgi nodes', async () => {
    const rx = await Receiver.open();
    const started = performance.now();
    const agent = announce({ server: `127.0.0.1:${rx.port}`, key: 'api.example.com:8080', address: '127.0.0.1:3031' });
    try {
      const [first] = await rx.waitFor(1, 1000);
      assert.ok(first!.at - started < 500, 'the first packet must not wait for the interval');
      assert.equal(first!.packet.command, 'subscribe');
      assert.deepEqual(fieldList(first!.packet), [
        ['key', 'api.example.com:8080'],
        ['address', '127.0.0.1:3031'],
        ['modifier1', '0'],
        ['modifier2', '0'],
        ['cores', '0'],
        ['load', '0'],
        ['weight', '1'],
      ]);
      assert.equal(first!.packet.signature, undefined);
    } finally {
      await agent.close();
      await rx.close();
    }
  });

  it('appends proto=http after weight, then the extras in insertion order', async () => {
    const rx = await Receiver.open();
    const agent = announce({
      server: `127.0.0.1:${rx.port}`,
      key: 'app.test',
      address: '10.0.0.5:3000',
      weight: 5,
      proto: 'http',
      modifier1: 5,
      modifier2: 3,
      extra: { backup: '1', algo: 'lrc' },
    });
    try {
      const [first] = await rx.waitFor(1);
      assert.deepEqual(fieldList(first!.packet), [
        ['key', 'app.test'],
        ['address', '10.0.0.5:3000'],
        ['modifier1', '5'],
        ['modifier2', '3'],
        ['cores', '0'],
        ['load', '0'],
        ['weight', '5'],
        ['proto', 'http'],
        ['backup', '1'],
        ['algo', 'lrc'],
      ]);
    } finally {
      await agent.close();
      await rx.close();
    }
  });

  it('refreshes every intervalMs with identical subscribe packets', async () => {
    const rx = await Receiver.open();
    const agent = announce({
      server: `127.0.0.1:${rx.port}`,
      key: 'app.test',
      address: '127.0.0.1:3000',
      intervalMs: 50,
    });
    try {
      const got = await rx.waitFor(4, 3000);
      assert.ok(got.every((r) => r.packet.command === 'subscribe'));
      assert.ok(got.every((r) => r.packet.raw.equals(got[0]!.packet.raw)));
      // Three intervals separate packets 1 and 4 (timer jitter only ever delays them).
      assert.ok(got[3]!.at - got[0]!.at >= 3 * 50 * 0.8, 'refreshes came faster than the interval');
      assert.ok(agent.sent >= 4);
      assert.equal(agent.failed, 0);
    } finally {
      await agent.close();
      await rx.close();
    }
  });

  it('close sends exactly one unsubscribe as the last datagram and is safe to call twice', async () => {
    const rx = await Receiver.open();
    const agent = announce({
      server: `127.0.0.1:${rx.port}`,
      key: 'app.test',
      address: '127.0.0.1:3000',
      intervalMs: 30,
    });
    await rx.waitFor(2);
    const both = Promise.all([agent.close(), agent.close()]);
    await both;
    await agent.close();
    const countAtClose = agent.sent;
    await sleep(150); // several intervals: a leaked timer would send more
    try {
      const unsubscribes = rx.packets.filter((r) => r.packet.command === 'unsubscribe');
      assert.equal(unsubscribes.length, 1);
      assert.equal(rx.packets.at(-1)!.packet.command, 'unsubscribe');
      assert.equal(rx.packets.length, countAtClose);
      assert.equal(agent.sent, countAtClose);
      // Same pairs as the subscribe; only the header command byte differs.
      const sub = rx.packets[0]!.packet.raw;
      const unsub = unsubscribes[0]!.packet.raw;
      assert.equal(unsub[3], 1);
      assert.deepEqual(unsub.subarray(4), sub.subarray(4));
    } finally {
      await rx.close();
    }
  });

  it('announceNow sends a subscribe immediately and rejects with SY_AGENT_CLOSED after close', async () => {
    const rx = await Receiver.open();
    const agent = announce({
      server: `127.0.0.1:${rx.port}`,
      key: 'app.test',
      address: '127.0.0.1:3000',
      intervalMs: 60_000,
    });
    try {
      await rx.waitFor(1);
      await agent.announceNow();
      const got = await rx.waitFor(2, 500);
      assert.equal(got[1]!.packet.command, 'subscribe');
      await agent.close();
      await assert.rejects(agent.announceNow(), (e: AgentError) => e.code === 'SY_AGENT_CLOSED' && !e.retryable);
    } finally {
      await agent.close();
      await rx.close();
    }
  });

  it('counts send failures and reports them to onError instead of throwing from the timer', async () => {
    const errors: AgentError[] = [];
    // Sending to the broadcast address without SO_BROADCAST fails in the kernel (EACCES): no traffic leaves.
    const agent = announce({
      server: '255.255.255.255:9',
      key: 'app.test',
      address: '127.0.0.1:3000',
      intervalMs: 20,
      onError: (e) => errors.push(e),
    });
    try {
      const deadline = performance.now() + 2000;
      while (errors.length < 2 && performance.now() < deadline) await sleep(10);
      assert.ok(errors.length >= 2, 'the timer kept running after a failure');
      assert.ok(errors.every((e) => e.code === 'SY_SEND_FAILED' && e.source === 'agent' && e.retryable));
      await assert.rejects(agent.announceNow(), (e: AgentError) => e.code === 'SY_SEND_FAILED');
      assert.equal(agent.sent, 0);
      assert.ok(agent.failed >= 3);
    } finally {
      const before = errors.length;
      await agent.close(); // the failed unsubscribe is reported, close still resolves
      assert.equal(errors.at(-1)?.code, 'SY_SEND_FAILED');
      assert.ok(errors.length > before);
    }
  });

  it('resolves a hostname server before sending', async () => {
    const { address, family } = await lookup('localhost');
    const rx = await Receiver.open(address, family === 6 ? 'udp6' : 'udp4');
    const agent = announce({ server: `localhost:${rx.port}`, key: 'app.test', address: '127.0.0.1:3000' });
    try {
      const [first] = await rx.waitFor(1);
      assert.equal(first!.packet.fields.get('key'), 'app.test');
    } finally {
      await agent.close();
      await rx.close();
    }
  });

  it('sends to a bracketed IPv6 server over udp6', async (t) => {
    let rx: Receiver;
    try {
      rx = await Receiver.open('::1', 'udp6');
    } catch {
      t.skip('no IPv6 loopback on this machine');
      return;
    }
    const agent = announce({ server: `[::1]:${rx.port}`, key: 'app.test', address: '[::1]:3000' });
    try {
      const [first] = await rx.waitFor(1);
      assert.equal(first!.packet.fields.get('address'), '[::1]:3000');
    } finally {
      await agent.close();
      await rx.close();
    }
  });
});

describe('announce options', () => {
  const base: AnnounceOptions = { server: '127.0.0.1:2626', key: 'app.test', address: '127.0.0.1:3000' };
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['a server without a port', { server: '127.0.0.1' }, 'server'],
    ['a server that is not host:port', { server: 'not a server' }, 'server'],
    ['a server with a bad dotted quad', { server: '999.1.1.1:2626' }, 'server'],
    ['a server port out of range', { server: '127.0.0.1:70000' }, 'server'],
    ['an empty key', { key: '' }, 'key'],
    ['a key with a space', { key: 'a b.test' }, 'key'],
    ['a key longer than 255 bytes', { key: `${'a.'.repeat(128)}test` }, 'key'],
    ['an address without a port', { address: '127.0.0.1' }, 'address'],
    ['a negative weight', { weight: -1 }, 'weight'],
    ['a fractional weight', { weight: 1.5 }, 'weight'],
    ['a weight above 65535', { weight: 70_000 }, 'weight'],
    ['an unknown proto', { proto: 'h2' }, 'proto'],
    ['modifier1 above 255', { modifier1: 256 }, 'modifier1'],
    ['modifier2 below 0', { modifier2: -1 }, 'modifier2'],
    ['an interval below 10 ms', { intervalMs: 5 }, 'intervalMs'],
    ['an extra redefining a standard pair', { extra: { weight: '9' } }, 'extra'],
    ['an extra named sign', { extra: { sign: 'x' } }, 'extra'],
    ['an extra with a non-string value', { extra: { backup: 1 } }, 'extra'],
    [
      'extras making the datagram exceed 4096 bytes',
      { extra: { a: 'x'.repeat(1024), b: 'x'.repeat(1024), c: 'x'.repeat(1024), d: 'x'.repeat(1024) } },
      'extra',
    ],
    ['an unknown option', { colour: 'red' }, 'colour'],
    ['an onError that is not a function', { onError: 'log' }, 'onError'],
  ];
  for (const [what, patch, option] of cases) {
    it(`rejects ${what} with SY_BAD_OPTION naming ${option}`, () => {
      const options = { ...base, ...patch } as AnnounceOptions;
      assert.throws(
        () => announce(options),
        (e: AgentError & { option: string }) =>
          e.code === 'SY_BAD_OPTION' && e.source === 'agent' && !e.retryable && e.option === option,
      );
    });
  }

  it('accepts a hostname address, a wildcard key and weight 0, filling the defaults', () => {
    const resolved = resolveAnnounceOptions({ ...base, key: '.example.org', address: 'backend-1:3000', weight: 0 });
    assert.equal(resolved.intervalMs, 10_000);
    assert.deepEqual(resolved.server, { host: '127.0.0.1', port: 2626, family: 4 });
    assert.deepEqual(
      resolved.pairs.map(([k]) => k),
      ['key', 'address', 'modifier1', 'modifier2', 'cores', 'load', 'weight'],
    );
    assert.equal(resolved.pairs[6]![1], '0');
  });
});
