import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BadPacketError,
  type BadPacketReason,
  decodePacket,
  decodeSubscription,
  encodePacket,
  encodeSubscription,
  encodeUwsgiRequest,
  encodeVars,
  parseHostKey,
  UwsgiVarsBuilder,
} from '../src/index.js';

/** Captured from uwsgi 2.0.21 (reference: uwsgi-subscription.md §1.4 (a)). */
const CAPTURED_SUBSCRIBE = Buffer.from(
  'e066000003006b65790b006578616d706c652e636f6d07006164647265737' +
    '30f003132372e302e302e313a3133303332090' +
    '06d6f646966696572310100300900' +
    '6d6f6469666965723201003005' +
    '00636f7265730100340400' +
    '6c6f616401003006' +
    '00776569676874010030',
  'hex',
);

/** The canonical 44-byte packet from http-hardening.md §3.1. */
const CANONICAL = Buffer.from(
  'e028000003006b657908006170702e7465737407006164647265737' + '30e003132372e302e302e313a39303031',
  'hex',
);

describe('uwsgi packet codec', () => {
  test('decodes the packet a real uWSGI 2.0 node sends with --subscribe-to', () => {
    assert.equal(CAPTURED_SUBSCRIBE.length, 106);
    const result = decodeSubscription(CAPTURED_SUBSCRIBE);
    assert.ok(result.ok);
    assert.equal(result.value.command, 'subscribe');
    assert.deepEqual(Object.fromEntries(result.value.fields), {
      key: 'example.com',
      address: '127.0.0.1:13032',
      modifier1: '0',
      modifier2: '0',
      cores: '4',
      load: '0',
      weight: '0',
    });
    assert.equal(result.value.signature, undefined);
  });

  test('re-encodes the captured packet byte for byte', () => {
    const decoded = decodeSubscription(CAPTURED_SUBSCRIBE);
    assert.ok(decoded.ok);
    assert.deepEqual(encodeSubscription('subscribe', [...decoded.value.fields]), CAPTURED_SUBSCRIBE);
  });

  test('reads any non-zero modifier2 as unsubscribe, as uWSGI 2.0 does', () => {
    for (const command of [1, 2, 255]) {
      const packet = Buffer.from(CAPTURED_SUBSCRIBE);
      packet[3] = command;
      const result = decodeSubscription(packet);
      assert.ok(result.ok);
      assert.equal(result.value.command, 'unsubscribe');
    }
  });

  test('encodes the canonical key/address packet exactly', () => {
    assert.deepEqual(
      encodeSubscription('subscribe', [
        ['key', 'app.test'],
        ['address', '127.0.0.1:9001'],
      ]),
      CANONICAL,
    );
    const unsubscribe = encodeSubscription('unsubscribe', [
      ['key', 'app.test'],
      ['address', '127.0.0.1:9001'],
    ]);
    assert.equal(unsubscribe[3], 1);
    assert.deepEqual(unsubscribe.subarray(4), CANONICAL.subarray(4));
  });

  test('exposes the signed bytes before a trailing sign pair', () => {
    const body = encodeVars([
      ['key', 'secure.test'],
      ['address', '127.0.0.1:1'],
      ['unix', '1795518036'],
    ]);
    const sig = Buffer.from([1, 2, 3, 0, 255]);
    const full = encodePacket(224, 0, Buffer.concat([body, encodeVars([['sign', sig]])]));
    const result = decodeSubscription(full);
    assert.ok(result.ok);
    assert.deepEqual(result.value.signedBody, body);
    assert.deepEqual(result.value.signature, sig);
    assert.equal(result.value.fields.has('sign'), false);
  });

  test('round-trips random pairs', () => {
    for (let i = 0; i < 200; i++) {
      const pairs: [string, Buffer][] = [];
      const count = Math.floor(Math.random() * 10);
      for (let j = 0; j < count; j++) {
        pairs.push([
          `k${j}_${Math.random().toString(36).slice(2, 8)}`,
          Buffer.from(Array.from({ length: Math.floor(Math.random() * 50) }, () => Math.floor(Math.random() * 256))),
        ]);
      }
      const packet = encodePacket(7, 3, encodeVars(pairs));
      const decoded = decodePacket(packet);
      assert.ok(decoded.ok);
      assert.equal(decoded.value.modifier1, 7);
      assert.equal(decoded.value.modifier2, 3);
      assert.deepEqual(
        decoded.value.pairs.map((p) => [p.key, Buffer.from(p.value)]),
        pairs,
      );
    }
  });

  const malformed: [string, Buffer, BadPacketReason][] = [
    ['an empty datagram', Buffer.alloc(0), 'truncated-header'],
    ['three bytes', Buffer.from([224, 0, 0]), 'truncated-header'],
    ['a datasize larger than the packet', Buffer.from([224, 10, 0, 0, 1, 0]), 'size-mismatch'],
    [
      'a datasize smaller than the packet',
      Buffer.concat([Buffer.from([224, 0, 0, 0]), CANONICAL.subarray(4)]),
      'size-mismatch',
    ],
    ['a pair cut in its key length', encodePacket(224, 0, Buffer.from([3])), 'truncated-pair'],
    ['a pair cut in its key', encodePacket(224, 0, Buffer.from([3, 0, 107])), 'truncated-pair'],
    ['a pair cut in its value length', encodePacket(224, 0, Buffer.from([1, 0, 107, 5])), 'truncated-pair'],
    ['a pair cut in its value', encodePacket(224, 0, Buffer.from([1, 0, 107, 5, 0, 97])), 'truncated-pair'],
    ['an empty key', encodePacket(224, 0, Buffer.from([0, 0, 1, 0, 97])), 'empty-key'],
    [
      'a duplicate key',
      encodePacket(
        224,
        0,
        encodeVars([
          ['key', 'a'],
          ['key', 'b'],
        ]),
      ),
      'duplicate-key',
    ],
    [
      'a datagram over 4096 bytes',
      encodePacket(
        224,
        0,
        encodeVars([
          ['a', 'x'.repeat(3000)],
          ['b', 'y'.repeat(3000)],
        ]),
      ),
      'oversized-packet',
    ],
    [
      'a sign pair that is not last',
      encodePacket(
        224,
        0,
        encodeVars([
          ['sign', 'x'],
          ['key', 'a'],
        ]),
      ),
      'sign-not-last',
    ],
  ];
  for (const [name, bytes, reason] of malformed) {
    test(`rejects ${name} with SY_BAD_PACKET (${reason})`, () => {
      const result = decodeSubscription(bytes);
      assert.equal(result.ok, false);
      if (result.ok) return;
      assert.ok(result.error instanceof BadPacketError);
      assert.equal(result.error.code, 'SY_BAD_PACKET');
      assert.equal(result.error.reason, reason);
    });
  }

  test('rejects a value over the configured limit with SY_BAD_PACKET (oversized-value)', () => {
    const bytes = encodePacket(224, 0, encodeVars([['key', 'x'.repeat(300)]]));
    const result = decodeSubscription(bytes, { maxValueSize: 255 });
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.error.reason, 'oversized-value');
    assert.equal(decodeSubscription(bytes).ok, true);
  });

  test('rejects a well-formed packet whose modifier1 is not 224 as a subscription', () => {
    const result = decodeSubscription(encodePacket(0, 0, encodeVars([['key', 'a']])));
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.error.reason, 'wrong-modifier1');
  });

  test('never throws on 100k random and mutated packets', () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let ok = 0;
    for (let i = 0; i < 100_000; i++) {
      let bytes: Buffer;
      if (i % 2 === 0) {
        bytes = Buffer.alloc(rand(80));
        for (let j = 0; j < bytes.length; j++) bytes[j] = rand(256);
      } else {
        bytes = Buffer.from(i % 4 === 1 ? CAPTURED_SUBSCRIBE : CANONICAL);
        const flips = 1 + rand(4);
        for (let f = 0; f < flips; f++) bytes[rand(bytes.length)] = rand(256);
        if (rand(4) === 0) bytes = bytes.subarray(0, rand(bytes.length));
      }
      const result = decodeSubscription(bytes);
      if (result.ok) ok++;
      else assert.equal(result.error.code, 'SY_BAD_PACKET');
    }
    assert.ok(ok > 0, 'some mutations stay valid');
  });
});

