import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { encodeSubscription, encodeVars } from '@switchyard/protocol';
import {
  ackMessage,
  parseAnnouncement,
  parseNotifyTarget,
  parseSourceAllowEntry,
  parseSubscriptionKeySpec,
  SubscriptionRegistry,
  SubscriptionSecurity,
  type SubscriptionSecurityOptions,
  SubscriptionServer,
} from '../src/index.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-sec-'));
const ed = generateKeyPairSync('ed25519');
const keyFile = path.join(dir, 'k1.pub');
writeFileSync(keyFile, ed.publicKey.export({ type: 'spki', format: 'pem' }));

const sockets: Socket[] = [];
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers) await c();
  await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  rmSync(dir, { recursive: true, force: true });
});

const LOCAL = { address: '127.0.0.1', port: 40000 };

async function ackListener(): Promise<{ port: number; lines: string[] }> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  const lines: string[] = [];
  socket.on('message', (m) => lines.push(m.toString()));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, lines };
}

async function setup(options: SubscriptionSecurityOptions = {}) {
  const registry = new SubscriptionRegistry();
  const security = new SubscriptionSecurity(options);
  await security.start();
  const server = new SubscriptionServer({
    binds: ['127.0.0.1:0'],
    registry,
    verifier: security,
    admission: security,
    acknowledger: security,
  });
  closers.push(() => security.close());
  const handle = (
    fields: Record<string, string>,
    source = LOCAL,
    command: 'subscribe' | 'unsubscribe' = 'subscribe',
  ) => {
    const r = server.handleDatagram(encodeSubscription(command, Object.entries(fields)), source);
    return r.accepted ? r.change : r.reason;
  };
  return { registry, security, server, handle };
}

