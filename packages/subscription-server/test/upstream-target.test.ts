import assert from 'node:assert/strict';
import { isIPv4 } from 'node:net';
import { describe, test } from 'node:test';
import { formatUpstreamTarget, parseNodeAddress, parseUpstreamTarget } from '../src/index.js';

test('an IPv4 address becomes a tcp target', () => {
  assert.deepEqual(parseUpstreamTarget('127.0.0.1:3031'), { kind: 'tcp', host: '127.0.0.1', port: 3031 });
});

test('an empty host becomes 0.0.0.0 as in uWSGI', () => {
  assert.deepEqual(parseUpstreamTarget(':3031'), { kind: 'tcp', host: '0.0.0.0', port: 3031 });
});

test('an IPv6 target host carries no brackets', () => {
  assert.deepEqual(parseUpstreamTarget('[::1]:8080'), { kind: 'tcp', host: '::1', port: 8080 });
});

test('a host name target is lowercased', () => {
  assert.deepEqual(parseUpstreamTarget('App.Internal:80'), { kind: 'tcp', host: 'app.internal', port: 80 });
});

test('a unix socket path is kept verbatim and an abstract name gets a leading NUL', () => {
  assert.deepEqual(parseUpstreamTarget('/run/app.sock'), { kind: 'unix', path: '/run/app.sock' });
  assert.deepEqual(parseUpstreamTarget('./app.sock'), { kind: 'unix', path: './app.sock' });
  assert.deepEqual(parseUpstreamTarget('@app'), { kind: 'unix', path: '\0app' });
});

test('an invalid address has no target', () => {
  assert.equal(parseUpstreamTarget('nope'), undefined);
  assert.equal(parseUpstreamTarget('1.2.3.4:0'), undefined);
  assert.equal(parseUpstreamTarget(''), undefined);
});

test('formatting a parsed target gives back the normalised address', () => {
  for (const input of ['127.0.0.1:3031', ':3031', '[2001:DB8::1]:80', 'Host.Example:81', '/a.sock', '@abs']) {
    const parsed = parseNodeAddress(input);
    assert.ok(parsed.ok);
    assert.equal(formatUpstreamTarget(parsed.value.target), parsed.value.address);
  }
});

test('the normalised address and target are frozen', () => {
  const parsed = parseNodeAddress('127.0.0.1:1');
  assert.ok(parsed.ok);
  assert.ok(Object.isFrozen(parsed.value));
  assert.ok(Object.isFrozen(parsed.value.target));
});

describe('hand-written address scanning', () => {
  /** The first, regex-based definition of the IPv4 and port rules. */
  function reference(raw: string): string | undefined {
    if (raw.length === 0 || Buffer.byteLength(raw) > 255 || /[\u0000-\u001f\u007f]/.test(raw)) return undefined;
    if (raw.startsWith('/') || raw.startsWith('./') || raw.startsWith('@') || raw.startsWith('[')) return 'other';
    const colon = raw.lastIndexOf(':');
    if (colon < 0) return undefined;
    const host = raw.slice(0, colon);
    const portText = raw.slice(colon + 1);
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) return undefined;
    const port = Number(portText);
    if (host.length === 0) return `0.0.0.0:${port}`;
    if (host.includes(':')) return undefined;
    if (/^[0-9.]+$/.test(host)) {
      const parts = host.split('.');
      const strict =
        isIPv4(host) && parts.length === 4 && parts.every((p) => /^(?:0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
      return strict ? `${host}:${port}` : undefined;
    }
    return 'other';
  }

  test('IPv4 and port parsing agree with the regex definition on random text', () => {
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const alphabet = ['0', '1', '2', '5', '9', '.', ':', '25', '255', '256', '00', '010', '\t', 'a', '65535', '65536'];
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      let text = '';
      const n = 1 + Math.floor(rand() * 10);
      for (let j = 0; j < n; j++) text += alphabet[Math.floor(rand() * alphabet.length)];
      if (rand() < 0.5) text = `${[0, 0, 0, 0].map(() => Math.floor(rand() * 300)).join('.')}:${text}`;
      const want = reference(text);
      if (want === 'other') continue;
      const got = parseNodeAddress(text);
      assert.equal(got.ok ? got.value.address : undefined, want, JSON.stringify(text));
      if (got.ok) accepted++;
    }
    assert.ok(accepted > 500, `only ${accepted} accepted`);
  });
});
