import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeSubscription, encodeSubscription, type SubscriptionCommand } from '@switchyard/protocol';
import { type Announcement, type DropReason, parseAnnouncement } from '../src/index.js';

function announce(fields: Record<string, string>, command: SubscriptionCommand = 'subscribe') {
  const decoded = decodeSubscription(encodeSubscription(command, Object.entries(fields)));
  assert.ok(decoded.ok, 'test packet must decode');
  return parseAnnouncement(decoded.value);
}

function accepted(fields: Record<string, string>, command: SubscriptionCommand = 'subscribe'): Announcement {
  const result = announce(fields, command);
  assert.ok(result.ok, result.ok ? '' : `expected acceptance, got ${result.reason}`);
  return result.value;
}

function fromHex(dump: string): Buffer {
  const bytes = dump
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .flatMap((line) => line.split(/\s+/).slice(1, 17));
  return Buffer.from(bytes.join(''), 'hex');
}

const BASE = { key: 'example.com', address: '127.0.0.1:3031' } as const;

describe('captured uWSGI 2.0.21 packets', () => {
  test('the plain --subscribe-to packet (a) decodes into a subscribe with uWSGI defaults', () => {
    const raw = fromHex(`
      0000  e0 66 00 00 03 00 6b 65 79 0b 00 65 78 61 6d 70
      0010  6c 65 2e 63 6f 6d 07 00 61 64 64 72 65 73 73 0f
      0020  00 31 32 37 2e 30 2e 30 2e 31 3a 31 33 30 33 32
      0030  09 00 6d 6f 64 69 66 69 65 72 31 01 00 30 09 00
      0040  6d 6f 64 69 66 69 65 72 32 01 00 30 05 00 63 6f
      0050  72 65 73 01 00 34 04 00 6c 6f 61 64 01 00 30 06
      0060  00 77 65 69 67 68 74 01 00 30`);
    assert.equal(raw.length, 106);
    const decoded = decodeSubscription(raw);
    assert.ok(decoded.ok);
    const result = parseAnnouncement(decoded.value);
    assert.ok(result.ok);
    const { extra, ...rest } = result.value;
    assert.deepEqual(rest, {
      command: 'subscribe',
      key: 'example.com',
      address: '127.0.0.1:13032',
      protocol: 'uwsgi',
      weight: 1, // sent as "0": uWSGI turns 0 into 1
      modifier1: 0,
      modifier2: 0,
      cores: 4,
      load: 0,
      backup: 0,
      algo: undefined,
      notify: undefined,
      sniKey: undefined,
      sniCrt: undefined,
      sniCa: undefined,
      unix: undefined,
      vassal: undefined,
      clear: false,
    });
    assert.deepEqual(Object.keys(extra), []);
  });

  test('the SIGINT unsubscribe packet (b) decodes into an unsubscribe keeping the port in the key', () => {
    // Rows 0020-0050 are not printed in the reference; they are rebuilt from the stated fields and
    // checked against the printed rows 0000, 0010, 0060 and 0070.
    const raw = fromHex(`
      0000  e0 6f 00 01 03 00 6b 65 79 14 00 61 70 69 2e 65
      0010  78 61 6d 70 6c 65 2e 63 6f 6d 3a 38 30 38 30 07
      0020  00 61 64 64 72 65 73 73 0f 00 31 32 37 2e 30 2e
      0030  30 2e 31 3a 31 33 30 33 32 09 00 6d 6f 64 69 66
      0040  69 65 72 31 01 00 30 09 00 6d 6f 64 69 66 69 65
      0050  72 32 01 00 33 05 00 63 6f 72 65 73 01 00 34 04
      0060  00 6c 6f 61 64 01 00 30 06 00 77 65 69 67 68 74
      0070  01 00 35`);
    assert.equal(raw.length, 115);
    const rebuilt = encodeSubscription('unsubscribe', [
      ['key', 'api.example.com:8080'],
      ['address', '127.0.0.1:13032'],
      ['modifier1', '0'],
      ['modifier2', '3'],
      ['cores', '4'],
      ['load', '0'],
      ['weight', '5'],
    ]);
    assert.deepEqual(rebuilt, raw);
    const decoded = decodeSubscription(raw);
    assert.ok(decoded.ok);
    const result = parseAnnouncement(decoded.value);
    assert.ok(result.ok);
    assert.equal(result.value.command, 'unsubscribe');
    assert.equal(result.value.key, 'api.example.com:8080');
    assert.equal(result.value.address, '127.0.0.1:13032');
    assert.equal(result.value.modifier2, 3);
    assert.equal(result.value.weight, 5);
    assert.equal(result.value.cores, 4);
  });

  test('the signed packet (c) yields modifier1, notify and the unix timestamp', () => {
    // First 176 bytes as captured; the remaining 116 signature bytes are not printed: zeros stand in.
    const head = fromHex(`
      0000  e0 20 01 00 03 00 6b 65 79 12 00 73 65 63 75 72
      0010  65 2e 65 78 61 6d 70 6c 65 2e 63 6f 6d 07 00 61
      0020  64 64 72 65 73 73 0f 00 31 32 37 2e 30 2e 30 2e
      0030  31 3a 31 33 30 33 33 09 00 6d 6f 64 69 66 69 65
      0040  72 31 01 00 35 09 00 6d 6f 64 69 66 69 65 72 32
      0050  01 00 30 05 00 63 6f 72 65 73 01 00 31 04 00 6c
      0060  6f 61 64 01 00 30 06 00 77 65 69 67 68 74 01 00
      0070  30 06 00 6e 6f 74 69 66 79 0f 00 31 32 37 2e 30
      0080  2e 30 2e 31 3a 31 32 37 39 39 04 00 75 6e 69 78
      0090  0a 00 31 37 39 35 35 31 38 30 33 36 04 00 73 69
      00a0  67 6e 80 00 23 05 53 e9 e8 c8 68 4c 89 ed ce 2a`);
    const raw = Buffer.concat([head, Buffer.alloc(292 - head.length)]);
    const decoded = decodeSubscription(raw);
    assert.ok(decoded.ok);
    assert.equal(decoded.value.signature?.length, 128);
    const result = parseAnnouncement(decoded.value);
    assert.ok(result.ok);
    assert.equal(result.value.key, 'secure.example.com');
    assert.equal(result.value.modifier1, 5);
    assert.equal(result.value.notify, '127.0.0.1:12799');
    assert.equal(result.value.unix, 1795518036);
    assert.equal(result.value.cores, 1);
  });
});

