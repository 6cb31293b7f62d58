/**
 * Subscription → first routed request latency: how long after a node's subscribe datagram leaves does
 * Switchyard route the first request for that new Host?
 *
 * Starts the Switchyard CLI (pinned to core 0 when possible) with a subscription server on a free UDP port
 * and no static nodes, plus one HTTP backend (node:http, in this process). Then, `count` times: send a
 * subscribe packet (proto=http) for a fresh hostname, and immediately poll `GET /` with `Host: <that name>`
 * over a keep-alive connection until the first 2xx (bounded per host). Reports p50/p99/max of
 * packet → first 2xx, in milliseconds. The polling resolution is one HTTP round trip on loopback.
 *
 *   npx tsx bench/subscription-latency.ts [--count 200]       (after npm run build)
 */
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { encodeSubscription } from '@switchyard/protocol';
import { canPin, installCleanup, killAll, pinSelf, start } from './lib/children.js';
import { freePort } from './lib/probe.js';

export const SWITCHYARD_CLI = resolve(import.meta.dirname, '..', 'packages', 'switchyard', 'dist', 'cli.js');

export interface LatencyResult {
  readonly count: number;
  readonly routed: number;
  /** Milliseconds, over the routed hosts. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly medianPolls: number;
  readonly perHostTimeoutMs: number;
  /** The resolution: p50/p99 of `GET /` for an already-routed host over the same connection, in ms. */
  readonly baselineP50: number;
  readonly baselineP99: number;
}

export type LatencyOutcome =
  | { readonly ok: true; readonly result: LatencyResult }
  | { readonly ok: false; readonly skipped: string };

export interface LatencyOptions {
  readonly count?: number;
  readonly perHostTimeoutMs?: number;
  readonly pin?: boolean;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

function subscribePacket(key: string, address: string): Buffer {
  return encodeSubscription('subscribe', [
    ['key', key],
    ['address', address],
    ['modifier1', '0'],
    ['modifier2', '0'],
    ['cores', '0'],
    ['load', '0'],
    ['weight', '1'],
    ['proto', 'http'],
  ]);
}

/** One GET over `agent`; resolves with the status, or 0 when the connection failed or closed. */
function probe(agent: http.Agent, port: number, host: string): Promise<number> {
  return new Promise((done) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', headers: { host }, agent, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode ?? 0));
      res.on('error', () => done(0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(0));
    req.end();
  });
}

export async function measureSubscriptionLatency(options: LatencyOptions = {}): Promise<LatencyOutcome> {
  const count = options.count ?? 200;
  const perHostTimeoutMs = options.perHostTimeoutMs ?? 2000;
  if (!existsSync(SWITCHYARD_CLI)) {
    return { ok: false, skipped: `${SWITCHYARD_CLI} does not exist (run npm run build once the CLI is written)` };
  }
  const backend = http.createServer({ keepAliveTimeout: 60_000 }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3' });
    res.end('ok\n');
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  const backendAddress = `127.0.0.1:${(backend.address() as AddressInfo).port}`;
  const httpPort = await freePort();
  const subPort = await freePort(); // a TCP probe; UDP ports of the same number are almost always free too
  const udp = createSocket('udp4');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const cpu = options.pin === true ? 0 : undefined;
  const sy = start(
    'switchyard',
    process.execPath,
    [
      SWITCHYARD_CLI,
      '--http',
      `127.0.0.1:${httpPort}`,
      '--subscription-server',
      `127.0.0.1:${subPort}`,
      '--admin',
      '127.0.0.1:0',
    ],
    { cpu },
  );
  let exited = false;
  void sy.exited.then(() => {
    exited = true;
  });
  const send = (packet: Buffer) =>
    new Promise<void>((r, j) => udp.send(packet, subPort, '127.0.0.1', (e) => (e ? j(e) : r())));
  try {
    // Readiness: a first host must become routable within 5 s (this also warms the path up).
    const warm = `warmup-${process.pid}.bench.test`;
    const readyBy = Date.now() + 5000;
    let ready = false;
    while (!ready && Date.now() < readyBy && !exited) {
      await send(subscribePacket(warm, backendAddress));
      const status = await probe(agent, httpPort, warm);
      ready = status >= 200 && status < 300;
      if (!ready) await new Promise((r) => setTimeout(r, 100));
    }
    if (!ready) {
      const why = exited ? `exited (${await sy.exited})` : 'did not route a subscribed host within 5 s';
      const tail = sy.output().trim().split('\n').slice(-3).join(' | ');
      return { ok: false, skipped: `Switchyard ${why}${tail ? `: ${tail}` : ''}` };
    }
    const latencies: number[] = [];
    const polls: number[] = [];
    const tag = Math.random().toString(36).slice(2, 8);
    for (let i = 0; i < count && !exited; i++) {
      const host = `n${i}-${tag}.bench.test`;
      const packet = subscribePacket(host, backendAddress);
      const t0 = performance.now();
      await send(packet);
      let n = 0;
      while (performance.now() - t0 < perHostTimeoutMs) {
        n++;
        const status = await probe(agent, httpPort, host);
        if (status >= 200 && status < 300) {
          latencies.push(performance.now() - t0);
          polls.push(n);
          break;
        }
      }
    }
    latencies.sort((a, b) => a - b);
    polls.sort((a, b) => a - b);
    const baseline: number[] = [];
    for (let i = 0; i < count && !exited; i++) {
      const t0 = performance.now();
      await probe(agent, httpPort, warm);
      baseline.push(performance.now() - t0);
    }
    baseline.sort((a, b) => a - b);
    return {
      ok: true,
      result: {
        count,
        routed: latencies.length,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: latencies.at(-1) ?? Number.NaN,
        medianPolls: percentile(polls, 50),
        perHostTimeoutMs,
        baselineP50: percentile(baseline, 50),
        baselineP99: percentile(baseline, 99),
      },
    };
  } finally {
    agent.destroy();
    udp.close();
    backend.closeAllConnections();
    backend.close();
    await sy.stop();
  }
}

const ms = (n: number) => `${n.toFixed(2)} ms`;

export function latencyMarkdown(outcome: LatencyOutcome): string {
  const head = '## Subscription → first routed request\n\n';
  if (!outcome.ok) return `${head}Skipped: ${outcome.skipped}\n`;
  const r = outcome.result;
  return (
    `${head}Subscribe datagram for a fresh hostname, then \`GET /\` with that Host polled back to back over one ` +
    `keep-alive connection until the first 2xx (per-host limit ${r.perHostTimeoutMs} ms).\n\n` +
    '| hosts | routed | p50 | p99 | max | polls per host (median) | baseline GET, routed host: p50 / p99 |\n' +
    '|---:|---:|---:|---:|---:|---:|---:|\n' +
    `| ${r.count} | ${r.routed} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ${r.medianPolls} | ` +
    `${ms(r.baselineP50)} / ${ms(r.baselineP99)} |\n\n` +
    'The baseline is the polling resolution: one request for a host that is already routed, same connection.\n'
  );
}

async function main(): Promise<void> {
  installCleanup();
  const { values } = parseArgs({ options: { count: { type: 'string', default: '200' } }, strict: true });
  const count = Number(values.count);
  if (!Number.isInteger(count) || count < 1 || count > 10_000) {
    process.stderr.write('subscription-latency: --count must be a whole number 1..10000\n');
    process.exitCode = 2;
    return;
  }
  const pin = canPin((await import('node:os')).availableParallelism());
  if (pin) pinSelf(1);
  const outcome = await measureSubscriptionLatency({ count, pin });
  process.stdout.write(latencyMarkdown(outcome));
  await killAll();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main();
}
