import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BUDGET_SPENT, ExpiryWheel, NONE_DUE } from '../src/expiry-wheel.js';

/** A tiny owner: per-slot token and deadline, as the registry's columns would hold them. */
function owner() {
  const tokens = new Map<number, number>();
  const deadlines = new Map<number, number>();
  return {
    tokens,
    deadlines,
    token: (slot: number) => tokens.get(slot) ?? 0,
    deadline: (slot: number) => deadlines.get(slot) ?? Number.NaN,
    /** Schedules `slot` at `deadline` with a fresh token, as the registry does. */
    put(wheel: ExpiryWheel, slot: number, deadline: number) {
      const token = (tokens.get(slot) ?? 0) + 1;
      tokens.set(slot, token);
      deadlines.set(slot, deadline);
      wheel.schedule(slot, token, deadline);
    },
  };
}

function drain(wheel: ExpiryWheel, now: number): number[] {
  const out: number[] = [];
  for (let slot = wheel.pollDue(now); slot !== NONE_DUE; slot = wheel.pollDue(now)) out.push(slot);
  return out;
}

test('a slot comes out only once its deadline is strictly in the past', () => {
  const o = owner();
  const wheel = new ExpiryWheel(100, o);
  o.put(wheel, 1, 1_000);
  assert.deepEqual(drain(wheel, 1_000), []);
  assert.deepEqual(drain(wheel, 1_001), [1]);
  assert.deepEqual(drain(wheel, 5_000), []);
  assert.equal(wheel.entryCount, 0);
});

test('buckets created out of order are polled earliest first', () => {
  const o = owner();
  const wheel = new ExpiryWheel(100, o);
  o.put(wheel, 3, 3_000);
  o.put(wheel, 1, 1_000);
  o.put(wheel, 2, 2_000);
  assert.deepEqual(drain(wheel, 10_000), [1, 2, 3]);
});

test('a slot whose deadline moved later is re-armed, not expired, and keeps one entry', () => {
  const o = owner();
  const wheel = new ExpiryWheel(100, o);
  o.put(wheel, 1, 1_000);
  o.deadlines.set(1, 5_000); // a refresh: only the owner's deadline moves
  assert.deepEqual(drain(wheel, 2_000), []);
  assert.equal(wheel.entryCount, 1);
  assert.deepEqual(drain(wheel, 5_000), []);
  assert.deepEqual(drain(wheel, 5_001), [1]);
});

test('an entry whose token moved on is stale: skipped and freed', () => {
  const o = owner();
  const wheel = new ExpiryWheel(100, o);
  o.put(wheel, 1, 1_000);
  o.put(wheel, 1, 3_000); // rescheduled: the first entry is stale
  assert.equal(wheel.entryCount, 2);
  assert.deepEqual(drain(wheel, 2_000), []);
  assert.equal(wheel.entryCount, 1);
  o.tokens.set(1, 99); // released by its owner
  assert.deepEqual(drain(wheel, 10_000), []);
  assert.equal(wheel.entryCount, 0);
});

test('a slot moved to another wheel comes out of that one only', () => {
  const o = owner();
  const active = new ExpiryWheel(100, o);
  const draining = new ExpiryWheel(100, o);
  o.put(active, 1, 1_000);
  o.put(draining, 1, 2_000);
  assert.deepEqual(drain(active, 10_000), []);
  assert.deepEqual(drain(draining, 10_000), [1]);
});

test('polling examines stale entries within the budget and says when it ran out', () => {
  const o = owner();
  const wheel = new ExpiryWheel(100, o);
  for (let slot = 0; slot < 100; slot++) o.put(wheel, slot, 1_000);
  for (let slot = 0; slot < 100; slot++) o.tokens.set(slot, -1);
  o.put(wheel, 500, 1_050);
  const before = wheel.examined;
  assert.equal(wheel.pollDue(2_000, 10), BUDGET_SPENT);
  assert.equal(wheel.examined - before, 10);
  let result = BUDGET_SPENT;
  while (result === BUDGET_SPENT) result = wheel.pollDue(2_000, 10);
  assert.equal(result, 500);
});

test('entries span many chunks and come out in order within a bucket', () => {
  const o = owner();
  const wheel = new ExpiryWheel(1_000, o);
  for (let slot = 0; slot < 5_000; slot++) o.put(wheel, slot, 1_000 + slot / 10);
  const out = drain(wheel, 2_000);
  assert.equal(out.length, 5_000);
  assert.deepEqual(out.slice(0, 3), [0, 1, 2]);
  assert.equal(out.at(-1), 4_999);
  // Chunks came back to the pool: a second round reuses them.
  for (let slot = 0; slot < 5_000; slot++) o.put(wheel, slot, 3_000);
  assert.equal(drain(wheel, 4_000).length, 5_000);
  assert.equal(wheel.entryCount, 0);
});

test('with a clock that stepped back, a slot is late by at most one bucket, never early', () => {
  const o = owner();
  const wheel = new ExpiryWheel(1_000, o);
  o.put(wheel, 1, 5_900);
  o.put(wheel, 2, 5_100); // scheduled after 1 with an earlier deadline: same bucket, behind it
  assert.deepEqual(drain(wheel, 5_500), []); // 2 is due but waits behind 1
  assert.deepEqual(drain(wheel, 5_901), [1, 2]);
});

test('clear() drops every entry', () => {
  const o = owner();
  const wheel = new ExpiryWheel(100, o);
  for (let slot = 0; slot < 10; slot++) o.put(wheel, slot, 1_000 * slot);
  wheel.clear();
  assert.equal(wheel.entryCount, 0);
  assert.deepEqual(drain(wheel, 100_000), []);
});

test('a non-positive bucket width is refused', () => {
  assert.throws(() => new ExpiryWheel(0, owner()), RangeError);
});
