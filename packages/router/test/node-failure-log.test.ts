/**
 * NodeFailureLog (node-failure-log.ts): failed attempts are logged at most once per node per interval,
 * each line carrying the failures not logged since the previous one. Injected clock, captured log lines.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { UpstreamError } from '../src/errors.js';
import { NodeFailureLog } from '../src/node-failure-log.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: pino({ level: 'warn' }, stream) };
}

const refused = new UpstreamError('SY_UPSTREAM_CONNECT', 'cannot connect to 10.0.0.1:3031: ECONNREFUSED', true);

/** pino writes through the stream asynchronously: let it flush. */
const flushed = () => new Promise((resolve) => setImmediate(resolve));

describe('node failure log', () => {
  test('logs a node failure at once, then at most one line per node per second with the suppressed count', async () => {
    const { lines, logger } = capture();
    let now = 1000;
    const log = new NodeFailureLog({ logger, clock: () => now });
    for (let i = 0; i < 500; i++) log.failed('app.test', '10.0.0.1:3031', refused);
    log.failed('app.test', '10.0.0.2:3031', refused);
    now += 999;
    log.failed('app.test', '10.0.0.1:3031', refused);
    now += 1;
    log.failed('app.test', '10.0.0.1:3031', refused);
    await flushed();
    assert.deepEqual(
      lines.map((l) => [l.node, l.code, l.suppressed]),
      [
        ['10.0.0.1:3031', 'SY_UPSTREAM_CONNECT', undefined],
        ['10.0.0.2:3031', 'SY_UPSTREAM_CONNECT', undefined],
        ['10.0.0.1:3031', 'SY_UPSTREAM_CONNECT', 500],
      ],
    );
  });

  test('stays bounded: past maxNodes, entries older than one interval are swept', () => {
    const { logger } = capture();
    let now = 0;
    const log = new NodeFailureLog({ logger, clock: () => now, maxNodes: 100 });
    for (let i = 0; i < 100; i++) log.failed('h', `10.0.0.${i}:1`, refused);
    now += 1000;
    for (let i = 0; i < 100; i++) log.failed('h', `10.0.1.${i}:1`, refused);
    assert.ok(log.size <= 101, `size ${log.size}`);
  });
});
