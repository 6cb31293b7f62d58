import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { SubscriptionRegistry, type TableEvent } from '@switchyard/subscription-server';
import { pino } from 'pino';
import { TableChangeLog } from '../src/table-change-log.js';

/** A pino logger writing JSON lines into an array, synchronously. */
function memoryLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.length > 0) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: pino({ level: 'info' }, stream) };
}

/** Real table events from a registry (so the test follows the registry's event shapes). */
function events(count: number): TableEvent[] {
  const registry = new SubscriptionRegistry({ maxHosts: count + 1 });
  const out: TableEvent[] = [];
  registry.onEvent((e) => out.push(e));
  for (let i = 0; i < count; i++) {
    registry.apply({
      command: 'subscribe',
      key: `h${i}.test`,
      address: '127.0.0.1:1',
      protocol: 'uwsgi',
      weight: 1,
      modifier1: 0,
      modifier2: 0,
      cores: 0,
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
      extra: {},
    });
  }
  return out;
}

const flushed = () => new Promise((resolve) => setImmediate(resolve));

test('the first changes of a second are logged one by one and the rest as one summary line', async () => {
  const { lines, logger } = memoryLogger();
  const clock = { now: 5_000 };
  const log = new TableChangeLog(logger, () => clock.now, 3);
  for (const event of events(10)) log.record(event);
  await flushed();
  assert.equal(lines.length, 3);
  assert.deepEqual(
    lines.map((l) => [l.msg, l.event, l.host]),
    [
      ['node added', 'added', 'h0.test'],
      ['node added', 'added', 'h1.test'],
      ['node added', 'added', 'h2.test'],
    ],
  );
  clock.now += 1_000; // the next second: the summary comes first, then individual lines again
  for (const event of events(1)) log.record(event);
  await flushed();
  assert.equal(lines[3]?.msg, 'table changes not logged one by one');
  assert.equal(lines[3]?.notLogged, 7);
  assert.deepEqual(lines[3]?.byEvent, { added: 7 });
  assert.equal(lines[4]?.msg, 'node added');
  log.close();
  log.close();
  await flushed();
  assert.equal(lines.length, 5);
});

test('a summary is written within a second even when no further change comes', async () => {
  const { lines, logger } = memoryLogger();
  const log = new TableChangeLog(logger, () => 1_000, 1);
  for (const event of events(4)) log.record(event);
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  assert.deepEqual(
    lines.map((l) => l.msg),
    ['node added', 'table changes not logged one by one'],
  );
  assert.equal(lines[1]?.notLogged, 3);
});

test('refreshes are never logged', async () => {
  const { lines, logger } = memoryLogger();
  const log = new TableChangeLog(logger, () => 0, 5);
  const [added] = events(1);
  log.record({ type: 'refreshed', node: added!.node });
  log.close();
  await flushed();
  assert.equal(lines.length, 0);
});
