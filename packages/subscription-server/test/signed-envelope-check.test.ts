import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { decodeSubscription, encodeVars } from '@switchyard/protocol';
import {
  kidForFile,
  loadSubscriptionKeyring,
  parseAnnouncement,
  parseSubscriptionKeySpec,
  SignedEnvelopeCheck,
  SubscriptionError,
  type SubscriptionKeySpec,
} from '../src/index.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-env-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const old = generateKeyPairSync('ed25519');
const next = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const file = (name: string, content: string | Buffer) => {
  const p = path.join(dir, name);
  writeFileSync(p, content);
  return p;
};
const pub = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' });
const OLD = file('tenant-old.pub', pub(old.publicKey));
const NEXT = file('tenant-new.pub', pub(next.publicKey));
const OTHER = file('other.pub', pub(other.publicKey));
const SECRET = 'a shared secret of some length';
const HMAC = file('hmac-1.key', `${SECRET}\n`);

const T0 = 1_800_000_000_000;

type Signer = { kid: string; ed?: KeyObject; secret?: string };

/** What the agent does: pairs + ts, nonce, kid, then sig over the whole datagram before the sig pair. */
function envelope(
  signer: Signer,
  fields: Record<string, string>,
  options: { command?: 0 | 1; ts?: number; nonce?: string } = {},
): Buffer {
  const body = encodeVars([
    ...Object.entries(fields),
    ['ts', String(options.ts ?? Math.floor(T0 / 1000))],
    ['nonce', options.nonce ?? randomBytes(16).toString('hex')],
    ['kid', signer.kid],
  ]);
  const sigLength = signer.ed !== undefined ? 64 : 32;
  const datasize = body.length + 7 + sigLength;
  const out = Buffer.alloc(4 + datasize);
  out[0] = 224;
  out.writeUInt16LE(datasize, 1);
  out[3] = options.command ?? 0;
  body.copy(out, 4);
  const at = 4 + body.length;
  out.writeUInt16LE(3, at);
  out.write('sig', at + 2, 'latin1');
  out.writeUInt16LE(sigLength, at + 5);
  const covered = out.subarray(0, at);
  const sig =
    signer.ed !== undefined
      ? sign(null, covered, signer.ed)
      : createHmac('sha256', signer.secret!).update(covered).digest();
  sig.copy(out, at + 7);
  return out;
}

function specs(...items: string[]): SubscriptionKeySpec[] {
  return items.map((s) => {
    const spec = parseSubscriptionKeySpec(s);
    assert.ok(spec, s);
    return spec;
  });
}

function setup(keySpecs: SubscriptionKeySpec[], windowSec = 30) {
  const clock = { now: T0 };
  const check = new SignedEnvelopeCheck({
    keyring: loadSubscriptionKeyring(keySpecs),
    clock: () => clock.now,
    windowSec,
  });
  const run = (datagram: Buffer): string => {
    const decoded = decodeSubscription(datagram);
    if (!decoded.ok) return decoded.error.reason;
    const parsed = parseAnnouncement(decoded.value);
    if (!parsed.ok) return parsed.reason;
    const r = check.check(decoded.value, parsed.value);
    return r.ok ? 'ok' : r.reason;
  };
  return { clock, check, run };
}

const A = { key: 'a.tenant.example', address: '127.0.0.1:9001' };
const ED_OLD: Signer = { kid: 'tenant-old', ed: old.privateKey };
const ED_NEW: Signer = { kid: 'tenant-new', ed: next.privateKey };

