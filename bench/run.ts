/**
 * `npm run bench`: throughput of three reverse proxies side by side, in front of the same backend, then
 * the subscription → first routed request latency. Writes bench/results/YYYY-MM-DD-<hostname>.md.
 *
 * Rig (see bench/README.md and node-proxy-performance.md): the proxy under test pinned to core 0; wrk
 * (-t1 -c64, keep-alive) and the backend (nginx, 1 worker, 3 ports, fixed response) on core 1; the
 * orchestrator pinned to core 1 too. Every measurement uses a fresh proxy process: start, wait for a 2xx,
 * warm up, then a measured wrk run while /proc CPU time of the proxy's process tree is sampled. Rounds
 * are interleaved (every variant once per round, order rotated); ratios are computed within each round,
 * and the table shows medians with the min–max spread over rounds.
 *
 *   npx tsx bench/run.ts [--rounds 3] [--duration 5] [--warmup 1] [--only plain,switchyard,switchyard-w2,nginx] [--unpinned]
 *                        [--no-latency] [--no-write]
 */
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type Child, canPin, cpuSeconds, installCleanup, killAll, pinSelf, start } from './lib/children.js';
import { backgroundLoad, coreTimes, ensureTools, machineInfo } from './lib/machine.js';
import {
  LARGE_BODY_SIZE,
  nginxArgs,
  nginxAvailable,
  nginxVersion,
  TINY_BODY,
  writeBackendConfig,
  writeProxyConfig,
} from './lib/nginx.js';
import { freePort, waitFor2xx } from './lib/probe.js';
import { runWrk, type WrkResult, wrkVersion } from './lib/wrk.js';
import { latencyMarkdown, measureSubscriptionLatency, percentile, SWITCHYARD_CLI } from './subscription-latency.js';

const ROOT = resolve(import.meta.dirname, '..');
const HOST = 'bench.test';
/** Hard ceiling for the whole run: everything is killed past it. */
const WATCHDOG_MS = 290_000;

type VariantId = 'plain' | 'switchyard' | 'switchyard-ops' | 'switchyard-w2' | 'nginx';
const VARIANT_LABEL: Readonly<Record<VariantId, string>> = {
  plain: 'plain Node (node:http + keep-alive http.Agent)',
  switchyard: 'Switchyard (CLI, 3 static HTTP nodes)',
  'switchyard-ops': 'Switchyard + access log to a file + GET /metrics every 1 s',
  'switchyard-w2': 'Switchyard --workers 2 (primary + 2 HTTP workers)',
  nginx: 'nginx (1 worker, keepalive upstream)',
};

interface Payload {
  readonly id: string;
  readonly label: string;
  readonly path: string;
  check(body: Buffer): boolean;
}
const PAYLOADS: readonly Payload[] = [
  { id: 'tiny', label: `tiny (${TINY_BODY.length} B)`, path: '/', check: (b) => b.toString() === TINY_BODY },
  { id: '16k', label: '16 KiB', path: '/16k', check: (b) => b.length === LARGE_BODY_SIZE },
];

interface Sample {
  readonly round: number;
  readonly wrk: WrkResult;
  readonly cpu: number;
  /** Share of core 0 used by processes other than the proxy during the measured run (undefined unpinned). */
  readonly foreign: number | undefined;
}

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    only: { type: 'string', default: 'plain,switchyard,switchyard-w2,nginx' },
    'no-latency': { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    /** Let the OS place every process (multi-process proxies can then use every core). */
    unpinned: { type: 'boolean', default: false },
  },
  strict: true,
});
const rounds = Number(args.rounds);
const durationS = Number(args.duration);
const warmupS = Number(args.warmup);
const only = new Set(args.only.split(',').map((s) => s.trim()));
if (![rounds, durationS, warmupS].every((n) => Number.isInteger(n) && n >= 0) || rounds < 1 || durationS < 1) {
  process.stderr.write('bench: --rounds, --duration and --warmup must be whole numbers (rounds, duration >= 1)\n');
  process.exit(2);
}

installCleanup();
const watchdog = setTimeout(() => {
  process.stderr.write(`bench: still running after ${WATCHDOG_MS / 1000} s, aborting\n`);
  void killAll().finally(() => process.exit(1));
}, WATCHDOG_MS);
watchdog.unref();

const problems = ensureTools();
if (problems.length > 0) {
  for (const line of problems) process.stderr.write(`${line}\n`);
  process.stderr.write('bench: wrk and nginx (the shared backend) are required; nothing was measured\n');
  process.exit(1);
}