function edSigned(fields: Record<string, string>): Buffer {
  const body = encodeVars([
    ...Object.entries(fields),
    ['ts', String(Math.floor(Date.now() / 1000))],
    ['nonce', randomBytes(16).toString('hex')],
    ['kid', 'k1'],
  ]);
  const datasize = body.length + 7 + 64;
  const out = Buffer.alloc(4 + datasize);
  out[0] = 224;
  out.writeUInt16LE(datasize, 1);
  body.copy(out, 4);
  const at = 4 + body.length;
  out.writeUInt16LE(3, at);
  out.write('sig', at + 2, 'latin1');
  out.writeUInt16LE(64, at + 5);
  sign(null, out.subarray(0, at), ed.privateKey).copy(out, at + 7);
  return out;
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('the intake pipeline with SubscriptionSecurity', () => {
  test('a source outside the allowlist is dropped before decoding, even garbage', async () => {
    const { server, handle } = await setup({ sourceAllow: [parseSourceAllowEntry('10.0.0.0/8')!] });
    assert.equal(handle({ key: 'a.test', address: '10.0.0.1:80' }), 'source-not-allowed');
    const garbage = Buffer.from([224, 3, 0, 0, 1, 2, 3]);
    const r = server.handleDatagram(garbage, LOCAL);
    assert.equal(r.accepted ? 'accepted' : r.reason, 'source-not-allowed');
    assert.equal(handle({ key: 'a.test', address: '10.0.0.1:80' }, { address: '10.9.9.9', port: 1 }), 'added');
    assert.equal(server.stats().dropped['source-not-allowed'], 2);
  });

  test('a header that is not a subscription is dropped before the rate limiter spends a token', async () => {
    const { server, security } = await setup({ sourceRate: 1, sourceBurst: 1 });
    const r = server.handleDatagram(Buffer.from([0, 0, 0, 0]), LOCAL);
    assert.equal(r.accepted ? 'accepted' : r.reason, 'wrong-modifier1');
    assert.equal(security.sources.trackedSources, 0);
  });

  test('addresses pointing at the router itself are refused as address-not-allowed', async () => {
    const { handle } = await setup({ ownListeners: () => [{ address: '0.0.0.0', port: 8080 }] });
    assert.equal(handle({ key: 'a.test', address: '127.0.0.1:8080' }), 'address-not-allowed');
    assert.equal(handle({ key: 'a.test', address: ':8080' }), 'address-not-allowed');
    assert.equal(handle({ key: 'a.test', address: '127.0.0.1:8081' }), 'added');
  });

  test('with signing on, unsigned packets are dropped and a signed one is accepted', async () => {
    const { server, handle } = await setup({ keys: [parseSubscriptionKeySpec(`*.tenant.test=ed25519:${keyFile}`)!] });
    assert.equal(handle({ key: 'a.tenant.test', address: '127.0.0.1:9001' }), 'unsigned');
    const r = server.handleDatagram(edSigned({ key: 'a.tenant.test', address: '127.0.0.1:9001' }), LOCAL);
    assert.equal(r.accepted ? r.change : r.reason, 'added');
    const other = server.handleDatagram(edSigned({ key: 'b.other.test', address: '127.0.0.1:9001' }), LOCAL);
    assert.equal(other.accepted ? 'accepted' : other.reason, 'signer-not-allowed');
  });

  test('acks and nacks reach the notify target over UDP (not plain refreshes), never for unauthenticated packets when signing is on', async () => {
    const acks = await ackListener();
    const notify = `127.0.0.1:${acks.port}`;
    const open = await setup({ nodeAllow: [] });
    const registry = open.registry;
    assert.equal(open.handle({ key: 'n.test', address: '127.0.0.1:9001', notify }), 'added');
    assert.equal(open.handle({ key: 'n.test', address: '127.0.0.1:9001', notify }), 'refreshed');
    assert.equal(open.handle({ key: 'n.test', address: '127.0.0.1:9001', notify, weight: '3' }), 'updated');
    assert.equal(open.handle({ key: 'n.test', address: '127.0.0.1:9001', notify, weight: '3' }), 'refreshed');
    assert.equal(open.handle({ key: 'n.test', address: '127.0.0.1:9001', notify }, LOCAL, 'unsubscribe'), 'draining');
    assert.equal(
      open.handle({ key: 'm.test', address: '127.0.0.1:9001', notify }, LOCAL, 'unsubscribe'),
      'unknown-node',
    );
    await waitFor(() => acks.lines.length >= 4, 'four acks');
    assert.deepEqual(acks.lines, [
      '[subscription ack] n.test => new node: 127.0.0.1:9001',
      '[subscription ack] n.test => updated node: 127.0.0.1:9001',
      '[subscription ack] n.test => draining node: 127.0.0.1:9001',
      '[subscription nack] m.test => rejected: unknown-node',
    ]);
    assert.equal(registry.size, 1);

    const signed = await setup({ keys: [parseSubscriptionKeySpec(`*.tenant.test=ed25519:${keyFile}`)!] });
    assert.equal(signed.handle({ key: 'a.tenant.test', address: '127.0.0.1:9001', notify }), 'unsigned');
    const ok = signed.server.handleDatagram(
      edSigned({ key: 'a.tenant.test', address: '127.0.0.1:9001', notify }),
      LOCAL,
    );
    assert.equal(ok.accepted, true);
    await waitFor(() => acks.lines.length >= 5, 'the signed ack');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(acks.lines.slice(4), ['[subscription ack] a.tenant.test => new node: 127.0.0.1:9001']);
  });

  test('acks are rate-limited per destination and never aimed at the router itself', async () => {
    const acks = await ackListener();
    const { handle, security } = await setup({ ownListeners: () => [{ address: '127.0.0.1', port: 8080 }] });
    // 50 rejected packets (unsubscribes of an unknown node): each one is answered, within the rate limit.
    for (let i = 0; i < 50; i++) {
      handle({ key: 'r.test', address: '127.0.0.1:9001', notify: `127.0.0.1:${acks.port}` }, LOCAL, 'unsubscribe');
    }
    handle({ key: 'r.test', address: '127.0.0.1:9001', notify: '127.0.0.1:8080' });
    await waitFor(() => security.stats().notify!.sent >= 10, 'the burst of acks');
    const stats = security.stats().notify!;
    assert.equal(stats.sent, 10);
    assert.equal(stats.rateLimited, 40);
    assert.equal(stats.refused, 1);
  });

  test('notify targets: unix paths, abstract names and IP literals only; ack lines match uWSGI', () => {
    assert.deepEqual(parseNotifyTarget('/tmp/n.sock'), { kind: 'unix', path: '/tmp/n.sock' });
    assert.deepEqual(parseNotifyTarget('@ns'), { kind: 'unix', path: '\0ns' });
    assert.deepEqual(parseNotifyTarget('127.0.0.1:5000'), { kind: 'udp', host: '127.0.0.1', port: 5000, family: 4 });
    assert.deepEqual(parseNotifyTarget('[::1]:5000'), { kind: 'udp', host: '::1', port: 5000, family: 6 });
    assert.equal(parseNotifyTarget('victim.example:53'), undefined);
    assert.equal(parseNotifyTarget(`/${'x'.repeat(101)}`), undefined);
    const parsed = parseAnnouncement({
      command: 'subscribe',
      fields: new Map([
        ['key', 'a.test'],
        ['address', '127.0.0.1:1'],
      ]),
      signature: undefined,
      signedBody: undefined,
      sig: undefined,
      sigCovered: undefined,
      raw: Buffer.alloc(0),
    });
    assert.ok(parsed.ok);
    assert.equal(ackMessage(parsed.value, { kind: 'added' }), '[subscription ack] a.test => new node: 127.0.0.1:1');
  });
});
