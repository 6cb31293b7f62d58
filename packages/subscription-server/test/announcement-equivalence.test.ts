/**
 * parseAnnouncement checks the optional fields by hand; the zod schema in announcement-schema.ts is
 * the specification. This file keeps the schema-based validator (as parseAnnouncement was first
 * written) and requires both to give the same verdict, reason and values on random packets.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeSubscription, encodeSubscription, parseHostKey, type SubscriptionPacket } from '@switchyard/protocol';
import {
  type Announcement,
  type AnnouncementResult,
  type DropReason,
  OPTIONAL_FIELD_NAMES,
  type OptionalFieldName,
  OptionalFieldsSchema,
  parseAnnouncement,
  parseNodeAddress,
} from '../src/index.js';

/** The reference: every rule through the zod schema, in the documented order. */
function referenceParse(packet: SubscriptionPacket): AnnouncementResult {
  const drop = (reason: DropReason, detail: string): AnnouncementResult => ({ ok: false, reason, detail });
  const fields = packet.fields;
  for (const [name, value] of fields) {
    if (/[\u0000-\u001f\u007f]/.test(name)) return drop('bad-field', 'control byte in a name');
    if (/[\r\n\0]/.test(value)) return drop('bad-field', 'CR, LF or NUL');
  }
  const rawKey = fields.get('key');
  if (rawKey === undefined || rawKey.length === 0) return drop('missing-key', '');
  if (Buffer.byteLength(rawKey, 'utf8') > 255) return drop('key-too-long', '');
  const hostKey = parseHostKey(rawKey, { allowWildcard: true });
  if (hostKey === undefined) return drop('bad-key', '');
  const rawAddress = fields.get('address');
  if (rawAddress === undefined || rawAddress.length === 0) return drop('missing-address', '');
  const address = parseNodeAddress(rawAddress);
  if (!address.ok) return drop('bad-address', address.detail);
  const names = new Set<string>(OPTIONAL_FIELD_NAMES);
  const known: Partial<Record<OptionalFieldName, string>> = {};
  const extra = Object.create(null) as Record<string, string>;
  for (const [name, value] of fields) {
    if (name === 'key' || name === 'address') continue;
    if (names.has(name)) {
      if (value.length > 0) known[name as OptionalFieldName] = value;
    } else {
      extra[name] = value;
    }
  }
  const parsed = OptionalFieldsSchema.safeParse(known);
  if (!parsed.success) return drop('bad-field', String(parsed.error.issues[0]?.path[0]));
  const f = parsed.data;
  return {
    ok: true,
    value: {
      command: packet.command,
      key: hostKey.key,
      address: address.value.address,
      protocol: f.proto !== undefined && (f.proto[0] === 'h' || f.proto[0] === 'H') ? 'http' : 'uwsgi',
      weight: f.weight === undefined || f.weight === 0 ? 1 : f.weight,
      modifier1: f.modifier1 ?? 0,
      modifier2: f.modifier2 ?? 0,
      cores: f.cores ?? 0,
      load: f.load ?? 0,
      backup: f.backup ?? 0,
      algo: f.algo,
      notify: f.notify,
      sniKey: f.sni_key,
      sniCrt: f.sni_crt,
      sniCa: f.sni_ca,
      unix: f.unix,
      vassal: f.vassal,
      clear: f.clear === '1',
      extra,
    },
  };
}

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

const NUMBERS = [
  '',
  '0',
  '1',
  '7',
  '00',
  '255',
  '256',
  '999',
  '1000',
  '1001',
  '4294967295',
  '4294967296',
  '-1',
  '+1',
  ' 1',
  '1 ',
  '1.0',
  '1e3',
  '0x10',
  'ten',
  '0000000000000001',
  '00000000000000001',
  '9007199254740991',
  '9007199254740992',
  '9999999999999999',
  '١',
  '٣',
];
const STRINGS = [
  '',
  'a',
  'http',
  'HTTP',
  'h',
  'uwsgi',
  '1http',
  'ht/tp',
  'wrr',
  'lrc',
  'WRR',
  'hash-header:X-User',
  'hash-header:',
  'hash-header:X User',
  'a:b:c',
  'x'.repeat(32),
  'x'.repeat(33),
  `a:${'t'.repeat(64)}`,
  `a:${'t'.repeat(65)}`,
  '/tmp/n.sock',
  'é'.repeat(51),
  'é'.repeat(50),
  '€'.repeat(34),
  '€'.repeat(33),
  'x'.repeat(101),
  'x'.repeat(102),
  'x'.repeat(255),
  'x'.repeat(256),
  'x'.repeat(1024),
  'x'.repeat(1025),
  '€'.repeat(341),
  '€'.repeat(342),
  '😀'.repeat(25),
  '😀'.repeat(26),
  '0',
  '1',
  'yes',
  'a\tb',
  'a\u007fb',
];
const KEYS = [
  'app.test',
  'App.Test.',
  '.example.com',
  'a..b',
  'x:80',
  'x:0',
  'exa mple',
  '',
  'é.test',
  `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}`,
  `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}:80`,
  'é'.repeat(128),
  'é'.repeat(127),
];
const ADDRESSES = [
  '127.0.0.1:3031',
  ':3031',
  '[::1]:80',
  '/run/a.sock',
  '@abs',
  'Node.Example:80',
  '010.0.0.1:1',
  '127.0.0.1',
  '',
];