const machine = machineInfo();
const pinned = !args.unpinned && canPin(machine.cpus);
const PROXY_CPU = pinned ? 0 : undefined;
const CLIENT_CPU = pinned ? 1 : undefined;
if (pinned) pinSelf(1);
else if (!args.unpinned) {
  process.stderr.write('bench: fewer than 2 CPUs or no taskset: running unpinned, numbers are noisier\n');
}

const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-'));
/** Proxy port → admin port of switchyard-ops runs. */
const adminPorts = new Map<number, number>();
/** Successful /metrics scrapes (switchyard-ops), logged per run to show they happened. */
let scrapeCount = 0;
async function scrape(adminPort: number): Promise<void> {
  try {
    const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
    if (res.ok && (await res.text()).includes('switchyard_requests_total')) scrapeCount++;
  } catch {
    // the proxy may be stopping
  }
}
const log = (line: string) => process.stderr.write(`${line}\n`);

/** Starts a fresh proxy of `variant` on a free port; resolves when it answered 2xx with the right body. */
async function startProxy(variant: VariantId, backendPorts: readonly number[], tag: string): Promise<[Child, number]> {
  const port = await freePort();
  const backendUrls = backendPorts.map((p) => `http://127.0.0.1:${p}`);
  let child: Child;
  if (variant === 'plain') {
    const backends = backendUrls.flatMap((u) => ['--backend', u]);
    child = start(
      'plain',
      process.execPath,
      [join(ROOT, 'bench', 'plain-node-proxy.js'), '--listen', `127.0.0.1:${port}`, ...backends],
      {
        cpu: PROXY_CPU,
      },
    );
  } else if (variant === 'switchyard' || variant === 'switchyard-ops' || variant === 'switchyard-w2') {
    const nodes = backendUrls.flatMap((u) => ['--http-to', u]);
    // switchyard-ops: the operator surface on (access log to a file, admin on a known port for scrapes).
    const adminPort = variant === 'switchyard-ops' ? await freePort() : 0;
    const ops =
      variant === 'switchyard-ops'
        ? ['--access-log', join(dir, `access-${tag}.log`), '--workers', '1']
        : variant === 'switchyard-w2'
          ? ['--workers', '2']
          : ['--workers', '1'];
    if (adminPort !== 0) adminPorts.set(port, adminPort);
    child = start(
      'switchyard',
      process.execPath,
      [
        SWITCHYARD_CLI,
        '--http',
        `127.0.0.1:${port}`,
        ...nodes,
        '--subscription-server',
        '127.0.0.1:0',
        '--admin',
        `127.0.0.1:${adminPort}`,
        ...ops,
      ],
      { cpu: PROXY_CPU },
    );
  } else {
    const conf = writeProxyConfig(dir, port, backendPorts, tag);
    child = start('nginx', 'nginx', nginxArgs(dir, conf), { cpu: PROXY_CPU });
  }
  let exited = false;
  void child.exited.then(() => {
    exited = true;
  });
  try {
    for (const payload of PAYLOADS) {
      const reply = await waitFor2xx(port, payload.path, HOST, 5000, () => !exited);
      if (!payload.check(reply.body)) throw new Error(`wrong body for ${payload.path} (${reply.body.length} bytes)`);
    }
  } catch (error) {
    await child.stop();
    const tail = child.output().trim().split('\n').slice(-3).join(' | ');
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`${VARIANT_LABEL[variant]} did not answer: ${why}${tail ? ` [output: ${tail}]` : ''}`);
  }
  return [child, port];
}

async function measure(
  variant: VariantId,
  payload: Payload,
  backendPorts: readonly number[],
  round: number,
): Promise<Sample> {
  const [proxy, port] = await startProxy(variant, backendPorts, `${variant}-${payload.id}-${round}`);
  try {
    const wrk = {
      url: `http://127.0.0.1:${port}${payload.path}`,
      host: HOST,
      threads: 1,
      connections: 64,
      cpu: CLIENT_CPU,
    };
    if (warmupS > 0) await runWrk({ ...wrk, durationS: warmupS });
    const cpu0 = cpuSeconds(proxy.pid);
    const core0 = coreTimes(0);
    // switchyard-ops: a Prometheus scrape every second while wrk runs.
    const adminPort = adminPorts.get(port);
    const scrapes = adminPort === undefined ? undefined : setInterval(() => void scrape(adminPort), 1000);
    const result = await runWrk({ ...wrk, durationS });
    if (scrapes !== undefined) {
      clearInterval(scrapes);
      log(`       /metrics scraped ${scrapeCount} times so far`);
    }
    const cpu = cpuSeconds(proxy.pid) - cpu0;
    const core1 = coreTimes(0);
    const wall = core1.total - core0.total;
    const foreign = pinned && wall > 0 ? Math.max(0, (core1.busy - core0.busy - cpu) / wall) : undefined;
    return { round, wrk: result, cpu, foreign };
  } finally {
    await proxy.stop();
  }
}

