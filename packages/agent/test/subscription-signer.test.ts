import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, verify } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { decodeSubscription } from '@switchyard/protocol';
import {
  AgentError,
  announce,
  buildAnnounceOptions,
  parseAgentArgs,
  resolveSigning,
  signSubscription,
} from '../src/index.js';

const ed = generateKeyPairSync('ed25519');
const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-agent-sign-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const PAIRS = [
  ['key', 'a.tenant.test'],
  ['address', '127.0.0.1:9001'],
] as const;

const isBadOption = (err: unknown) => err instanceof AgentError && err.code === 'SY_BAD_OPTION';

describe('subscription signing (Ed25519 / HMAC-SHA256)', () => {
  test('an Ed25519 signature covers the whole datagram before sig, header with the final datasize included', () => {
    const signing = resolveSigning({ kid: 'k1', algorithm: 'ed25519', key: ed.privateKey });
    const packet = signSubscription('subscribe', PAIRS, signing, 1_800_000_000_500, 'ab'.repeat(16));
    const decoded = decodeSubscription(packet);
    assert.ok(decoded.ok);
    const p = decoded.value;
    assert.equal(p.fields.get('ts'), '1800000000');
    assert.equal(p.fields.get('nonce'), 'ab'.repeat(16));
    assert.equal(p.fields.get('kid'), 'k1');
    assert.equal(p.sig?.length, 64);
    assert.equal(p.sigCovered?.readUInt16LE(1), packet.length - 4);
    assert.ok(verify(null, p.sigCovered!, ed.publicKey, p.sig!));
    const flipped = Buffer.from(packet);
    flipped[3] = 1;
    const f = decodeSubscription(flipped);
    assert.ok(f.ok);
    assert.equal(f.value.command, 'unsubscribe');
    assert.ok(!verify(null, f.value.sigCovered!, ed.publicKey, f.value.sig!));
  });

  test('an HMAC-SHA256 signature uses the secret without trailing whitespace', () => {
    const signing = resolveSigning({ kid: 'h', algorithm: 'hmac-sha256', key: 'sixteen-byte-secret!\n' });
    const decoded = decodeSubscription(signSubscription('unsubscribe', PAIRS, signing));
    assert.ok(decoded.ok);
    const expected = createHmac('sha256', 'sixteen-byte-secret!').update(decoded.value.sigCovered!).digest();
    assert.deepEqual(decoded.value.sig, expected);
    assert.equal(decoded.value.command, 'unsubscribe');
  });

  test('invalid signing options are SY_BAD_OPTION before any I/O', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    assert.throws(() => resolveSigning({ kid: 'bad kid', algorithm: 'ed25519', key: ed.privateKey }), isBadOption);
    assert.throws(() => resolveSigning({ kid: 'k', algorithm: 'ed25519', key: ed.publicKey }), isBadOption);
    assert.throws(() => resolveSigning({ kid: 'k', algorithm: 'ed25519', key: rsa.privateKey }), isBadOption);
    assert.throws(() => resolveSigning({ kid: 'k', algorithm: 'hmac-sha256', key: 'short' }), isBadOption);
    assert.throws(
      () =>
        announce({
          server: '127.0.0.1:1',
          key: 'a.test',
          address: '127.0.0.1:2',
          extra: { nonce: 'x' },
        }),
      isBadOption,
    );
  });

  test('every datagram of a signed announcer carries a fresh nonce, the unsubscribe too', async () => {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const nonces: string[] = [];
    const commands: string[] = [];
    socket.on('message', (msg) => {
      const d = decodeSubscription(msg);
      assert.ok(d.ok);
      assert.ok(verify(null, d.value.sigCovered!, ed.publicKey, d.value.sig!));
      nonces.push(d.value.fields.get('nonce')!);
      commands.push(d.value.command);
    });
    const handle = announce({
      server: `127.0.0.1:${socket.address().port}`,
      key: 'a.tenant.test',
      address: '127.0.0.1:9001',
      intervalMs: 20,
      signing: { kid: 'k1', algorithm: 'ed25519', key: ed.privateKey.export({ type: 'pkcs8', format: 'pem' }) },
    });
    const deadline = Date.now() + 3_000;
    while (nonces.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await handle.close();
    while (commands.at(-1) !== 'unsubscribe' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    assert.ok(nonces.length >= 4);
    assert.equal(new Set(nonces).size, nonces.length);
    assert.equal(commands.at(-1), 'unsubscribe');
  });

  test('switchyard agent --sign-key ALG:FILE --kid ID reads the key file; each flag needs the other', () => {
    const keyFile = path.join(dir, 'agent.key');
    writeFileSync(keyFile, ed.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const base = ['--subscribe-to', '127.0.0.1:2626:a.test', '--address', '127.0.0.1:3000'];
    const [options] = buildAnnounceOptions(
      parseAgentArgs([...base, '--sign-key', `ed25519:${keyFile}`, '--kid', 'k1']),
    );
    assert.equal(options?.signing?.kid, 'k1');
    assert.throws(
      () => buildAnnounceOptions(parseAgentArgs([...base, '--sign-key', `ed25519:${keyFile}`])),
      isBadOption,
    );
    assert.throws(() => buildAnnounceOptions(parseAgentArgs([...base, '--kid', 'k1'])), isBadOption);
    assert.throws(() => parseAgentArgs([...base, '--sign-key', `rsa:${keyFile}`, '--kid', 'k1']), isBadOption);
    assert.throws(
      () => buildAnnounceOptions(parseAgentArgs([...base, '--sign-key', `ed25519:${dir}/missing`, '--kid', 'k1'])),
      isBadOption,
    );
    const secretFile = path.join(dir, 'agent.secret');
    writeFileSync(secretFile, 'a secret of at least sixteen bytes\n');
    const [hmac] = buildAnnounceOptions(
      parseAgentArgs([...base, '--sign-key', `hmac-sha256:${secretFile}`, '--kid', 'h1']),
    );
    assert.equal(hmac?.signing?.algorithm, 'hmac-sha256');
  });
});
