import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BoundedLru } from '../src/bounded-lru.js';
import { NodeAddressCache } from '../src/node-address-cache.js';

test('equal addresses share one parsed target object', () => {
  const cache = new NodeAddressCache(64);
  const first = ['10.0.0.7', '3031'].join(':');
  const second = ['10.0.0.7', '3031'].join(':');
  assert.equal(cache.intern(first), first);
  assert.equal(cache.intern(second), first); // the first string is handed out for both
  const target = cache.target(second);
  assert.deepEqual(target, { kind: 'tcp', host: '10.0.0.7', port: 3031 });
  assert.equal(cache.target(first), target);
});

test('an invalid address has no target, and a full table still answers every address correctly', () => {
  const cache = new NodeAddressCache(4);
  assert.equal(cache.target('not an address'), undefined);
  for (let i = 1; i <= 200; i++) {
    assert.deepEqual(cache.target(`127.0.0.1:${i}`), { kind: 'tcp', host: '127.0.0.1', port: i });
    assert.equal(cache.intern(`/run/${i}.sock`), `/run/${i}.sock`);
  }
  assert.deepEqual(cache.target('/run/a.sock'), { kind: 'unix', path: '/run/a.sock' });
});

test('an LRU read of its newest key keeps the order right for later evictions', () => {
  const lru = new BoundedLru<string, number>(2);
  lru.set('a', 1);
  lru.set('b', 2);
  assert.equal(lru.get('b'), 2); // newest: no reordering needed
  assert.equal(lru.get('a'), 1); // a becomes newest, b oldest
  assert.equal(lru.get('a'), 1);
  lru.set('c', 3); // evicts b
  assert.equal(lru.peek('b'), undefined);
  assert.equal(lru.peek('a'), 1);
  lru.delete('c');
  assert.equal(lru.get('a'), 1);
  lru.set('d', 4); // a, d
  lru.set('e', 5); // evicts a
  assert.equal(lru.peek('a'), undefined);
  assert.equal(lru.evictions, 2);
});