const median = (xs: readonly number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
const fmtRps = (n: number) => (n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0));
const fmtMs = (n: number) => `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms`;
const fmtPct = (n: number | undefined) => (n === undefined ? 'n/a' : `${(n * 100).toFixed(0)}%`);

async function main(): Promise<void> {
  const started = Date.now();
  const load = await backgroundLoad(machine.cpus);
  if (load > 0.1) {
    log(
      `bench: WARNING: ${(load * 100).toFixed(0)}% of the machine's CPU is busy before the bench starts; numbers will be low`,
    );
  }
  const backendPorts = [await freePort(), await freePort(), await freePort()];
  const backend = start('backend', 'nginx', nginxArgs(dir, writeBackendConfig(dir, backendPorts)), { cpu: CLIENT_CPU });
  for (const p of backendPorts) {
    for (const payload of PAYLOADS) {
      const reply = await waitFor2xx(p, payload.path, HOST, 5000);
      if (!payload.check(reply.body)) throw new Error(`backend on ${p} serves a wrong body for ${payload.path}`);
    }
  }
  void backend.exited.then((code) => log(`bench: backend nginx exited (${code}) ${backend.output().slice(-300)}`));

  const variants = (['plain', 'switchyard', 'switchyard-ops', 'switchyard-w2', 'nginx'] as const).filter((v) =>
    only.has(v),
  );
  const skipped = new Map<VariantId, string>();
  if (variants.includes('switchyard') && !existsSync(SWITCHYARD_CLI)) {
    skipped.set('switchyard', `${SWITCHYARD_CLI.replace(`${ROOT}/`, '')} is missing (not written or not built yet)`);
    for (const v of ['switchyard-ops', 'switchyard-w2'] as const) {
      skipped.set(v, `${SWITCHYARD_CLI.replace(`${ROOT}/`, '')} is missing (not written or not built yet)`);
    }
  }
  if (variants.includes('nginx') && !nginxAvailable()) skipped.set('nginx', 'nginx is not installed');
  for (const [v, why] of skipped) log(`bench: skipping ${VARIANT_LABEL[v]}: ${why}`);

  const samples = new Map<string, Sample[]>(); // `${variant}/${payload}`
  for (let round = 0; round < rounds; round++) {
    for (const payload of PAYLOADS) {
      const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
      for (const variant of order) {
        if (skipped.has(variant)) continue;
        log(`bench: round ${round + 1}/${rounds} ${payload.id} ${variant}`);
        try {
          const sample = await measure(variant, payload, backendPorts, round);
          const key = `${variant}/${payload.id}`;
          samples.set(key, [...(samples.get(key) ?? []), sample]);
          log(
            `       ${fmtRps(sample.wrk.rps)} rps, p50 ${fmtMs(sample.wrk.p50)}, p99 ${fmtMs(sample.wrk.p99)}, ` +
              `${(sample.wrk.requests / sample.cpu).toFixed(0)} req/CPU-s, errors ${sample.wrk.errors}` +
              (sample.foreign === undefined ? '' : `, other work on core 0 ${fmtPct(sample.foreign)}`),
          );
        } catch (error) {
          const why = error instanceof Error ? error.message : String(error);
          skipped.set(variant, why);
          log(`bench: skipping ${variant} from now on: ${why}`);
        }
      }
    }
  }

  const roundRatio = (a: Sample[] | undefined, b: Sample[] | undefined): number[] => {
    if (a === undefined || b === undefined) return [];
    return a.flatMap((s) => {
      const other = b.find((o) => o.round === s.round);
      return other === undefined ? [] : [s.wrk.rps / other.wrk.rps];
    });
  };
  const lines: string[] = [];
  lines.push(
    '| variant | response | rps (min–max) | p50 | p99 | vs plain Node | vs nginx | req per proxy CPU-s | errors |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const payload of PAYLOADS) {
    for (const variant of variants) {
      const s = samples.get(`${variant}/${payload.id}`);
      if (s === undefined || s.length === 0) {
        lines.push(
          `| ${VARIANT_LABEL[variant]} | ${payload.label} | skipped: ${skipped.get(variant) ?? 'no sample'} | | | | | | |`,
        );
        continue;
      }
      const rps = s.map((x) => x.wrk.rps);
      const vsPlain = roundRatio(s, samples.get(`plain/${payload.id}`));
      const vsNginx = roundRatio(s, samples.get(`nginx/${payload.id}`));
      const ratio = (r: number[]) => (r.length === 0 ? 'n/a' : `${median(r).toFixed(2)}x`);
      lines.push(
        `| ${VARIANT_LABEL[variant]} | ${payload.label} | ${fmtRps(median(rps))} (${fmtRps(Math.min(...rps))}–${fmtRps(Math.max(...rps))}) | ` +
          `${fmtMs(median(s.map((x) => x.wrk.p50)))} | ${fmtMs(median(s.map((x) => x.wrk.p99)))} | ${ratio(vsPlain)} | ` +
          `${ratio(vsNginx)} | ${fmtRps(median(s.map((x) => x.wrk.requests / x.cpu)))} | ${s.reduce((n, x) => n + x.wrk.errors, 0)} |`,
      );
    }
  }
  const table = lines.join('\n');
  process.stdout.write(`\n${table}\n\n`);

  const raw = [
    '| round | response | variant | rps | p50 | p99 | proxy CPU-s | requests | other work on core 0 |',
    '|---:|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  let maxForeign = 0;
  for (let round = 0; round < rounds; round++) {
    for (const payload of PAYLOADS) {
      for (const variant of variants) {
        const s = samples.get(`${variant}/${payload.id}`)?.find((x) => x.round === round);
        if (s === undefined) continue;
        maxForeign = Math.max(maxForeign, s.foreign ?? 0);
        raw.push(
          `| ${round + 1} | ${payload.id} | ${variant} | ${s.wrk.rps.toFixed(0)} | ${fmtMs(s.wrk.p50)} | ${fmtMs(s.wrk.p99)} | ` +
            `${s.cpu.toFixed(2)} | ${s.wrk.requests} | ${fmtPct(s.foreign)} |`,
        );
      }
    }
  }

  let latency = '';
  if (!args['no-latency']) {
    log('bench: subscription → first routed request latency');
    latency = latencyMarkdown(await measureSubscriptionLatency({ count: 200, pin: pinned }));
    process.stdout.write(`${latency}\n`);
  }

  await backend.stop();
  const now = new Date();
  const date = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}-${String(now.getDate()).padStart(2, '0')}`;
  const report = `# Switchyard bench, ${date} on ${machine.hostname}

- Machine: ${machine.hostname}, ${machine.cpus} CPUs (nproc), ${machine.cpuModel}, ${machine.kernel}
- Software: node ${machine.node}, ${wrkVersion()}, ${nginxVersion()}
- Rig: ${pinned ? 'proxy pinned to core 0; wrk and the backend on core 1' : 'UNPINNED (fewer than 2 CPUs or no taskset)'}; backend = nginx, 1 worker, 3 ports on 127.0.0.1, fixed response;
  wrk \`-t1 -c64 -d${durationS}s\` keep-alive with \`Host: ${HOST}\`; ${rounds} interleaved rounds, a fresh proxy process per measurement
  after a ${warmupS} s warm-up; medians with the min–max spread over rounds; ratios taken within each round, then the median.
  "req per proxy CPU-s" = requests / (utime+stime of the proxy process tree during the measured run, from /proc).
- Background load before the run: ${fmtPct(load)} of all CPUs; most other work seen on core 0 during a measured run:
  ${fmtPct(maxForeign)}${maxForeign > 0.05 || load > 0.1 ? ' **(the machine was shared: absolute numbers are low and noisy; trust the within-round ratios more)**' : ''}.
- Wall time: ${((Date.now() - started) / 1000).toFixed(0)} s. Command: \`npm run bench\`.

## Throughput

${table}

### Per round

${raw.join('\n')}

${latency}`;
  if (!args['no-write']) {
    const outDir = join(ROOT, 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `${date}-${machine.hostname}.md`);
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