describe('Ed25519 / HMAC-SHA256 signed envelopes', () => {
  test('key specs parse PATTERN=ALG:FILE and the kid is the file base name', () => {
    assert.deepEqual(parseSubscriptionKeySpec('*.tenant.example=ed25519:/k/tenant-2024.pub'), {
      pattern: '*.tenant.example',
      algorithm: 'ed25519',
      file: '/k/tenant-2024.pub',
    });
    assert.equal(parseSubscriptionKeySpec('*.x=rsa:/k'), undefined);
    assert.equal(parseSubscriptionKeySpec('bad pattern=ed25519:/k'), undefined);
    assert.equal(kidForFile('/etc/keys/tenant-2024.pub'), 'tenant-2024');
  });

  test('Ed25519 and HMAC-SHA256 signed packets are accepted for hosts their pattern covers', () => {
    const { run } = setup(specs(`*.tenant.example=ed25519:${OLD}`, `hmac.example=hmac-sha256:${HMAC}`));
    assert.equal(run(envelope(ED_OLD, A)), 'ok');
    assert.equal(run(envelope(ED_OLD, { ...A, key: 'b.c.tenant.example:8080' })), 'ok');
    // The trailing newline of the secret file is ignored, as the agent does.
    assert.equal(run(envelope({ kid: 'hmac-1', secret: SECRET }, { ...A, key: 'hmac.example' })), 'ok');
  });

  test('a kid outside its host pattern is signer-not-allowed; an unknown kid is unknown-signer', () => {
    const { run } = setup(specs(`*.tenant.example=ed25519:${OLD}`, `other.example=ed25519:${OTHER}`));
    assert.equal(run(envelope({ kid: 'other', ed: other.privateKey }, A)), 'signer-not-allowed');
    assert.equal(run(envelope(ED_OLD, { ...A, key: 'tenant.example' })), 'signer-not-allowed');
    assert.equal(run(envelope({ kid: 'ghost', ed: other.privateKey }, A)), 'unknown-signer');
  });

  test('forgeries fail: wrong key, wrong HMAC secret, flipped header bit (subscribe to unsubscribe)', () => {
    const { run } = setup(specs(`*.tenant.example=ed25519:${OLD}`, `hmac.example=hmac-sha256:${HMAC}`));
    assert.equal(run(envelope({ kid: 'tenant-old', ed: other.privateKey }, A)), 'bad-signature');
    assert.equal(
      run(envelope({ kid: 'hmac-1', secret: 'not the shared secret' }, { ...A, key: 'hmac.example' })),
      'bad-signature',
    );
    const flipped = envelope(ED_OLD, A);
    flipped[3] = 1;
    assert.equal(run(flipped), 'bad-signature');
    const hmacFlipped = envelope({ kid: 'hmac-1', secret: SECRET }, { ...A, key: 'hmac.example' });
    hmacFlipped[3] = 1;
    assert.equal(run(hmacFlipped), 'bad-signature');
  });

  test('a replayed datagram is refused by its nonce; a forgery cannot burn a nonce', () => {
    const { run } = setup(specs(`*.tenant.example=ed25519:${OLD}`));
    const nonce = randomBytes(16).toString('hex');
    assert.equal(run(envelope({ kid: 'tenant-old', ed: other.privateKey }, A, { nonce })), 'bad-signature');
    const packet = envelope(ED_OLD, A, { nonce });
    assert.equal(run(packet), 'ok');
    assert.equal(run(packet), 'replayed');
  });

  test('ts outside the window is stale; an older ts than one accepted for the node is a replay', () => {
    const { run, clock } = setup(specs(`*.tenant.example=ed25519:${OLD}`), 30);
    const now = Math.floor(T0 / 1000);
    assert.equal(run(envelope(ED_OLD, A, { ts: now - 31 })), 'stale-timestamp');
    assert.equal(run(envelope(ED_OLD, A, { ts: now + 31 })), 'stale-timestamp');
    assert.equal(run(envelope(ED_OLD, A, { ts: now + 2 })), 'ok');
    // A withheld older subscribe replayed after a newer packet (the unsubscribe) cannot resurrect the node.
    assert.equal(run(envelope(ED_OLD, A, { ts: now + 1 })), 'replayed');
    assert.equal(run(envelope(ED_OLD, A, { ts: now + 2, command: 1 })), 'ok');
    clock.now += 60_000;
    assert.equal(run(envelope(ED_OLD, A, { ts: now + 60 })), 'ok');
  });

  test('malformed ts, nonce or kid are bad-field', () => {
    const { run } = setup(specs(`*.tenant.example=ed25519:${OLD}`));
    assert.equal(run(envelope(ED_OLD, A, { nonce: 'abc' })), 'bad-field');
    assert.equal(run(envelope(ED_OLD, A, { nonce: 'z'.repeat(32) })), 'bad-field');
    assert.equal(run(envelope({ ...ED_OLD, kid: 'bad kid' }, A)), 'bad-field');
  });

  test('rotation with overlap: two keys for one pattern are both accepted, a removed one no longer', () => {
    const both = setup(specs(`*.tenant.example=ed25519:${OLD}`, `*.tenant.example=ed25519:${NEXT}`));
    assert.equal(both.run(envelope(ED_OLD, A)), 'ok');
    assert.equal(both.run(envelope(ED_NEW, { ...A, address: '127.0.0.1:9002' })), 'ok');
    const after = setup(specs(`*.tenant.example=ed25519:${NEXT}`));
    assert.equal(after.run(envelope(ED_OLD, A)), 'unknown-signer');
    assert.equal(after.run(envelope(ED_NEW, A)), 'ok');
  });

  test('key files that cannot be used are SY_BAD_KEY errors naming the file', () => {
    const short = file('short.key', 'tiny');
    const rsaPub = file('rsa.pub', pub(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey));
    for (const bad of [
      `x.example=hmac-sha256:${short}`,
      `x.example=ed25519:${rsaPub}`,
      `x.example=ed25519:${dir}/none.pub`,
    ]) {
      assert.throws(
        () => loadSubscriptionKeyring(specs(bad)),
        (err: unknown) => err instanceof SubscriptionError && err.code === 'SY_BAD_KEY',
      );
    }
    const clash = file('tenant-old', pub(other.publicKey));
    assert.throws(
      () => loadSubscriptionKeyring(specs(`a.example=ed25519:${OLD}`, `b.example=ed25519:${clash}`)),
      (err: unknown) => err instanceof SubscriptionError && err.code === 'SY_BAD_KEY',
    );
  });

  test('sig must be the last pair', () => {
    const { run } = setup(specs(`*.tenant.example=ed25519:${OLD}`));
    const body = encodeVars([
      ['key', A.key],
      ['sig', Buffer.alloc(64)],
      ['address', A.address],
    ]);
    const packet = Buffer.concat([Buffer.from([224, body.length & 0xff, body.length >> 8, 0]), body]);
    assert.equal(run(packet), 'sig-not-last');
  });
});
