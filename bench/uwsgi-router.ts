/**
 * `npx tsx bench/uwsgi-router.ts`: Switchyard against uWSGI's own HTTP router, side by side in the same
 * run, in front of the SAME three real uWSGI python nodes (uwsgi protocol, `--http-to` ×3 for both), with
 * the plain Node floor (bench/plain-node-uwsgi-proxy.js: the least a Node.js process can do on this path)
 * as the third router, so the table shows how much of the gap is the runtime's.
 * Bounded: about 110 s with the defaults (2 rounds × 3 routers × 2 responses × (4 s warm-up + 4 s)), more
 * with --rounds; the watchdog allows 420 s.
 *
 *   npx tsx bench/uwsgi-router.ts [--rounds 2] [--duration 4] [--warmup 4] [--no-write] [--workers N] [--unpinned]
 *
 * The 4 s warm-up lets V8 optimise the Node routers' request path before measuring (a router is a
 * long-lived process; with 1 s, Switchyard's p99 on tiny responses read 119 ms instead of ~30 ms).
 *
 * Rig (as bench/run.ts): the router under test pinned to core 0; wrk (-t1 -c64, keep-alive) and the
 * three nodes (1 process each) on core 1; a fresh router process per measurement. uWSGI's router runs
 * with `--http-keepalive` (without it, it closes every client connection) and `--master`. The nodes
 * share core 1 with wrk, so both routers may be node-bound: "req per router CPU-s" (requests divided by
 * the router process tree's CPU time) compares the routers' own cost even then.
 * Writes bench/results/YYYY-MM-DD-<hostname>-uwsgi-router.md unless --no-write.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type Child, canPin, cpuSeconds, installCleanup, killAll, pinSelf, start } from './lib/children.js';
import { backgroundLoad, hasCommand, machineInfo } from './lib/machine.js';
import { freePort, waitFor2xx } from './lib/probe.js';
import { BIG_BODY, startUwsgiNodes } from './lib/uwsgi-nodes.js';
import { runWrk, type WrkResult, wrkVersion } from './lib/wrk.js';
import { SWITCHYARD_CLI } from './subscription-latency.js';

const ROOT = resolve(import.meta.dirname, '..');
const HOST = 'bench.test';
const WATCHDOG_MS = 420_000;

type RouterId = 'uwsgi' | 'switchyard' | 'plain';
const PAYLOADS = [
  { id: 'tiny', label: 'tiny (3 B)', path: '/', size: 3 },
  { id: '16k', label: '16 KiB', path: '/16k', size: BIG_BODY },
] as const;

interface Sample {
  readonly round: number;
  readonly wrk: WrkResult;
  readonly cpu: number;
}

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    duration: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '4' },
    'no-write': { type: 'boolean', default: false },
    /** Switchyard's --workers (HTTP worker processes). */
    workers: { type: 'string', default: '1' },
    /** Let the OS place every process (a multi-process router can then use every core). */
    unpinned: { type: 'boolean', default: false },
  },
  strict: true,
});
const rounds = Number(args.rounds);
const durationS = Number(args.duration);
const warmupS = Number(args.warmup);
if (![rounds, durationS, warmupS].every((n) => Number.isInteger(n) && n >= 0) || rounds < 1 || durationS < 1) {
  process.stderr.write('bench: --rounds, --duration and --warmup must be whole numbers (rounds, duration >= 1)\n');
  process.exit(2);
}
for (const tool of ['wrk', 'uwsgi']) {
  if (!hasCommand(tool)) {
    process.stderr.write(`bench: ${tool} is required (apt-get install wrk uwsgi-core uwsgi-plugin-python3)\n`);
    process.exit(1);
  }
}

installCleanup();
const watchdog = setTimeout(() => {
  process.stderr.write(`bench: still running after ${WATCHDOG_MS / 1000} s, aborting\n`);
  void killAll().finally(() => process.exit(1));
}, WATCHDOG_MS);
watchdog.unref();

const machine = machineInfo();
const pinned = !args.unpinned && canPin(machine.cpus);
const workers = Number(args.workers);
const LABEL: Readonly<Record<RouterId, string>> = {
  uwsgi: "uWSGI's HTTP router (--http-to ×3, --http-keepalive)",
  switchyard: `Switchyard (CLI, --http-to ×3${Number(args.workers) > 1 ? `, --workers ${args.workers}` : ''})`,
  plain: 'plain Node floor (bench/plain-node-uwsgi-proxy.js)',
};
const ROUTER_CPU = pinned ? 0 : undefined;
const CLIENT_CPU = pinned ? 1 : undefined;
if (pinned) pinSelf(1);
const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-uwsgi-'));
const log = (line: string) => process.stderr.write(`${line}\n`);

async function startRouter(id: RouterId, nodes: readonly number[]): Promise<[Child, number]> {
  const port = await freePort();
  const httpTo = nodes.flatMap((p) => ['--http-to', `127.0.0.1:${p}`]);
  const child =
    id === 'plain'
      ? start(
          'plain-node-uwsgi-proxy',
          process.execPath,
          [
            join(ROOT, 'bench', 'plain-node-uwsgi-proxy.js'),
            '--listen',
            `127.0.0.1:${port}`,
            ...nodes.flatMap((p) => ['--node', `127.0.0.1:${p}`]),
          ],
          { cpu: ROUTER_CPU },
        )
      : id === 'uwsgi'
        ? start(
            'uwsgi-router',
            'uwsgi',
            [
              '--plugins',
              'corerouter,http',
              '--http',
              `127.0.0.1:${port}`,
              ...httpTo,
              '--http-keepalive',
              '--master',
              '--logto',
              join(dir, 'router.log'),
            ],
            { cpu: ROUTER_CPU },
          )
        : start(
            'switchyard',
            process.execPath,
            [
              SWITCHYARD_CLI,
              '--workers',
              String(workers),
              '--http',
              `127.0.0.1:${port}`,
              ...httpTo,
              '--subscription-server',
              '127.0.0.1:0',
              '--admin',
              '127.0.0.1:0',
              '--log-level',
              'warn',
            ],
            { cpu: ROUTER_CPU },
          );
  for (const payload of PAYLOADS) {
    const reply = await waitFor2xx(port, payload.path, HOST, 10_000);
    if (reply.body.length !== payload.size) throw new Error(`${id}: wrong body for ${payload.path}`);
  }
  return [child, port];
}

