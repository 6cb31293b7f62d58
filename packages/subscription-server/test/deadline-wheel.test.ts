import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeadlineWheel, type WheelItem } from '../src/deadline-wheel.js';

interface Item extends WheelItem {
  readonly name: string;
}

const item = (name: string): Item => ({ name, wheelToken: 0 });

function drain(wheel: DeadlineWheel<Item>, now: number): string[] {
  const out: string[] = [];
  for (let next = wheel.pollDue(now); next !== undefined; next = wheel.pollDue(now)) out.push(next.name);
  return out;
}

test('items come out only once their deadline is strictly in the past', () => {
  const wheel = new DeadlineWheel<Item>(1_000);
  wheel.schedule(item('a'), 1_500);
  assert.deepEqual(drain(wheel, 1_500), []);
  assert.deepEqual(drain(wheel, 1_501), ['a']);
  assert.deepEqual(drain(wheel, 10_000), []);
});

test('buckets created out of order are still polled earliest first', () => {
  const wheel = new DeadlineWheel<Item>(100);
  wheel.schedule(item('late'), 5_000);
  wheel.schedule(item('middle'), 3_000);
  wheel.schedule(item('early'), 1_000);
  assert.deepEqual(drain(wheel, 3_500), ['early', 'middle']);
  assert.deepEqual(drain(wheel, 6_000), ['late']);
});

test('a rescheduled item leaves a stale entry that is skipped and freed', () => {
  const wheel = new DeadlineWheel<Item>(1_000);
  const a = item('a');
  wheel.schedule(a, 1_000);
  wheel.schedule(a, 9_000);
  assert.equal(wheel.entryCount, 2);
  assert.deepEqual(drain(wheel, 5_000), []);
  assert.equal(wheel.entryCount, 1);
  assert.deepEqual(drain(wheel, 9_001), ['a']);
  assert.equal(wheel.entryCount, 0);
});

test('a cancelled item never comes out', () => {
  const wheel = new DeadlineWheel<Item>(1_000);
  const a = item('a');
  wheel.schedule(a, 1_000);
  DeadlineWheel.cancel(a);
  assert.deepEqual(drain(wheel, 5_000), []);
});

test('moving an item to another wheel unschedules it from the first', () => {
  const first = new DeadlineWheel<Item>(1_000);
  const second = new DeadlineWheel<Item>(1_000);
  const a = item('a');
  first.schedule(a, 1_000);
  second.schedule(a, 2_000);
  assert.deepEqual(drain(first, 5_000), []);
  assert.deepEqual(drain(second, 5_000), ['a']);
});

test('with a clock that stepped back, an item is late by at most one bucket, never early', () => {
  const wheel = new DeadlineWheel<Item>(1_000);
  wheel.schedule(item('scheduled-first'), 1_900);
  wheel.schedule(item('scheduled-after-step-back'), 1_100);
  assert.deepEqual(drain(wheel, 1_500), []);
  assert.deepEqual(drain(wheel, 2_000), ['scheduled-first', 'scheduled-after-step-back']);
});

test('clear() drops every entry and unschedules the items', () => {
  const wheel = new DeadlineWheel<Item>(1_000);
  const a = item('a');
  wheel.schedule(a, 1_000);
  wheel.clear();
  assert.equal(wheel.entryCount, 0);
  assert.equal(a.wheelToken, 0);
  assert.deepEqual(drain(wheel, 5_000), []);
});