describe('field defaults and normalisation', () => {
  test('a packet with only key and address gets weight 1 and zero modifiers, cores, load and backup', () => {
    const a = accepted(BASE);
    assert.equal(a.weight, 1);
    assert.equal(a.modifier1, 0);
    assert.equal(a.modifier2, 0);
    assert.equal(a.cores, 0);
    assert.equal(a.load, 0);
    assert.equal(a.backup, 0);
    assert.equal(a.protocol, 'uwsgi');
    assert.equal(a.clear, false);
  });

  test('keys are normalised by the shared host normaliser', () => {
    assert.equal(accepted({ ...BASE, key: 'App.Test.' }).key, 'app.test');
    assert.equal(accepted({ ...BASE, key: 'Example.COM:8080' }).key, 'example.com:8080');
    assert.equal(accepted({ ...BASE, key: '.example.org' }).key, '.example.org');
  });

  const addressCases: [string, string][] = [
    ['127.0.0.1:13032', '127.0.0.1:13032'],
    [':3031', '0.0.0.0:3031'],
    ['[2001:DB8:0:0::1]:8080', '[2001:db8::1]:8080'],
    ['[::1]:3031', '[::1]:3031'],
    ['Backend.Example.com.:8000', 'backend.example.com:8000'],
    ['127.0.0.1:08080', '127.0.0.1:8080'],
    ['/run/app.sock', '/run/app.sock'],
    ['@app', '@app'],
    ['./app.sock', './app.sock'],
  ];
  for (const [input, expected] of addressCases) {
    test(`address ${JSON.stringify(input)} is accepted as ${JSON.stringify(expected)}`, () => {
      assert.equal(accepted({ ...BASE, address: input }).address, expected);
    });
  }

  test('weight 0 and an empty weight mean 1, weight 1000 is kept', () => {
    assert.equal(accepted({ ...BASE, weight: '0' }).weight, 1);
    assert.equal(accepted({ ...BASE, weight: '' }).weight, 1);
    assert.equal(accepted({ ...BASE, weight: '1000' }).weight, 1000);
  });

  test('proto starting with h in any case selects http, anything else uwsgi', () => {
    assert.equal(accepted({ ...BASE, proto: 'http' }).protocol, 'http');
    assert.equal(accepted({ ...BASE, proto: 'Http' }).protocol, 'http');
    assert.equal(accepted({ ...BASE, proto: 'uwsgi' }).protocol, 'uwsgi');
  });

  test('optional master fields are carried through', () => {
    const a = accepted({
      ...BASE,
      backup: '2',
      algo: 'lrc',
      sni_key: '/k.key',
      sni_crt: '/c.crt',
      sni_ca: '/ca.crt',
      vassal: 'app.ini',
      clear: '1',
      modifier1: '255',
      modifier2: '7',
      load: '3',
    });
    assert.equal(a.backup, 2);
    assert.equal(a.algo, 'lrc');
    assert.equal(a.sniKey, '/k.key');
    assert.equal(a.sniCrt, '/c.crt');
    assert.equal(a.sniCa, '/ca.crt');
    assert.equal(a.vassal, 'app.ini');
    assert.equal(a.clear, true);
    assert.equal(a.modifier1, 255);
    assert.equal(a.modifier2, 7);
    assert.equal(a.load, 3);
  });

  test('unknown fields are kept in a frozen null-prototype extra and never cause a drop', () => {
    const a = accepted({ ...BASE, inactive: '1', ['__proto__']: 'x', future: '' });
    assert.equal(Object.getPrototypeOf(a.extra), null);
    assert.ok(Object.isFrozen(a.extra));
    assert.deepEqual(Object.entries(a.extra), [
      ['inactive', '1'],
      ['__proto__', 'x'],
      ['future', ''],
    ]);
  });

  test('the announcement is frozen', () => {
    assert.ok(Object.isFrozen(accepted(BASE)));
  });

  test('an unsubscribe is validated like a subscribe', () => {
    assert.equal(accepted(BASE, 'unsubscribe').command, 'unsubscribe');
    const bad = announce({ key: 'example.com' }, 'unsubscribe');
    assert.equal(bad.ok ? 'ok' : bad.reason, 'missing-address');
  });
});

