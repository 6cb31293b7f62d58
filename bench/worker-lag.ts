/**
 * `--workers` table lag: how long a subscription takes to reach every worker's table, idle and while the
 * workers are saturated with traffic (wrk, keep-alive). Target (issue 7): p99 < 5 ms.
 *
 *   npx tsx bench/worker-lag.ts [--workers 2] [--packets 2000] [--interval-ms 2] [--duration 8]
 *
 * Lag is measured by Switchyard itself (worker-cluster.ts, worker-lag.ts): from the first change of a
 * batch being made on the primary (the packet was decoded and applied to the primary's table in the same
 * turn) to a worker having applied the batch, one way, on a clock both processes share; every batch of
 * every worker is one observation.
 * Read from /metrics (`switchyard_worker_table_lag_seconds` histogram, differences over each phase) and
 * /v1/stats (exact p50/p99/max over the last 1,024 observations). Writes bench/results/DATE-HOST-worker-lag.md.
 */
import dgram from 'node:dgram';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { encodeSubscription } from '@switchyard/protocol';
import { installCleanup, killAll, start } from './lib/children.js';
import { machineInfo } from './lib/machine.js';
import { freePort, get, waitFor2xx } from './lib/probe.js';
import { runWrk } from './lib/wrk.js';
import { SWITCHYARD_CLI } from './subscription-latency.js';

const ROOT = resolve(import.meta.dirname, '..');
const args = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    packets: { type: 'string', default: '2000' },
    'interval-ms': { type: 'string', default: '2' },
    duration: { type: 'string', default: '8' },
  },
}).values;
const workers = Number(args.workers);
const packets = Number(args.packets);
const intervalMs = Number(args['interval-ms']);
const durationS = Number(args.duration);
const log = (line: string) => process.stderr.write(`${line}\n`);

interface Phase {
  readonly name: string;
  readonly observations: number;
  readonly within1ms: number;
  readonly within5ms: number;
  readonly p50Ms: number | undefined;
  readonly p99Ms: number | undefined;
  readonly maxMs: number | undefined;
  readonly rps?: number;
}

async function histogram(adminPort: number): Promise<Map<string, number>> {
  const reply = await get(adminPort, '/metrics', '127.0.0.1', 5000);
  const out = new Map<string, number>();
  for (const line of reply.body.toString().split('\n')) {
    const m = /^switchyard_worker_table_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$/.exec(line);
    if (m !== null) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

async function summary(adminPort: number): Promise<{ p50Ms?: number; p99Ms?: number; maxMs?: number }> {
  const reply = await get(adminPort, '/v1/stats', '127.0.0.1', 5000);
  return (JSON.parse(reply.body.toString()) as { workers: { lag: { p50Ms?: number; p99Ms?: number; maxMs?: number } } })
    .workers.lag;
}

async function sendPackets(port: number, prefix: string, backendPort: number): Promise<void> {
  const socket = dgram.createSocket('udp4');
  for (let i = 0; i < packets; i++) {
    const packet = encodeSubscription('subscribe', [
      ['key', `${prefix}-${i}.lag.test`],
      ['address', `127.0.0.1:${backendPort}`],
      ['proto', 'http'],
    ]);
    socket.send(packet, port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  await new Promise((r) => setTimeout(r, 200));
  socket.close();
}

async function phase(name: string, adminPort: number, run: () => Promise<number | undefined>): Promise<Phase> {
  const before = await histogram(adminPort);
  const rps = await run();
  const after = await histogram(adminPort);
  const delta = (le: string) => (after.get(le) ?? 0) - (before.get(le) ?? 0);
  const s = await summary(adminPort);
  const observations = delta('+Inf');
  return {
    name,
    observations,
    within1ms: delta('0.001') / observations,
    within5ms: delta('0.005') / observations,
    p50Ms: s.p50Ms,
    p99Ms: s.p99Ms,
    maxMs: s.maxMs,
    ...(rps === undefined ? {} : { rps }),
  };
}

async function main(): Promise<void> {
  installCleanup();
  const backend = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const backendPort = (backend.address() as { port: number }).port;
  const [httpPort, subPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const proxy = start('switchyard', process.execPath, [
    SWITCHYARD_CLI,
    '--workers',
    String(workers),
    '--http',
    `127.0.0.1:${httpPort}`,
    '--subscription-server',
    `127.0.0.1:${subPort}`,
    '--admin',
    `127.0.0.1:${adminPort}`,
    '--http-to',
    `http://127.0.0.1:${backendPort}`,
    '--log-level',
    'warn',
  ]);
  await waitFor2xx(httpPort, '/', 'any.test', 20_000);
  await waitFor2xx(adminPort, '/readyz', '127.0.0.1', 5000);
  log(`worker-lag: ${workers} workers; ${packets} packets ${intervalMs} ms apart per phase`);
  const idle = await phase('idle', adminPort, async () => {
    await sendPackets(subPort, 'idle', backendPort);
    return undefined;
  });
  log(`worker-lag: idle ${JSON.stringify(idle)}`);
  const saturated = await phase('saturated (wrk -c64 on the workers)', adminPort, async () => {
    const load = runWrk({
      url: `http://127.0.0.1:${httpPort}/`,
      host: 'any.test',
      threads: 1,
      connections: 64,
      durationS,
    });
    await new Promise((r) => setTimeout(r, 500));
    await sendPackets(subPort, 'busy', backendPort);
    return (await load).rps;
  });
  log(`worker-lag: saturated ${JSON.stringify(saturated)}`);
  await proxy.stop(5000);
  backend.close();
  const machine = machineInfo();
  const fmt = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(2));
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  const date = new Date().toISOString().slice(0, 10);
  const table = [
    `# --workers table lag (${date})`,
    '',
    `- Machine: ${machine.hostname}, ${machine.cpus} CPUs, ${machine.cpuModel}; unpinned`,
    `- Command: \`npx tsx bench/worker-lag.ts --workers ${workers} --packets ${packets} --interval-ms ${intervalMs}\``,
    '- Lag = first change of a batch made on the primary → a worker has applied the batch (one way, per worker).',
    '',
    '| phase | observations | ≤ 1 ms | ≤ 5 ms | p50 ms | p99 ms | max ms | traffic rps |',
    '|---|---|---|---|---|---|---|---|',
    ...[idle, saturated].map(
      (p) =>
        `| ${p.name} | ${p.observations} | ${pct(p.within1ms)} | ${pct(p.within5ms)} | ${fmt(p.p50Ms)} | ${fmt(p.p99Ms)} | ${fmt(p.maxMs)} | ${p.rps === undefined ? '–' : p.rps.toFixed(0)} |`,
    ),
    '',
    'p50/p99/max are over the last 1,024 observations of the phase; the ≤ columns over all of it.',
    '',
  ].join('\n');
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${date}-${machine.hostname}-worker-lag.md`);
  writeFileSync(file, table);
  process.stdout.write(`${table}\n`);
  log(`worker-lag: wrote ${file}`);
  await killAll();
}

await main();
