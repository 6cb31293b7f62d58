import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AccessLog, SortedKeyIndex } from '../src/index.js';
import { LocalRecord } from '../src/request-record.js';
import { type AdminRig, call, startAdminRig } from './admin-support.js';
import { httpNode, request, startBackend, type TestBackend } from './helpers.js';

/** Prometheus text → Map of `name{labels}` → value. */
function parseMetrics(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    series.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return series;
}

describe('metrics', () => {
  let rig: AdminRig;
  let backend: TestBackend;
  before(async () => {
    rig = await startAdminRig({ router: { operations: { metricsTopHosts: 3 } } });
    backend = await startBackend('ok');
  });
  after(async () => {
    await rig.close();
    await backend.close();
  });

  test('counts requests by status class and outcome, with a duration histogram and table sizes', async () => {
    rig.router.upsertNode(httpNode('m.test', backend.address));
    for (let i = 0; i < 3; i++) assert.equal((await request(rig.httpPort, { host: 'm.test' })).status, 200);
    assert.equal((await request(rig.httpPort, { host: 'unknown.test' })).status, 404);
    const reply = await call(rig.adminPort, 'GET', '/metrics');
    assert.equal(reply.status, 200);
    assert.match(String(reply.headers['content-type']), /^text\/plain/);
    const m = parseMetrics(reply.text);
    assert.equal(m.get('switchyard_requests_total{class="2xx"}'), 3);
    assert.equal(m.get('switchyard_requests_total{class="4xx"}'), 1);
    assert.equal(m.get('switchyard_request_outcomes_total{code="OK"}'), 3);
    assert.equal(m.get('switchyard_request_outcomes_total{code="SY_NO_VHOST"}'), 1);
    assert.equal(m.get('switchyard_request_duration_seconds_count'), 4);
    assert.equal(m.get('switchyard_request_duration_seconds_bucket{le="+Inf"}'), 4);
    assert.equal(m.get('switchyard_response_body_bytes_total')! >= 6, true);
    assert.equal(m.get('switchyard_hosts'), 1);
    assert.equal(m.get('switchyard_requests_in_flight'), 0);
    assert.equal(m.get('switchyard_host_requests_total{host="m.test",class="2xx"}'), 3);
    assert.ok(m.has('nodejs_eventloop_lag_seconds'));
    // Buckets are cumulative.
    let previous = 0;
    for (const [name, value] of m) {
      if (!name.startsWith('switchyard_request_duration_seconds_bucket')) continue;
      assert.ok(value >= previous, name);
      previous = value;
    }
  });

  test('per-host series stay bounded to the top N busiest hosts plus "other" with 10k hosts', async () => {
    const ops = rig.router.ops;
    const finish = (key: string) =>
      ops.finish(
        new LocalRecord(performance.now(), 'GET', '/', key, '127.0.0.1', 200, 0, ops.policies.record(key)),
        'OK',
      );
    for (let i = 0; i < 10_000; i++) finish(`h${i}.test`);
    for (let round = 0; round < 50; round++)
      for (const busy of ['busy1.test', 'busy2.test', 'busy3.test']) finish(busy);
    const m = parseMetrics((await call(rig.adminPort, 'GET', '/metrics')).text);
    const hosts = new Set<string>();
    for (const name of m.keys()) {
      const match = /^switchyard_host_requests_total\{host="([^"]*)"/.exec(name);
      if (match !== null) hosts.add(match[1]!);
    }
    assert.deepEqual([...hosts].sort(), ['busy1.test', 'busy2.test', 'busy3.test', 'other']);
    assert.equal(m.get('switchyard_host_requests_total{host="busy1.test",class="2xx"}'), 50);
    assert.ok(m.get('switchyard_host_requests_total{host="other",class="2xx"}')! >= 10_000);
  });
});

