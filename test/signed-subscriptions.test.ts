/**
 * Signed subscriptions end to end, over real UDP on loopback: real uWSGI 2.0 nodes signing with RSA
 * (`--subscribe-to ...,0,SHA1:priv.pem` and `--subscribe2 ...,sign=SHA256:priv.pem`) against
 * `--subscriptions-sign-check`, captured packets replayed and tampered with, unsigned and stale packets,
 * notify acks to UDP and UNIX datagram sockets.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject, sign as rsaSign } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { type AnnounceOptions, announce } from '@switchyard/agent';
import { encodeSubscription, encodeSubscriptionBody, frameSubscription } from '@switchyard/protocol';
import { loadUnixDgram } from '@switchyard/subscription-server';
import { get, SKIP_UWSGI, startApp, startUwsgiNode, waitFor } from './support.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-signed-'));
const keysDir = path.join(dir, 'keys');
mkdirSync(keysDir);
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const privatePem = path.join(dir, 'private.pem');
writeFileSync(privatePem, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
const publicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
for (const key of ['secure.test', 'second.test', 'crafted.test'])
  writeFileSync(path.join(keysDir, `${key}.pem`), publicPem);

const sockets: Socket[] = [];
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  rmSync(dir, { recursive: true, force: true });
});

/** A UDP listener on 127.0.0.1 collecting datagrams. */
async function listener(): Promise<{ port: number; received: Buffer[] }> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  const received: Buffer[] = [];
  socket.on('message', (msg) => received.push(msg));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, received };
}

async function send(port: number, datagram: Buffer): Promise<void> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) =>
    socket.send(datagram, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
  );
  await new Promise<void>((resolve) => socket.close(() => resolve()));
}

/** Signs like a uWSGI node: RSA PKCS#1 v1.5 over the body before the trailing `sign` pair. */
function uwsgiSigned(
  command: 'subscribe' | 'unsubscribe',
  fields: Record<string, string>,
  unix: number,
  key: KeyObject = rsa.privateKey,
  digest = 'sha1',
): Buffer {
  const base = encodeSubscriptionBody([...Object.entries(fields), ['unix', String(unix)]]);
  const signature = rsaSign(digest, base, key);
  return frameSubscription(command, Buffer.concat([base, encodeSubscriptionBody([['sign', signature]])]));
}

const nowSec = () => Math.floor(Date.now() / 1000);

async function drops(app: Awaited<ReturnType<typeof startApp>>['app'], reason: string, count: number) {
  await waitFor(
    () => ((app.subscriptions!.stats().dropped as Record<string, number>)[reason]! >= count ? true : undefined),
    3_000,
    `${count} ${reason} drop(s)`,
  );
}