describe('uwsgi request encoding', () => {
  test('writes header, vars and byte-exact latin1 values', () => {
    const b = new UwsgiVarsBuilder(8);
    b.add('REQUEST_METHOD', 'GET').add('PATH_INFO', '/caf\u00c3\u00a9').addUtf8('X', 'é');
    const packet = b.finish(0, 0);
    const decoded = decodePacket(packet);
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.value.pairs[1]!.value, Buffer.from('/café', 'utf8'));
    assert.deepEqual(decoded.value.pairs[2]!.value, Buffer.from('é', 'utf8'));
    assert.equal(packet.readUInt16LE(1), packet.length - 4);
  });

  test('refuses a vars block over 65535 bytes with SY_VARS_TOO_LARGE', () => {
    assert.throws(
      () =>
        encodeUwsgiRequest(0, 0, [
          ['A', 'x'.repeat(40_000)],
          ['B', 'y'.repeat(40_000)],
        ]),
      (error: { code?: string }) => error.code === 'SY_VARS_TOO_LARGE',
    );
  });
});

describe('host keys', () => {
  test('normalise case, a trailing dot and keep the port', () => {
    assert.deepEqual(parseHostKey('App.Test.'), { host: 'app.test', port: undefined, key: 'app.test' });
    assert.deepEqual(parseHostKey('Example.COM:8080'), { host: 'example.com', port: 8080, key: 'example.com:8080' });
    assert.deepEqual(parseHostKey('[::1]:80'), { host: '[::1]', port: 80, key: '[::1]:80' });
    assert.equal(parseHostKey('.example.org', { allowWildcard: true })?.key, '.example.org');
  });

  test('reject what is not host[:port]', () => {
    for (const bad of [
      '',
      'a b',
      'a/b',
      'a\\b',
      'a@b',
      'a..b',
      'a:99999',
      'a:',
      'a:+1',
      '.example.org',
      'é.test',
      'a\x00b',
      `${'a'.repeat(64)}.test`,
      '[::1',
      '[zz]:1',
    ]) {
      assert.equal(parseHostKey(bad), undefined, JSON.stringify(bad));
    }
  });
});