describe('access log', () => {
  test('writes one JSON line per request to the file, flushed on close', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-access-'));
    const file = path.join(dir, 'logs', 'access.log');
    const rig = await startAdminRig();
    const backend = await startBackend('hello');
    try {
      const log = new AccessLog({ destination: file });
      await log.start();
      rig.router.ops.accessLog = log;
      rig.router.upsertNode(httpNode('log.test', backend.address));
      await request(rig.httpPort, { host: 'log.test', path: '/a?b=1', method: 'POST', body: 'abc' });
      await request(rig.httpPort, { host: 'nope.test', path: '/z' });
      await log.close();
      const lines = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(lines.length, 2);
      const [ok, missing] = lines;
      assert.equal(ok.host, 'log.test');
      assert.equal(ok.method, 'POST');
      assert.equal(ok.path, '/a?b=1');
      assert.equal(ok.status, 200);
      assert.equal(ok.code, 'OK');
      assert.equal(ok.node, backend.address);
      assert.equal(ok.attempts, 1);
      assert.equal(ok.in, 3);
      assert.equal(ok.out, 5);
      assert.equal(ok.client, '127.0.0.1');
      assert.equal(typeof ok.ms, 'number');
      assert.match(ok.time, /^\d{4}-\d\d-\d\dT/);
      assert.equal(missing.status, 404);
      assert.equal(missing.code, 'SY_NO_VHOST');
    } finally {
      await rig.close();
      await backend.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('sampling drops successful requests but always keeps errors', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-access-'));
    const file = path.join(dir, 'access.log');
    try {
      const log = new AccessLog({ destination: file, sampleRate: 0.5, random: () => 0.7 });
      await log.start();
      const rec = (status: number) => new LocalRecord(0, 'GET', '/', 'h', '127.0.0.1', status, 0, undefined);
      log.write(rec(200), 'OK', 1);
      log.write(rec(502), 'SY_UPSTREAM_CONNECT', 1);
      await log.close();
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      assert.deepEqual(
        lines.map((l) => JSON.parse(l).code),
        ['SY_UPSTREAM_CONNECT'],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('vhost pagination', () => {
  test('pages through 100k hosts in key order with cursors, each page O(log n + limit)', async () => {
    const rig = await startAdminRig();
    try {
      const keys: string[] = [];
      for (let i = 0; i < 100_000; i++) keys.push(`h${String(i).padStart(6, '0')}.test`);
      for (const key of keys) rig.router.upsertNode(httpNode(key, '127.0.0.1:9'));
      let cursor: string | undefined;
      const seen: string[] = [];
      const pageTimes: number[] = [];
      for (let page = 0; page < 5; page++) {
        const q = cursor === undefined ? '' : `&cursor=${cursor}`;
        const started = performance.now();
        const reply = await call(rig.adminPort, 'GET', `/v1/vhosts?limit=1000${q}`);
        pageTimes.push(performance.now() - started);
        assert.equal(reply.body.total, 100_000);
        seen.push(...reply.body.hosts.map((h: { host: string }) => h.host));
        cursor = reply.body.next;
      }
      assert.deepEqual(seen, keys.slice(0, 5000));
      // A page deep in the table costs what the first one does (no O(n) skip).
      const deep = await call(rig.adminPort, 'GET', `/v1/vhosts?limit=10&cursor=${keys[99_980]}`);
      assert.deepEqual(
        deep.body.hosts.map((h: { host: string }) => h.host),
        keys.slice(99_981, 99_991),
      );
      const last = await call(rig.adminPort, 'GET', `/v1/vhosts?limit=100&cursor=${keys[99_950]}`);
      assert.equal(last.body.count, 49);
      assert.equal(last.body.next, null);
      const prefixed = await call(rig.adminPort, 'GET', '/v1/vhosts?prefix=h09999&limit=1000');
      assert.deepEqual(
        prefixed.body.hosts.map((h: { host: string }) => h.host),
        keys.slice(99_990),
      );
      process.stdout.write(`# 1000-host pages over 100k hosts: ${pageTimes.map((t) => t.toFixed(1)).join(', ')} ms\n`);
    } finally {
      await rig.close();
    }
  });

  test('the sorted index stays ordered through adds and deletes', () => {
    const index = new SortedKeyIndex();
    const expected = new Set<string>();
    let seed = 7;
    const rand = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
    for (let i = 0; i < 20_000; i++) {
      const key = `k${rand() % 5000}`;
      if (rand() % 3 === 0) {
        assert.equal(index.delete(key), expected.delete(key));
      } else {
        assert.equal(index.add(key), !expected.has(key));
        expected.add(key);
      }
    }
    assert.deepEqual([...index], [...expected].sort());
    assert.equal(index.size, expected.size);
    const page = index.page({ prefix: 'k12', limit: 5 });
    assert.deepEqual(
      page.keys,
      [...expected]
        .filter((k) => k.startsWith('k12'))
        .sort()
        .slice(0, 5),
    );
  });
});