describe('uWSGI RSA signed subscriptions (--subscriptions-sign-check)', { skip: SKIP_UWSGI }, () => {
  test('a real node signing with --subscribe-to accepts; replayed, tampered, unsigned, unknown-key and stale packets are dropped by reason; acks reach its notify socket', async () => {
    const running = await startApp(['--subscriptions-sign-check', `SHA1:${keysDir}`]);
    const { app, httpPort, subscriptionPort } = running;
    cleanups.push(() => app.close());
    const capture = await listener();
    const acks = await listener();
    const node = await startUwsgiNode('signed', () => [
      '--subscribe-to',
      `127.0.0.1:${subscriptionPort}:secure.test,0,SHA1:${privatePem}`,
      '--subscribe-to',
      `127.0.0.1:${capture.port}:secure.test,0,SHA1:${privatePem}`,
      '--subscription-notify-socket',
      `127.0.0.1:${acks.port}`,
    ]);
    cleanups.push(() => node.stop());
    await waitFor(() => app.registry.get('secure.test'), 15_000, 'the signed node');
    const reply = await waitFor(
      async () => {
        const r = await get(httpPort, 'secure.test');
        return r.status === 200 ? r : undefined;
      },
      5_000,
      'a routed request',
    );
    assert.equal((JSON.parse(reply.text) as { NODE: string }).NODE, 'signed');
    // The node's first two packets (t0, t0+1 s) are both accepted: unix strictly grows.
    await waitFor(() => (capture.received.length >= 2 ? true : undefined), 5_000, 'two captured packets');
    await waitFor(() => (app.subscriptions!.stats().subscribes >= 2 ? true : undefined), 3_000, 'two accepted');
    assert.equal(app.subscriptions!.stats().dropped.replayed, 0);
    const ack = await waitFor(() => acks.received[0], 3_000, 'the new-node ack');
    assert.equal(ack.toString(), `[subscription ack] secure.test => new node: 127.0.0.1:${node.port}`);

    // Replaying a captured packet after the node's newer one: its unix is not above the high-water mark.
    const first = capture.received[0]!;
    await send(subscriptionPort, first);
    await drops(app, 'replayed', 1);
    // The same bytes with the address changed (a new (key, address), so no high-water mark): bad signature.
    const tampered = Buffer.from(first);
    const at = tampered.indexOf(Buffer.from(`127.0.0.1:${node.port}`));
    tampered[at + 10] = tampered[at + 10] === 0x31 ? 0x32 : 0x31; // last octet digit of the address
    await send(subscriptionPort, tampered);
    await drops(app, 'bad-signature', 1);
    // Unsigned, unknown key, stale: each counted under its own reason; nothing reaches the table.
    await send(
      subscriptionPort,
      encodeSubscription('subscribe', [
        ['key', 'secure.test'],
        ['address', '127.0.0.1:1'],
      ]),
    );
    await drops(app, 'unsigned', 1);
    await send(subscriptionPort, uwsgiSigned('subscribe', { key: 'nokey.test', address: '127.0.0.1:2' }, nowSec()));
    await drops(app, 'unknown-signer', 1);
    await send(
      subscriptionPort,
      uwsgiSigned('subscribe', { key: 'crafted.test', address: '127.0.0.1:3' }, nowSec() - 120),
    );
    await drops(app, 'stale-timestamp', 1);
    // A packet signed the same way with a fresh unix is accepted (the crafted scheme is the real one).
    await send(subscriptionPort, uwsgiSigned('subscribe', { key: 'crafted.test', address: '127.0.0.1:3' }, nowSec()));
    await waitFor(() => app.registry.get('crafted.test'), 3_000, 'the crafted signed node');
    assert.deepEqual(
      app.registry.get('secure.test')!.map((n) => n.address),
      [`127.0.0.1:${node.port}`],
    );
    assert.equal(app.registry.get('nokey.test'), undefined);
    // An unsubscribe signed with the same unix as an accepted subscribe is a replay too.
    const unix = nowSec() + 1;
    await send(subscriptionPort, uwsgiSigned('subscribe', { key: 'crafted.test', address: '127.0.0.1:3' }, unix));
    await send(subscriptionPort, uwsgiSigned('unsubscribe', { key: 'crafted.test', address: '127.0.0.1:3' }, unix));
    await drops(app, 'replayed', 2);
    assert.equal(app.registry.get('crafted.test')![0]!.state, 'active');

    // The node's own signed unsubscribe (unix = now + 1) drains it.
    await node.stop('SIGINT');
    await waitFor(() => (app.registry.get('secure.test') === undefined ? true : undefined), 5_000, 'the node to leave');
  });

  test('a real node signing with --subscribe2 sign=SHA256 is accepted by a SHA256 sign-check', async () => {
    const { app, httpPort, subscriptionPort } = await startApp(['--subscriptions-sign-check', `SHA256:${keysDir}`]);
    cleanups.push(() => app.close());
    const node = await startUwsgiNode('s2', (port) => [
      '--subscribe2',
      `server=127.0.0.1:${subscriptionPort},key=second.test,addr=127.0.0.1:${port},sign=SHA256:${privatePem}`,
    ]);
    cleanups.push(() => node.stop());
    await waitFor(() => app.registry.get('second.test'), 15_000, 'the subscribe2 node');
    const reply = await waitFor(
      async () => {
        const r = await get(httpPort, 'second.test');
        return r.status === 200 ? r : undefined;
      },
      5_000,
      'a routed request',
    );
    assert.equal((JSON.parse(reply.text) as { NODE: string }).NODE, 's2');
    const dropped = app.subscriptions!.stats().dropped;
    assert.equal(dropped['bad-signature'] + dropped.unsigned + dropped.replayed, 0);
  });
});

