/**
 * decodeSubscription is a one-pass decoder tuned for the intake hot path. This file keeps the
 * straightforward definition (decodePacket, then the modifier1 and sign/sig placement checks, as the
 * decoder was first written) and checks that both agree on random inputs: same verdict, same reason,
 * same fields in the same order, same signature slices.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BadPacketError,
  type DecodeOptions,
  type DecodeResult,
  decodePacket,
  decodeSubscription,
  encodePacket,
  SUBSCRIPTION_MODIFIER1,
  type SubscriptionPacket,
  UWSGI_HEADER_SIZE,
} from '../src/index.js';

/** The reference: decodePacket + the subscription rules, written the obvious way. */
function referenceDecode(input: Uint8Array, options: DecodeOptions = {}): DecodeResult<SubscriptionPacket> {
  const decoded = decodePacket(input, options);
  if (!decoded.ok) return decoded;
  const packet = decoded.value;
  if (packet.modifier1 !== SUBSCRIPTION_MODIFIER1) {
    return {
      ok: false,
      error: new BadPacketError('wrong-modifier1', `modifier1 ${packet.modifier1} is not a subscription (224)`),
    };
  }
  const fields = new Map<string, string>();
  let signature: Buffer | undefined;
  let signedBody: Buffer | undefined;
  let sig: Buffer | undefined;
  let sigCovered: Buffer | undefined;
  const raw = Buffer.from(input);
  const pairs = packet.pairs;
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i]!;
    if (pair.key === 'sign') {
      if (i !== pairs.length - 1) return { ok: false, error: new BadPacketError('sign-not-last', 'sign') };
      signature = pair.value;
      signedBody = packet.body.subarray(0, pair.offset);
    } else if (pair.key === 'sig') {
      if (i !== pairs.length - 1) return { ok: false, error: new BadPacketError('sig-not-last', 'sig') };
      sig = pair.value;
      sigCovered = raw.subarray(0, UWSGI_HEADER_SIZE + pair.offset);
    } else {
      fields.set(pair.key, pair.value.toString('utf8'));
    }
  }
  return {
    ok: true,
    value: {
      command: packet.modifier2 === 0 ? 'subscribe' : 'unsubscribe',
      fields,
      signature,
      signedBody,
      sig,
      sigCovered,
      raw,
    },
  };
}

/** Deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = ['key', 'address', 'weight', 'sign', 'sig', 'proto', 'modifier1', 'x', 'KEY', 'sni_key', 'signs', 'si'];
const VALUES = ['app.test', '127.0.0.1:3031', '', '1', 'é€', '\u0000', 'a'.repeat(300)];

function randomPacket(rand: () => number): Buffer {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const parts: Buffer[] = [];
  const pairs = Math.floor(rand() * 7);
  for (let i = 0; i < pairs; i++) {
    const name = rand() < 0.05 ? '' : pick(NAMES);
    const value = rand() < 0.1 ? Buffer.from([0xff, 0xfe, 0x80]) : Buffer.from(pick(VALUES), 'utf8');
    const k = Buffer.from(name, 'latin1');
    const head = Buffer.alloc(2);
    head.writeUInt16LE(k.length);
    const mid = Buffer.alloc(2);
    mid.writeUInt16LE(value.length);
    parts.push(head, k, mid, value);
  }
  let body = Buffer.concat(parts);
  if (rand() < 0.15 && body.length > 0) body = body.subarray(0, Math.floor(rand() * body.length));
  let packet = encodePacket(
    rand() < 0.9 ? SUBSCRIPTION_MODIFIER1 : Math.floor(rand() * 256),
    rand() < 0.7 ? 0 : 1,
    body,
  );
  if (rand() < 0.05) packet.writeUInt16LE(Math.floor(rand() * 65536), 1);
  if (rand() < 0.05) packet = packet.subarray(0, Math.floor(rand() * 4));
  if (rand() < 0.1 && packet.length > 4) {
    const copy = Buffer.from(packet);
    copy[4 + Math.floor(rand() * (copy.length - 4))] = Math.floor(rand() * 256);
    packet = copy;
  }
  return packet;
}

function summary(result: DecodeResult<SubscriptionPacket>): unknown {
  if (!result.ok) return { ok: false, reason: result.error.reason, code: result.error.code };
  const p = result.value;
  const hex = (b: Buffer | undefined) => b?.toString('hex');
  return {
    ok: true,
    command: p.command,
    fields: [...p.fields],
    signature: hex(p.signature),
    signedBody: hex(p.signedBody),
    sig: hex(p.sig),
    sigCovered: hex(p.sigCovered),
    raw: hex(p.raw),
  };
}

describe('one-pass subscription decoder', () => {
  test('agrees with the reference decoder on 20 000 random datagrams, with and without duplicate keys', () => {
    const rand = prng(0x5ea7);
    const verdicts = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      const packet = randomPacket(rand);
      const options: DecodeOptions =
        i % 3 === 0 ? { rejectDuplicateKeys: false } : i % 3 === 1 ? { maxValueSize: 200 } : {};
      const fast = decodeSubscription(packet, options);
      const reference = referenceDecode(packet, options);
      assert.deepEqual(summary(fast), summary(reference), `packet ${packet.toString('hex')} options ${i % 3}`);
      const verdict = fast.ok ? 'ok' : fast.error.reason;
      verdicts.set(verdict, (verdicts.get(verdict) ?? 0) + 1);
    }
    // The generator must reach every verdict, or the comparison proves little.
    for (const reason of [
      'ok',
      'truncated-header',
      'size-mismatch',
      'wrong-modifier1',
      'truncated-pair',
      'empty-key',
      'duplicate-key',
      'oversized-value',
      'sign-not-last',
      'sig-not-last',
    ]) {
      assert.ok((verdicts.get(reason) ?? 0) > 0, `no random packet gave ${reason}`);
    }
  });

  test('a Uint8Array that is not a Buffer decodes like the same bytes in a Buffer', () => {
    const rand = prng(7);
    for (let i = 0; i < 200; i++) {
      const packet = randomPacket(rand);
      const view = new Uint8Array(packet.buffer.slice(packet.byteOffset, packet.byteOffset + packet.length));
      assert.deepEqual(summary(decodeSubscription(view)), summary(decodeSubscription(packet)));
    }
  });
});
