/**
 * Subscription flood: 100 000 datagrams for random hostnames from one source, against the `switchyard`
 * CLI running in its own process (so the router's event loop and memory are measured apart from the
 * sender's). Asserts the table stays within its bounds (the per-source rate limit, then --max-hosts),
 * RSS growth stays bounded, and requests to an existing host keep succeeding during the flood.
 * Latency before/during is measured and printed (p50/p99), never asserted.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { announce } from '@switchyard/agent';
import { encodeSubscription } from '@switchyard/protocol';
import { CLI, get, waitFor } from './support.js';

const FLOOD = 100_000;
const children: ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

interface Router {
  readonly child: ChildProcess;
  readonly httpPort: number;
  readonly subscriptionPort: number;
  readonly adminPort: number;
}

async function startRouter(extra: string[]): Promise<Router> {
  const args = ['--http', '127.0.0.1:0', '--subscription-server', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...extra];
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    if (out.length < 100_000) out += chunk.toString();
  });
  const ready = await waitFor(
    () => {
      for (const line of out.split('\n')) {
        if (!line.includes('switchyard ready')) continue;
        return JSON.parse(line) as { http: string[]; subscriptionServer: string[]; admin: string };
      }
      return undefined;
    },
    10_000,
    'the router to start',
  );
  const port = (text: string) => Number(text.split(':').at(-1));
  cleanups.push(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  });
  return {
    child,
    httpPort: port(ready.http[0]!),
    subscriptionPort: port(ready.subscriptionServer[0]!),
    adminPort: port(ready.admin),
  };
}

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function stats(router: Router) {
  const reply = await get(router.adminPort, 'admin', '/v1/stats');
  return JSON.parse(reply.text) as {
    subscriptions: { received: number; accepted: number; dropped: Record<string, number> };
    registry: { hosts: number; nodes: number };
  };
}

/** Sends `count` subscribes for random hosts from 127.0.0.2, yielding between batches. */
async function flood(port: number, count: number): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.2', resolve));
  const prefix = randomBytes(4).toString('hex');
  const started = performance.now();
  for (let i = 0; i < count; i += 500) {
    for (let j = i; j < Math.min(count, i + 500); j++) {
      const packet = encodeSubscription('subscribe', [
        ['key', `h${j}-${prefix}.flood.test`],
        ['address', `10.${(j >> 16) & 255}.${(j >> 8) & 255}.${j & 255}:3031`],
      ]);
      socket.send(packet, port, '127.0.0.1');
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return performance.now() - started;
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Sequential keep-alive GETs until `stop()` says so; every status is recorded. */
async function requestLoop(port: number, host: string, stop: () => boolean, min: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  const statuses: number[] = [];
  while (!stop() || latencies.length < min) {
    const t0 = performance.now();
    const reply = await get(port, host, '/', agent);
    latencies.push(performance.now() - t0);
    statuses.push(reply.status);
  }
  agent.destroy();
  return { latencies, statuses };
}

async function existingHost(router: Router) {
  const backend = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => backend.close(() => resolve())));
  const handle = announce({
    server: `127.0.0.1:${router.subscriptionPort}`,
    key: 'existing.test',
    address: `127.0.0.1:${(backend.address() as AddressInfo).port}`,
    proto: 'http',
    intervalMs: 1_000,
  });
  cleanups.push(() => handle.close());
  await waitFor(
    async () => ((await get(router.httpPort, 'existing.test')).status === 200 ? true : undefined),
    5_000,
    'the existing host',
  );
}

const fmt = (ms: number) => `${ms.toFixed(2)} ms`;