function randomFields(rand: () => number): [string, string][] {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const out: [string, string][] = [];
  if (rand() < 0.95) out.push(['key', pick(KEYS)]);
  if (rand() < 0.95) out.push(['address', pick(ADDRESSES)]);
  for (const name of OPTIONAL_FIELD_NAMES) {
    if (rand() < 0.25) out.push([name, rand() < 0.5 ? pick(NUMBERS) : pick(STRINGS)]);
  }
  if (rand() < 0.2) out.push(['inactive', pick(NUMBERS)]);
  if (rand() < 0.03) out.push(['x\u0001', '1']);
  if (rand() < 0.03) out.push(['note', 'a\nb']);
  // Shuffle: the order of fields must not change the verdict's reason (except step 1, first in order).
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function verdict(result: AnnouncementResult): unknown {
  if (!result.ok) return { ok: false, reason: result.reason };
  const { extra, ...rest } = result.value as Announcement;
  return { ok: true, ...rest, extra: Object.entries(extra) };
}

describe('hand-written announcement validation', () => {
  test('agrees with the zod schema on 20 000 random packets', () => {
    const rand = prng(0xa11ce);
    const seen = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      const fields = randomFields(rand);
      const decoded = decodeSubscription(encodeSubscription(rand() < 0.8 ? 'subscribe' : 'unsubscribe', fields));
      assert.ok(decoded.ok);
      const fast = parseAnnouncement(decoded.value);
      const reference = referenceParse(decoded.value);
      assert.deepEqual(verdict(fast), verdict(reference), JSON.stringify(fields));
      const v = fast.ok ? 'ok' : fast.reason;
      seen.set(v, (seen.get(v) ?? 0) + 1);
    }
    for (const v of ['ok', 'bad-field', 'missing-key', 'bad-key', 'key-too-long', 'missing-address', 'bad-address']) {
      assert.ok((seen.get(v) ?? 0) > 20, `only ${seen.get(v) ?? 0} random packets gave ${v}`);
    }
  });

  test('every optional field rejects each kind of bad value the schema rejects', () => {
    for (const name of OPTIONAL_FIELD_NAMES) {
      for (const value of [...NUMBERS, ...STRINGS]) {
        const fields: [string, string][] = [
          ['key', 'app.test'],
          ['address', '127.0.0.1:1'],
          [name, value],
        ];
        const decoded = decodeSubscription(encodeSubscription('subscribe', fields));
        assert.ok(decoded.ok);
        assert.deepEqual(
          verdict(parseAnnouncement(decoded.value)),
          verdict(referenceParse(decoded.value)),
          `${name}=${value}`,
        );
      }
    }
  });

  test('an announcement without unknown fields shares the one frozen empty extra', () => {
    const a = decodeSubscription(
      encodeSubscription('subscribe', [
        ['key', 'a.test'],
        ['address', ':1'],
      ]),
    );
    const b = decodeSubscription(
      encodeSubscription('subscribe', [
        ['key', 'b.test'],
        ['address', ':2'],
      ]),
    );
    assert.ok(a.ok && b.ok);
    const pa = parseAnnouncement(a.value);
    const pb = parseAnnouncement(b.value);
    assert.ok(pa.ok && pb.ok);
    assert.equal(pa.value.extra, pb.value.extra);
    assert.ok(Object.isFrozen(pa.value.extra));
    assert.equal(Object.getPrototypeOf(pa.value.extra), null);
  });
});
