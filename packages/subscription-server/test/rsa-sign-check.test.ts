import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { mkdtempSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { decodeSubscription, encodeSubscriptionBody, frameSubscription } from '@switchyard/protocol';
import { keyFileName, parseAnnouncement, RsaSignCheck } from '../src/index.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-rsa-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const first = generateKeyPairSync('rsa', { modulusLength: 1024 });
const second = generateKeyPairSync('rsa', { modulusLength: 1024 });
const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' });
writeFileSync(path.join(dir, 'app.test.pem'), pem(first.publicKey));

const T0 = 1_800_000_000_000; // ms

function signed(
  fields: Record<string, string>,
  unix: number,
  key: KeyObject = first.privateKey,
  command: 'subscribe' | 'unsubscribe' = 'subscribe',
): Buffer {
  const base = encodeSubscriptionBody([...Object.entries(fields), ['unix', String(unix)]]);
  return frameSubscription(command, Buffer.concat([base, encodeSubscriptionBody([['sign', sign('sha1', base, key)]])]));
}

function check(rsa: RsaSignCheck, datagram: Buffer): string {
  const decoded = decodeSubscription(datagram);
  assert.ok(decoded.ok);
  const parsed = parseAnnouncement(decoded.value);
  assert.ok(parsed.ok);
  const result = rsa.check(decoded.value, parsed.value);
  return result.ok ? 'ok' : result.reason;
}

function setup(options: { toleranceSec?: number } = {}) {
  const clock = { now: T0 };
  const rsa = new RsaSignCheck({ algorithm: 'SHA1', dir, clock: () => clock.now, ...options });
  return { clock, rsa };
}

const A = { key: 'app.test', address: '127.0.0.1:9001' };
const sec = (ms: number) => Math.floor(ms / 1000);

describe('uWSGI RSA signature check', () => {
  test('key file names follow uWSGI: bytes outside [A-Za-z0-9._-] become _', () => {
    assert.equal(keyFileName('test.uwsgi.it:8000'), 'test.uwsgi.it_8000.pem');
    assert.equal(keyFileName('.example.org'), '.example.org.pem');
  });

  test('an unknown digest name is refused at construction', () => {
    assert.throws(() => new RsaSignCheck({ algorithm: 'NOPE512', dir }), RangeError);
  });

  test('a packet signed over the body before sign, with a fresh unix, passes', () => {
    const { rsa } = setup();
    assert.equal(check(rsa, signed(A, sec(T0))), 'ok');
  });

  test('unix must strictly grow per (key, address), for subscribes and unsubscribes alike', () => {
    const { rsa } = setup();
    assert.equal(check(rsa, signed(A, sec(T0))), 'ok');
    assert.equal(check(rsa, signed(A, sec(T0))), 'replayed');
    assert.equal(check(rsa, signed(A, sec(T0), first.privateKey, 'unsubscribe')), 'replayed');
    assert.equal(check(rsa, signed(A, sec(T0) + 1, first.privateKey, 'unsubscribe')), 'ok');
    // Another address of the same key has its own high-water mark.
    assert.equal(check(rsa, signed({ ...A, address: '127.0.0.1:9002' }, sec(T0))), 'ok');
  });

  test('a forged packet does not raise the high-water mark', () => {
    const { rsa } = setup();
    assert.equal(check(rsa, signed(A, sec(T0) + 5, second.privateKey)), 'bad-signature');
    assert.equal(check(rsa, signed(A, sec(T0) + 1)), 'ok');
  });

  test('unix outside ±tolerance is stale, in both directions', () => {
    const { rsa } = setup({ toleranceSec: 30 });
    assert.equal(check(rsa, signed(A, sec(T0) - 31)), 'stale-timestamp');
    assert.equal(check(rsa, signed(A, sec(T0) + 31)), 'stale-timestamp');
    assert.equal(check(rsa, signed(A, sec(T0) - 30)), 'ok');
  });

  test('unsigned packets, packets without unix and keys without a file are refused by reason', () => {
    const { rsa } = setup();
    const unsigned = frameSubscription('subscribe', encodeSubscriptionBody(Object.entries(A)));
    assert.equal(check(rsa, unsigned), 'unsigned');
    const base = encodeSubscriptionBody(Object.entries(A));
    const noUnix = frameSubscription(
      'subscribe',
      Buffer.concat([base, encodeSubscriptionBody([['sign', sign('sha1', base, first.privateKey)]])]),
    );
    assert.equal(check(rsa, noUnix), 'bad-field');
    assert.equal(check(rsa, signed({ ...A, key: 'nokey.test' }, sec(T0))), 'unknown-signer');
  });

  test('a tampered body (header or pairs) fails the signature', () => {
    const { rsa } = setup();
    const packet = signed(A, sec(T0));
    const at = packet.indexOf(Buffer.from('9001'));
    packet[at + 3] = 0x32; // 9001 → 9002
    assert.equal(check(rsa, packet), 'bad-signature');
  });

  test('a rotated key file is picked up once its mtime changes and the recheck interval passed', () => {
    const { rsa, clock } = setup();
    writeFileSync(path.join(dir, 'rotate.test.pem'), pem(first.publicKey));
    const R = { key: 'rotate.test', address: '127.0.0.1:9001' };
    assert.equal(check(rsa, signed(R, sec(clock.now))), 'ok');
    writeFileSync(path.join(dir, 'rotate.test.pem'), pem(second.publicKey));
    utimesSync(path.join(dir, 'rotate.test.pem'), new Date(), new Date(Date.now() + 5_000));
    clock.now += 1_000;
    assert.equal(check(rsa, signed(R, sec(clock.now), first.privateKey)), 'bad-signature');
    assert.equal(check(rsa, signed(R, sec(clock.now), second.privateKey)), 'ok');
    unlinkSync(path.join(dir, 'rotate.test.pem'));
    clock.now += 1_000;
    assert.equal(check(rsa, signed(R, sec(clock.now), second.privateKey)), 'unknown-signer');
  });

  test('high-water marks outlive the node: a replay after removal is still refused, memory stays bounded', () => {
    const clock = { now: T0 };
    const rsa = new RsaSignCheck({ algorithm: 'sha1', dir, clock: () => clock.now, replayEntries: 3 });
    assert.equal(check(rsa, signed(A, sec(T0))), 'ok');
    assert.equal(check(rsa, signed(A, sec(T0))), 'replayed');
    for (let port = 1; port <= 5; port++) check(rsa, signed({ ...A, address: `127.0.0.1:${port}` }, sec(T0)));
    assert.equal(rsa.replayEntries, 3);
  });
});