describe('a subscription flood from one source', () => {
  test('100k packets for random hosts: the rate limit bounds the table, RSS stays bounded, routing keeps working', async () => {
    const router = await startRouter(['--subscription-rate', '1000:2000']);
    await existingHost(router);
    const before = await requestLoop(router.httpPort, 'existing.test', () => true, 300);
    const rssBefore = rssBytes(router.child.pid!);
    let flooding = true;
    const floodStart = performance.now();
    const during = requestLoop(router.httpPort, 'existing.test', () => !flooding, 50);
    const floodMs = await flood(router.subscriptionPort, FLOOD);
    // Let the router drain its socket buffer before counting.
    let received = -1;
    await waitFor(
      async () => {
        const now = (await stats(router)).subscriptions.received;
        const settled = now === received;
        received = now;
        await new Promise((resolve) => setTimeout(resolve, 100));
        return settled ? true : undefined;
      },
      10_000,
      'the router to drain the flood',
    );
    flooding = false;
    const duringResult = await during;
    const elapsedSec = (performance.now() - floodStart) / 1000;
    const s = await stats(router);
    const rssAfter = rssBytes(router.child.pid!);

    // The limiter admits at most burst + rate × elapsed from 127.0.0.2; every admitted packet is a new host.
    const admittedBound = 2_000 + 1_000 * elapsedSec + 1;
    assert.ok(s.registry.hosts <= admittedBound, `${s.registry.hosts} hosts > ${admittedBound}`);
    assert.ok(s.subscriptions.dropped['rate-limited']! > 0);
    assert.ok(rssAfter - rssBefore < 64 * 1024 * 1024, `RSS grew by ${rssAfter - rssBefore} bytes`);
    assert.ok(duringResult.statuses.every((status) => status === 200));
    assert.ok(before.statuses.every((status) => status === 200));
    console.log(
      `# flood (rate limit 1000/s): sent ${FLOOD} in ${fmt(floodMs)}, router received ${s.subscriptions.received}, ` +
        `rate-limited ${s.subscriptions.dropped['rate-limited']}, hosts ${s.registry.hosts}, ` +
        `RSS ${(rssBefore / 2 ** 20).toFixed(1)} → ${(rssAfter / 2 ** 20).toFixed(1)} MiB; ` +
        `existing host p50/p99 before ${fmt(percentile(before.latencies, 50))}/${fmt(percentile(before.latencies, 99))} ` +
        `(n=${before.latencies.length}), during ${fmt(percentile(duringResult.latencies, 50))}/` +
        `${fmt(percentile(duringResult.latencies, 99))} (n=${duringResult.latencies.length})`,
    );
  });

  test('100k packets with the rate limit lifted: --max-hosts caps the table and refuses the rest', async () => {
    const router = await startRouter(['--subscription-rate', '10000000', '--max-hosts', '2000']);
    await existingHost(router);
    const rssBefore = rssBytes(router.child.pid!);
    let flooding = true;
    const during = requestLoop(router.httpPort, 'existing.test', () => !flooding, 50);
    const floodMs = await flood(router.subscriptionPort, FLOOD);
    let received = -1;
    await waitFor(
      async () => {
        const now = (await stats(router)).subscriptions.received;
        const settled = now === received;
        received = now;
        await new Promise((resolve) => setTimeout(resolve, 100));
        return settled ? true : undefined;
      },
      10_000,
      'the router to drain the flood',
    );
    flooding = false;
    const duringResult = await during;
    const rssAfterFirst = rssBytes(router.child.pid!);
    // A second flood finds the table full: memory must not keep growing with it.
    await flood(router.subscriptionPort, FLOOD);
    received = -1;
    await waitFor(
      async () => {
        const now = (await stats(router)).subscriptions.received;
        const settled = now === received;
        received = now;
        await new Promise((resolve) => setTimeout(resolve, 100));
        return settled ? true : undefined;
      },
      10_000,
      'the router to drain the second flood',
    );
    const s = await stats(router);
    const rssAfter = rssBytes(router.child.pid!);
    assert.equal(s.registry.hosts, 2000);
    assert.ok(s.subscriptions.dropped['too-many-hosts']! > 0);
    assert.ok(rssAfter - rssAfterFirst < 32 * 1024 * 1024, `RSS grew by ${rssAfter - rssAfterFirst} bytes again`);
    assert.ok(rssAfter - rssBefore < 64 * 1024 * 1024, `RSS grew by ${rssAfter - rssBefore} bytes`);
    assert.ok(duringResult.statuses.every((status) => status === 200));
    console.log(
      `# flood (no rate limit, --max-hosts 2000): sent 2 × ${FLOOD} (first in ${fmt(floodMs)}), router received ` +
        `${s.subscriptions.received}, too-many-hosts ${s.subscriptions.dropped['too-many-hosts']}, hosts ` +
        `${s.registry.hosts}, RSS ${(rssBefore / 2 ** 20).toFixed(1)} → ${(rssAfterFirst / 2 ** 20).toFixed(1)} → ` +
        `${(rssAfter / 2 ** 20).toFixed(1)} MiB after a second flood; ` +
        `existing host p50/p99 during ${fmt(percentile(duringResult.latencies, 50))}/` +
        `${fmt(percentile(duringResult.latencies, 99))} (n=${duringResult.latencies.length})`,
    );
  });
});
