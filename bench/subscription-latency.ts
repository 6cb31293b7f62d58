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
 * Saturated mode (`--saturated`): the same, while wrk (`-t1 -c64`, pinned with the bench to core 1)
 * drives another host (nginx backend when installed) through the router as fast as it goes, so the
 * router's event loop is busy. Each measured host is then followed by one GET of an already-routed host
 * on the same connection, the baseline under the same load: packet → 2xx minus that round trip is the
 * routing delay itself.
 *
 *   npx tsx bench/subscription-latency.ts [--count 200] [--saturated]      (after npm run build)
 */
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { encodeSubscription } from '@switchyard/protocol';
import { type Child, canPin, installCleanup, killAll, pinSelf, start } from './lib/children.js';
import { nginxArgs, nginxAvailable, writeBackendConfig } from './lib/nginx.js';
import { freePort, waitFor2xx } from './lib/probe.js';

export const SWITCHYARD_CLI = resolve(import.meta.dirname, '..', 'packages', 'switchyard', 'dist', 'cli.js');

export interface LatencyResult {
  readonly count: number;
  readonly routed: number;
  /** Milliseconds, over the routed hosts. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly medianPolls: number;
  /** Share of hosts whose very first request (sent right after the datagram) was routed. */
  readonly firstRequestRouted: number;
  readonly perHostTimeoutMs: number;
  /** The resolution: p50/p99 of `GET /` for an already-routed host over the same connection, in ms. */
  readonly baselineP50: number;
  readonly baselineP99: number;
  /** Saturated mode: p50/p99 of (packet → 2xx) minus the baseline GET that followed it, in ms. */
  readonly routingP50?: number;
  readonly routingP99?: number;
  /** Saturated mode: requests/s wrk pushed through the router meanwhile. */
  readonly saturationRps?: number | undefined;
  readonly saturated: boolean;
}

export type LatencyOutcome =
  | { readonly ok: true; readonly result: LatencyResult }
  | { readonly ok: false; readonly skipped: string };

export interface LatencyOptions {
  readonly count?: number;
  readonly perHostTimeoutMs?: number;
  readonly pin?: boolean;
  /** Keep the router busy with wrk against another host meanwhile. */
  readonly saturate?: boolean;
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
      '--workers',
      '1',
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
    const saturation = options.saturate === true ? await saturate(httpPort, send, options.pin === true) : undefined;
    const latencies: number[] = [];
    const polls: number[] = [];
    const routing: number[] = [];
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
      if (saturation !== undefined) {
        // The same round trip for a routed host, under the same load, right after.
        const t1 = performance.now();
        await probe(agent, httpPort, warm);
        const roundTrip = performance.now() - t1;
        const last = latencies.at(-1);
        if (last !== undefined && polls.at(-1) !== undefined) routing.push(Math.max(0, last - roundTrip));
      }
    }
    const saturationRps = saturation === undefined ? undefined : await saturation.stop();
    latencies.sort((a, b) => a - b);
    polls.sort((a, b) => a - b);
    routing.sort((a, b) => a - b);
    const baseline: number[] = [];
    for (let i = 0; i < count && !exited && saturation === undefined; i++) {
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
        firstRequestRouted: polls.filter((p) => p === 1).length / Math.max(1, polls.length),
        perHostTimeoutMs,
        baselineP50: percentile(baseline, 50),
        baselineP99: percentile(baseline, 99),
        saturated: saturation !== undefined,
        ...(saturation === undefined
          ? {}
          : { routingP50: percentile(routing, 50), routingP99: percentile(routing, 99), saturationRps }),
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

/**
 * Starts the load: a second host (`busy-…`) on an nginx backend (a node:http one when nginx is missing)
 * and wrk against it, pinned to core 1 with this process. `stop()` resolves with wrk's requests/s.
 */
async function saturate(
  httpPort: number,
  send: (packet: Buffer) => Promise<void>,
  pin: boolean,
): Promise<{ stop(): Promise<number> }> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-latency-'));
  let backendPort: number;
  let nginx: Child | undefined;
  let fallback: http.Server | undefined;
  if (nginxAvailable()) {
    backendPort = await freePort();
    nginx = start('nginx-backend', 'nginx', nginxArgs(dir, writeBackendConfig(dir, [backendPort])), {
      cpu: pin ? 1 : undefined,
    });
    await waitFor2xx(backendPort, '/', 'backend', 5000);
  } else {
    fallback = http.createServer({ keepAliveTimeout: 60_000 }, (_req, res) => res.end('ok\n'));
    await new Promise<void>((r) => fallback!.listen(0, '127.0.0.1', () => r()));
    backendPort = (fallback.address() as AddressInfo).port;
  }
  const busy = `busy-${process.pid}.bench.test`;
  await send(subscribePacket(busy, `127.0.0.1:${backendPort}`));
  await waitFor2xx(httpPort, '/', busy, 5000);
  const wrk = start('wrk', 'wrk', ['-t1', '-c64', '-d120s', '-H', `Host: ${busy}`, `http://127.0.0.1:${httpPort}/`], {
    cpu: pin ? 1 : undefined,
  });
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 1000)); // ramp up
  return {
    stop: async () => {
      const seconds = (performance.now() - t0) / 1000;
      // wrk prints its report on SIGINT.
      wrk.process.kill('SIGINT');
      await wrk.exited;
      const m = /(\d+) requests in/.exec(wrk.output());
      await nginx?.stop();
      fallback?.closeAllConnections();
      fallback?.close();
      rmSync(dir, { recursive: true, force: true });
      return m === null ? Number.NaN : Number(m[1]) / seconds;
    },
  };
}