const unixDgram = loadUnixDgram();

describe('notify acks to a UNIX datagram socket, as uWSGI sends them', {
  skip: 'error' in unixDgram ? `unix-dgram addon unavailable: ${unixDgram.error}` : false,
}, () => {
  test('a packet whose notify is a UNIX socket path gets the new-node ack there, and a refused one a nack', async () => {
    if ('error' in unixDgram) return;
    const { app, subscriptionPort } = await startApp(['--max-hosts', '1']);
    cleanups.push(() => app.close());
    const socketPath = path.join(dir, 'notify.sock');
    const received: string[] = [];
    const socket = unixDgram.module.createSocket('unix_dgram') as unknown as {
      bind(path: string): void;
      close(): void;
      on(event: 'message', listener: (msg: Buffer) => void): void;
    };
    socket.on('message', (msg) => received.push(msg.toString()));
    socket.bind(socketPath);
    cleanups.push(async () => socket.close());
    const fields = (key: string): [string, string][] => [
      ['key', key],
      ['address', '127.0.0.1:4001'],
      ['notify', socketPath],
    ];
    await send(subscriptionPort, encodeSubscription('subscribe', fields('unix.test')));
    await waitFor(() => received[0], 3_000, 'the ack');
    assert.equal(received[0], '[subscription ack] unix.test => new node: 127.0.0.1:4001');
    await send(subscriptionPort, encodeSubscription('subscribe', fields('other.test')));
    await waitFor(() => received[1], 3_000, 'the nack');
    assert.equal(received[1], '[subscription nack] other.test => rejected: too-many-hosts');
  });
});

describe('Ed25519 / HMAC-SHA256 signed subscriptions (--subscription-key) with the agent', () => {
  const oldKey = generateKeyPairSync('ed25519');
  const newKey = generateKeyPairSync('ed25519');
  const oldPub = path.join(dir, 'tenant-old.pub');
  const newPub = path.join(dir, 'tenant-new.pub');
  writeFileSync(oldPub, oldKey.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(newPub, newKey.publicKey.export({ type: 'spki', format: 'pem' }));
  const secretFile = path.join(dir, 'hmac-1.key');
  writeFileSync(secretFile, 'correct horse battery staple\n');

  test('signed agents are routable; replayed, header-flipped, forged and unsigned packets are dropped by reason; both rotation keys work', async () => {
    const { app, httpPort, subscriptionPort } = await startApp([
      '--subscription-key',
      `*.tenant.test=ed25519:${oldPub}`,
      '--subscription-key',
      `*.tenant.test=ed25519:${newPub}`,
      '--subscription-key',
      `hmac.test=hmac-sha256:${secretFile}`,
    ]);
    cleanups.push(() => app.close());
    const backend = http.createServer((req, res) => res.end(`backend for ${req.headers.host}`));
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => backend.close(() => resolve())));
    const backendAddress = `127.0.0.1:${(backend.address() as AddressInfo).port}`;
    const agent = (key: string, signing: AnnounceOptions['signing'], server = subscriptionPort) => {
      const handle = announce({
        server: `127.0.0.1:${server}`,
        key,
        address: backendAddress,
        proto: 'http',
        intervalMs: 60_000,
        ...(signing === undefined ? {} : { signing }),
      });
      cleanups.push(() => handle.close());
      return handle;
    };
    agent('a.tenant.test', { kid: 'tenant-old', algorithm: 'ed25519', key: oldKey.privateKey });
    agent('b.tenant.test', { kid: 'tenant-new', algorithm: 'ed25519', key: newKey.privateKey });
    agent('hmac.test', { kid: 'hmac-1', algorithm: 'hmac-sha256', key: 'correct horse battery staple' });
    for (const host of ['a.tenant.test', 'b.tenant.test', 'hmac.test']) {
      await waitFor(() => app.registry.get(host), 3_000, `${host} to subscribe`);
      const reply = await get(httpPort, host);
      assert.equal(reply.status, 200);
      assert.equal(reply.text, `backend for ${host}`);
    }

    // Capture one real signed datagram. Flipping its command byte (subscribe → unsubscribe) breaks the
    // signature and does not spend the nonce; the original is then accepted once, and replayed refused.
    const capture = await listener();
    agent('c.tenant.test', { kid: 'tenant-old', algorithm: 'ed25519', key: oldKey.privateKey }, capture.port);
    const captured = await waitFor(() => capture.received[0], 3_000, 'a captured signed datagram');
    const flipped = Buffer.from(captured);
    flipped[3] = 1;
    await send(subscriptionPort, flipped);
    await drops(app, 'bad-signature', 1);
    await send(subscriptionPort, captured);
    await waitFor(() => app.registry.get('c.tenant.test'), 3_000, 'the captured subscribe');
    await send(subscriptionPort, captured);
    await drops(app, 'replayed', 1);
    await send(subscriptionPort, flipped);
    await drops(app, 'replayed', 2);
    assert.equal(app.registry.get('c.tenant.test')![0]!.state, 'active');
    // A forger with its own key claiming a known kid, an unsigned packet, a kid outside its pattern.
    const forger = generateKeyPairSync('ed25519');
    agent('d.tenant.test', { kid: 'tenant-old', algorithm: 'ed25519', key: forger.privateKey });
    await drops(app, 'bad-signature', 2);
    await send(
      subscriptionPort,
      encodeSubscription('subscribe', [
        ['key', 'e.tenant.test'],
        ['address', backendAddress],
      ]),
    );
    await drops(app, 'unsigned', 1);
    agent('hmac.test', { kid: 'tenant-old', algorithm: 'ed25519', key: oldKey.privateKey });
    await drops(app, 'signer-not-allowed', 1);
    assert.equal(app.registry.get('d.tenant.test'), undefined);
    assert.equal(app.registry.get('e.tenant.test'), undefined);
  });
});