async function measure(id: RouterId, path: string, nodes: readonly number[], round: number): Promise<Sample> {
  const [router, port] = await startRouter(id, nodes);
  try {
    const wrk = { url: `http://127.0.0.1:${port}${path}`, host: HOST, threads: 1, connections: 64, cpu: CLIENT_CPU };
    if (warmupS > 0) await runWrk({ ...wrk, durationS: warmupS });
    const cpu0 = cpuSeconds(router.pid);
    const result = await runWrk({ ...wrk, durationS });
    return { round, wrk: result, cpu: cpuSeconds(router.pid) - cpu0 };
  } finally {
    await router.stop(3000);
  }
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const fmtRps = (n: number) => (n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0));
const fmtMs = (n: number) => `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms`;

async function main(): Promise<void> {
  const started = Date.now();
  const load = await backgroundLoad(machine.cpus);
  const nodes = await startUwsgiNodes(dir, CLIENT_CPU);
  const samples = new Map<string, Sample[]>();
  const routers: RouterId[] = ['switchyard', 'uwsgi', 'plain'];
  for (let round = 0; round < rounds; round++) {
    for (const payload of PAYLOADS) {
      const order = round % 2 === 0 ? routers : [...routers].reverse();
      for (const id of order) {
        log(`bench: round ${round + 1}/${rounds} ${payload.id} ${id}`);
        const sample = await measure(id, payload.path, nodes, round);
        const key = `${id}/${payload.id}`;
        samples.set(key, [...(samples.get(key) ?? []), sample]);
        log(
          `       ${fmtRps(sample.wrk.rps)} rps, p50 ${fmtMs(sample.wrk.p50)}, p99 ${fmtMs(sample.wrk.p99)}, ` +
            `${(sample.wrk.requests / sample.cpu).toFixed(0)} req/CPU-s, errors ${sample.wrk.errors}`,
        );
      }
    }
  }
  const lines = [
    '| router | response | rps (min–max) | p50 | p99 | vs uWSGI (rps) | req per router CPU-s | vs uWSGI (CPU) | errors |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const payload of PAYLOADS) {
    for (const id of routers) {
      const s = samples.get(`${id}/${payload.id}`)!;
      const theirs = samples.get(`uwsgi/${payload.id}`)!;
      const ratio = (f: (x: Sample) => number) =>
        median(s.map((x) => f(x) / f(theirs.find((t) => t.round === x.round)!))).toFixed(2);
      const rps = s.map((x) => x.wrk.rps);
      lines.push(
        `| ${LABEL[id]} | ${payload.label} | ${fmtRps(median(rps))} (${fmtRps(Math.min(...rps))}–${fmtRps(Math.max(...rps))}) | ` +
          `${fmtMs(median(s.map((x) => x.wrk.p50)))} | ${fmtMs(median(s.map((x) => x.wrk.p99)))} | ${ratio((x) => x.wrk.rps)}x | ` +
          `${fmtRps(median(s.map((x) => x.wrk.requests / x.cpu)))} | ${ratio((x) => x.wrk.requests / x.cpu)}x | ` +
          `${s.reduce((n, x) => n + x.wrk.errors, 0)} |`,
      );
    }
  }
  const table = lines.join('\n');
  process.stdout.write(`\n${table}\n\n`);
  const now = new Date();
  const date = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}-${String(now.getDate()).padStart(2, '0')}`;
  const report = `# Switchyard vs uWSGI's HTTP router, ${date} on ${machine.hostname}

- Machine: ${machine.cpus} CPUs, ${machine.cpuModel}, ${machine.kernel}; node ${machine.node}, ${wrkVersion()}
- Rig: ${pinned ? 'router pinned to core 0; wrk and the 3 uWSGI nodes on core 1' : 'UNPINNED'}; nodes = uwsgi 2.0 python3,
  1 process each, uwsgi protocol; wrk \`-t1 -c64 -d${durationS}s\` keep-alive, \`Host: ${HOST}\`; ${rounds} interleaved rounds,
  a fresh router process per measurement after a ${warmupS} s warm-up; ratios within each round, then the median.
- Background load before the run: ${(load * 100).toFixed(0)}% of all CPUs${load > 0.1 ? ' **(shared machine: absolute numbers are low and noisy; trust the within-round ratios more)**' : ''}.
- Wall time: ${((Date.now() - started) / 1000).toFixed(0)} s. Command: \`npx tsx bench/uwsgi-router.ts${workers > 1 ? ` --workers ${workers}` : ''}${args.unpinned ? ' --unpinned' : ''}\`.

${table}
`;
  if (!args['no-write']) {
    const outDir = join(ROOT, 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `${date}-${machine.hostname}-uwsgi-router.md`);
    writeFileSync(`${file}.tmp`, report);
    renameSync(`${file}.tmp`, file);
    log(`bench: wrote ${file.replace(`${ROOT}/`, '')}`);
  }
}

try {
  await main();
} finally {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
  clearTimeout(watchdog);
}