const ms = (n: number) => `${n.toFixed(2)} ms`;
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export function latencyMarkdown(outcome: LatencyOutcome): string {
  const head = '## Subscription → first routed request\n\n';
  if (!outcome.ok) return `${head}Skipped: ${outcome.skipped}\n`;
  const r = outcome.result;
  if (r.saturated) {
    return (
      '## Subscription → first routed request, router saturated\n\n' +
      `While wrk (\`-t1 -c64\`) drives another host through the router (${Math.round(r.saturationRps ?? 0)} requests/s), ` +
      'a subscribe datagram for a fresh hostname, then `GET /` with that Host polled back to back over one keep-alive ' +
      'connection until the first 2xx; after each, one GET of an already-routed host on the same connection (the ' +
      'round trip under this load). "Routing delay" = packet → 2xx minus that round trip.\n\n' +
      '| hosts | routed | routed at the first request | packet → 2xx p50 | p99 | max | routing delay p50 | p99 |\n' +
      '|---:|---:|---:|---:|---:|---:|---:|---:|\n' +
      `| ${r.count} | ${r.routed} | ${pct(r.firstRequestRouted)} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ` +
      `${ms(r.routingP50 ?? Number.NaN)} | ${ms(r.routingP99 ?? Number.NaN)} |\n\n` +
      'A request sent right after the datagram that is routed means the routing delay was shorter than the ' +
      "request's trip into the router's host lookup.\n"
    );
  }
  return (
    `${head}Subscribe datagram for a fresh hostname, then \`GET /\` with that Host polled back to back over one ` +
    `keep-alive connection until the first 2xx (per-host limit ${r.perHostTimeoutMs} ms).\n\n` +
    '| hosts | routed | p50 | p99 | max | polls per host (median) | routed at the first request | baseline GET, routed host: p50 / p99 |\n' +
    '|---:|---:|---:|---:|---:|---:|---:|---:|\n' +
    `| ${r.count} | ${r.routed} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ${r.medianPolls} | ${pct(r.firstRequestRouted)} | ` +
    `${ms(r.baselineP50)} / ${ms(r.baselineP99)} |\n\n` +
    'The baseline is the polling resolution: one request for a host that is already routed, same connection.\n'
  );
}

async function main(): Promise<void> {
  installCleanup();
  const { values } = parseArgs({
    options: { count: { type: 'string', default: '200' }, saturated: { type: 'boolean', default: false } },
    strict: true,
  });
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
  if (values.saturated) {
    process.stdout.write('\n');
    process.stdout.write(latencyMarkdown(await measureSubscriptionLatency({ count, pin, saturate: true })));
  }
  await killAll();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main();
}
