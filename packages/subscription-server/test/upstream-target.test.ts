import assert from 'node:assert/strict';
import { test } from 'node:test';
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
