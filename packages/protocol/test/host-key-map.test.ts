import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostKeyMap } from '../src/index.js';

test('a HostKeyMap agrees with a Map on random set/delete/get sequences', () => {
  let seed = 7;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  const sharded = new HostKeyMap<number>();
  const plain = new Map<string, number>();
  for (let i = 0; i < 50_000; i++) {
    const key = `h${Math.floor(rand() * 5_000)}.test`;
    const roll = rand();
    if (roll < 0.5) {
      assert.equal(sharded.set(key, i), sharded);
      plain.set(key, i);
    } else if (roll < 0.8) {
      assert.equal(sharded.delete(key), plain.delete(key));
    } else {
      assert.equal(sharded.get(key), plain.get(key));
      assert.equal(sharded.has(key), plain.has(key));
    }
    assert.equal(sharded.size, plain.size);
  }
  const byKey = (a: [string, number], b: [string, number]) => a[0].localeCompare(b[0]);
  assert.deepEqual([...sharded.entries()].sort(byKey), [...plain.entries()].sort(byKey));
  assert.deepEqual([...sharded].sort(byKey), [...plain.entries()].sort(byKey));
  assert.deepEqual([...sharded.keys()].sort(), [...plain.keys()].sort());
  assert.deepEqual(
    [...sharded.values()].sort((a, b) => a - b),
    [...plain.values()].sort((a, b) => a - b),
  );
  sharded.clear();
  assert.equal(sharded.size, 0);
  assert.equal(sharded.get('h1.test'), undefined);
});

test('keys spread over many shards: no shard holds most of them', () => {
  const map = new HostKeyMap<number>();
  for (let i = 0; i < 10_000; i++) map.set(`h${i}.example.com`, i);
  // Iteration is shard by shard; a shard boundary shows as a break in the key order. Count the longest
  // run of keys inserted in order: with 256 shards it is short.
  let longest = 0;
  let run = 0;
  let previous = -1;
  for (const value of map.values()) {
    run = value > previous ? run + 1 : 1;
    longest = Math.max(longest, run);
    previous = value;
  }
  assert.ok(longest < 500, `a shard holds at least ${longest} of 10 000 keys`);
});