describe('invalid fields are dropped with a specific reason', () => {
  const long = (n: number) => 'a'.repeat(n);
  const cases: [string, Record<string, string>, DropReason][] = [
    ['no key', { address: BASE.address }, 'missing-key'],
    ['an empty key', { key: '', address: BASE.address }, 'missing-key'],
    [
      'a 256-byte key',
      { key: `${long(63)}.${long(63)}.${long(63)}.${long(58)}:65535`, address: BASE.address },
      'key-too-long',
    ],
    ['a key with a space', { key: 'exa mple.com', address: BASE.address }, 'bad-key'],
    ['a key with a slash', { key: 'example.com/x', address: BASE.address }, 'bad-key'],
    ['a key with an empty label', { key: 'example..com', address: BASE.address }, 'bad-key'],
    ['a key with port 0', { key: 'example.com:0', address: BASE.address }, 'bad-key'],
    ['a non-ASCII key', { key: 'exämple.com', address: BASE.address }, 'bad-key'],
    ['no address', { key: BASE.key }, 'missing-address'],
    ['an empty address', { key: BASE.key, address: '' }, 'missing-address'],
    ['an address without port', { ...BASE, address: '127.0.0.1' }, 'bad-address'],
    ['an address with port 0', { ...BASE, address: '127.0.0.1:0' }, 'bad-address'],
    ['an address with port 65536', { ...BASE, address: '127.0.0.1:65536' }, 'bad-address'],
    ['an IPv4 part above 255', { ...BASE, address: '256.0.0.1:80' }, 'bad-address'],
    ['an octal-looking IPv4 part', { ...BASE, address: '010.0.0.1:80' }, 'bad-address'],
    ['a short-form IPv4', { ...BASE, address: '127.1:80' }, 'bad-address'],
    ['an unbracketed IPv6', { ...BASE, address: '::1:80' }, 'bad-address'],
    ['a bracketed IPv6 without port', { ...BASE, address: '[::1]' }, 'bad-address'],
    ['an IPv6 zone id', { ...BASE, address: '[fe80::1%eth0]:80' }, 'bad-address'],
    ['an invalid IPv6', { ...BASE, address: '[1:2:3]:80' }, 'bad-address'],
    ['a host name with a space', { ...BASE, address: 'my host:80' }, 'bad-address'],
    ['a URL', { ...BASE, address: 'tcp://1.2.3.4:80' }, 'bad-address'],
    ['an abstract socket without name', { ...BASE, address: '@' }, 'bad-address'],
    ['a relative path without ./', { ...BASE, address: 'app.sock' }, 'bad-address'],
    ['a 256-byte address', { ...BASE, address: `/${long(255)}` }, 'bad-address'],
    ['a tab in the address', { ...BASE, address: '/tmp/a\tb' }, 'bad-address'],
    ['a NUL in the key', { key: 'example.com\0', address: BASE.address }, 'bad-field'],
    ['a CR in the address', { key: BASE.key, address: '/tmp/a\rb' }, 'bad-field'],
    ['a LF in notify', { ...BASE, notify: '/tmp/n\n' }, 'bad-field'],
    ['a LF in an unknown field', { ...BASE, whatever: 'a\nb' }, 'bad-field'],
    ['a control byte in a field name', { ...BASE, 'x\u0001': '1' }, 'bad-field'],
    ['weight 1001', { ...BASE, weight: '1001' }, 'bad-field'],
    ['a negative weight', { ...BASE, weight: '-1' }, 'bad-field'],
    ['an exponent weight', { ...BASE, weight: '1e3' }, 'bad-field'],
    ['a weight with a space', { ...BASE, weight: ' 5' }, 'bad-field'],
    ['a hex weight', { ...BASE, weight: '0x10' }, 'bad-field'],
    ['modifier1 256', { ...BASE, modifier1: '256' }, 'bad-field'],
    ['modifier2 text', { ...BASE, modifier2: 'three' }, 'bad-field'],
    ['backup 256', { ...BASE, backup: '256' }, 'bad-field'],
    ['cores above 2^32-1', { ...BASE, cores: '4294967296' }, 'bad-field'],
    ['a fractional load', { ...BASE, load: '1.5' }, 'bad-field'],
    ['a non-numeric unix timestamp', { ...BASE, unix: 'now' }, 'bad-field'],
    ['an upper-case algo', { ...BASE, algo: 'WRR' }, 'bad-field'],
    ['a 33-character algo', { ...BASE, algo: long(33) }, 'bad-field'],
    ['a proto with a slash', { ...BASE, proto: 'http/1.1' }, 'bad-field'],
    ['a 102-byte notify path', { ...BASE, notify: `/${long(101)}` }, 'bad-field'],
    ['clear=yes', { ...BASE, clear: 'yes' }, 'bad-field'],
  ];
  for (const [name, fields, reason] of cases) {
    test(`${name} is dropped as ${reason}`, () => {
      const result = announce(fields);
      assert.equal(result.ok ? 'accepted' : result.reason, reason);
    });
  }

  test('a 255-byte key and a 101-byte notify path are still accepted', () => {
    const key = `${long(63)}.${long(63)}.${long(63)}.${long(57)}:65535`;
    assert.equal(key.length, 255);
    assert.equal(accepted({ key, address: BASE.address }).key, key);
    assert.equal(accepted({ ...BASE, notify: `/${long(100)}` }).notify?.length, 101);
  });
});