describe('source controls', () => {
  test('--subscription-allow drops other sources before decoding and limits a network to its key patterns', async () => {
    const denied = await startApp(['--subscription-allow', '10.0.0.0/8']);
    cleanups.push(() => denied.app.close());
    await send(
      denied.subscriptionPort,
      encodeSubscription('subscribe', [
        ['key', 'x.test'],
        ['address', '127.0.0.1:1'],
      ]),
    );
    await send(denied.subscriptionPort, Buffer.from([224, 2, 0, 0, 0xff, 0xff]));
    await drops(denied.app, 'source-not-allowed', 2);
    assert.equal(denied.app.registry.size, 0);

    const scoped = await startApp(['--subscription-allow', '127.0.0.0/8=allowed.test,*.ok.test']);
    cleanups.push(() => scoped.app.close());
    for (const key of ['allowed.test', 'x.ok.test', 'other.test']) {
      await send(
        scoped.subscriptionPort,
        encodeSubscription('subscribe', [
          ['key', key],
          ['address', '127.0.0.1:1'],
        ]),
      );
    }
    await drops(scoped.app, 'source-not-allowed', 1);
    await waitFor(() => (scoped.app.registry.size === 2 ? true : undefined), 3_000, 'two allowed hosts');
    assert.equal(scoped.app.registry.get('other.test'), undefined);
  });

  test("--subscription-node-allow refuses addresses outside it, and the router's own listeners are always refused", async () => {
    const { app, httpPort, adminPort, subscriptionPort } = await startApp(['--subscription-node-allow', '127.0.0.0/8']);
    cleanups.push(() => app.close());
    for (const address of [
      `127.0.0.1:${adminPort}`,
      `127.0.0.1:${httpPort}`,
      '169.254.169.254:80',
      '/var/run/docker.sock',
    ]) {
      await send(
        subscriptionPort,
        encodeSubscription('subscribe', [
          ['key', 'ssrf.test'],
          ['address', address],
        ]),
      );
    }
    await drops(app, 'address-not-allowed', 4);
    assert.equal(app.registry.get('ssrf.test'), undefined);
    const open = await startApp();
    cleanups.push(() => open.app.close());
    await send(
      open.subscriptionPort,
      encodeSubscription('subscribe', [
        ['key', 'loop.test'],
        ['address', `:${open.httpPort}`],
      ]),
    );
    await drops(open.app, 'address-not-allowed', 1);
  });
});
