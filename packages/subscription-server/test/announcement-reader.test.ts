/**
 * readCommonAnnouncement (the intake fast path) must either decline a datagram or give exactly what
 * decodeSubscription + parseAnnouncement give. Random datagrams built from the common fields, with
 * mutations that hit every way out of the fast path.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeSubscription, encodePacket, encodeVars } from '@switchyard/protocol';
import { parseAnnouncement } from '../src/announcement.js';
import { readCommonAnnouncement } from '../src/announcement-reader.js';

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

const KEYS = [
  'app.test',
  'App.Test.',
  '.wild.test',
  'a..b',
  'x:80',
  'x:0',
  'a/b',
  '',
  'é.test',
  'a b',
  'a\rb',
  'x:65536',
];
const ADDRESSES = [
  '127.0.0.1:3031',
  ':3031',
  '[::1]:80',
  '/run/a.sock',
  '@abs',
  'N.Example:80',
  '010.0.0.1:1',
  '1.2.3.4',
  '',
  '1.2.3.4:08',
];
const NUMBERS = [
  '',
  '0',
  '1',
  '255',
  '256',
  '1000',
  '1001',
  '4294967295',
  '4294967296',
  '-1',
  '1.5',
  'x',
  '00000000000000001',
  '0000000000000001',
];
const PROTOS = ['', 'http', 'HTTP', 'uwsgi', 'h', '1h', 'ht/tp', 'x'.repeat(32), 'x'.repeat(33)];
const OTHER = ['algo', 'notify', 'sign', 'sig', 'inactive', 'unix', 'clear', 'sni_crt', 'vassal', 'kEy'];

function randomDatagram(rand: () => number): Buffer {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const pairs: [string, string][] = [];
  if (rand() < 0.97) pairs.push(['key', rand() < 0.6 ? `h${Math.floor(rand() * 1000)}.test` : pick(KEYS)]);
  if (rand() < 0.97)
    pairs.push(['address', rand() < 0.6 ? `10.0.0.${Math.floor(rand() * 256)}:3031` : pick(ADDRESSES)]);
  for (const name of ['modifier1', 'modifier2', 'cores', 'load', 'weight', 'backup']) {
    if (rand() < 0.5) pairs.push([name, rand() < 0.7 ? String(Math.floor(rand() * 300)) : pick(NUMBERS)]);
  }
  if (rand() < 0.3) pairs.push(['proto', pick(PROTOS)]);
  if (rand() < 0.1) pairs.push([pick(OTHER), '1']);
  if (rand() < 0.05) pairs.push(['weight', '2']);
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [pairs[i], pairs[j]] = [pairs[j]!, pairs[i]!];
  }
  let body = encodeVars(pairs);
  if (rand() < 0.05 && body.length > 0) body = body.subarray(0, Math.floor(rand() * body.length));
  const datagram = encodePacket(224, rand() < 0.8 ? 0 : 1, body);
  if (rand() < 0.05 && datagram.length > 4)
    datagram[4 + Math.floor(rand() * (datagram.length - 4))] = 0x80 + Math.floor(rand() * 128);
  return datagram;
}

describe('intake fast path', () => {
  test('on 30 000 random datagrams it declines or agrees exactly with the general path', () => {
    const rand = prng(0xfa57);
    let taken = 0;
    let declinedValid = 0;
    for (let i = 0; i < 30_000; i++) {
      const datagram = randomDatagram(rand);
      const fast = readCommonAnnouncement(datagram);
      const decoded = decodeSubscription(datagram);
      const general = decoded.ok ? parseAnnouncement(decoded.value) : undefined;
      if (fast === undefined) {
        if (general?.ok === true) declinedValid++;
        continue;
      }
      taken++;
      assert.ok(
        decoded.ok && general?.ok,
        `fast path accepted what the general path refuses: ${datagram.toString('hex')}`,
      );
      assert.deepEqual(fast.announcement, general.value, datagram.toString('hex'));
      assert.ok(Object.isFrozen(fast.announcement));
      assert.equal(fast.packet.command, decoded.value.command);
      assert.deepEqual([...fast.packet.fields], [...decoded.value.fields]);
      assert.equal(fast.packet.raw, datagram);
      assert.equal(fast.packet.signature, undefined);
      assert.equal(fast.packet.sig, undefined);
    }
    // The fast path must carry most valid packets of the common shape, or it is not worth having.
    assert.ok(taken > 5_000, `fast path taken ${taken} times`);
    assert.ok(declinedValid > 100, `valid packets declined: ${declinedValid} (the general path must see some)`);
  });

  test('the packet uWSGI 2.0 nodes refresh with takes the fast path', () => {
    const datagram = encodePacket(
      224,
      0,
      encodeVars([
        ['key', 'example.com'],
        ['address', '127.0.0.1:13032'],
        ['modifier1', '0'],
        ['modifier2', '0'],
        ['cores', '4'],
        ['load', '0'],
        ['weight', '0'],
      ]),
    );
    const fast = readCommonAnnouncement(datagram);
    assert.equal(fast?.announcement.key, 'example.com');
    assert.equal(fast?.announcement.weight, 1);
    assert.equal(fast?.announcement.cores, 4);
  });
});
