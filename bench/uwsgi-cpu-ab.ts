/**
 * `npx tsx bench/uwsgi-cpu-ab.ts --a DIR [--b DIR]`: router CPU time per request on the uwsgi path, A/B
 * between two builds of Switchyard (DIR = a checkout root holding packages/switchyard/dist/cli.js and
 * resolvable workspace packages; B defaults to this repository). Used to judge changes to the uwsgi path,
 * where wall-clock throughput on a shared 2-core machine is too noisy to compare builds.
 *
 *   npx tsx bench/uwsgi-cpu-ab.ts --a /tmp/sy-base [--rounds 4] [--duration 4] [--path /] [--connections 64]
 *
 * Rig as bench/uwsgi-router.ts: three real uWSGI python nodes (1 process each) and wrk on core 1, the routers
 * (CLI, --http-to ×3) pinned to core 0, fresh router processes every round after a 1 s warm-up. By default
 * both builds run AT ONCE, each behind its own wrk over the same window, so load from other work on the
 * shared machine hits both alike (the per-round B/A ratio is the number to trust); `--sequential` runs
 * them one after the other instead (A B, B A, ...), which is closer to a real single-router load but far
 * noisier. Reports µs of router CPU (utime+stime of its process tree, from /proc) per request for each
 * round and the median per build, plus the B/A ratio.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type Child, canPin, cpuSeconds, installCleanup, killAll, pinSelf, start } from './lib/children.js';
import { hasCommand, machineInfo } from './lib/machine.js';
import { freePort, waitFor2xx } from './lib/probe.js';
import { startUwsgiNodes } from './lib/uwsgi-nodes.js';
import { runWrk } from './lib/wrk.js';

const ROOT = resolve(import.meta.dirname, '..');
const HOST = 'bench.test';

const { values: args } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: ROOT },
    rounds: { type: 'string', default: '4' },
    duration: { type: 'string', default: '4' },
    connections: { type: 'string', default: '64' },
    path: { type: 'string', default: '/' },
    'cpu-prof': { type: 'string' },
    sequential: { type: 'boolean', default: false },
  },
  strict: true,
});
if (args.a === undefined) {
  process.stderr.write('bench: --a DIR is required (a checkout root with a built packages/switchyard/dist)\n');
  process.exit(2);
}
const builds = { A: resolve(args.a), B: resolve(args.b) } as const;
for (const dir of Object.values(builds)) {
  if (!existsSync(join(dir, 'packages/switchyard/dist/cli.js'))) {
    process.stderr.write(`bench: ${dir}/packages/switchyard/dist/cli.js is missing\n`);
    process.exit(2);
  }
}
if (!hasCommand('wrk') || !hasCommand('uwsgi')) {
  process.stderr.write('bench: wrk and uwsgi are required (apt-get install wrk uwsgi-core uwsgi-plugin-python3)\n');
  process.exit(1);
}
const rounds = Number(args.rounds);
const durationS = Number(args.duration);
const connections = Number(args.connections);

installCleanup();
const watchdog = setTimeout(
  () => {
    process.stderr.write('bench: watchdog, aborting\n');
    void killAll().finally(() => process.exit(1));
  },
  (rounds * 2 * (durationS + 6) + 30) * 1000,
);
watchdog.unref();

const machine = machineInfo();
const pinned = canPin(machine.cpus);
const ROUTER_CPU = pinned ? 0 : undefined;
const CLIENT_CPU = pinned ? 1 : undefined;
if (pinned) pinSelf(1);
const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-uwsgi-ab-'));
const log = (line: string) => process.stderr.write(`${line}\n`);

async function startRouter(
  build: keyof typeof builds,
  nodes: readonly number[],
  round: number,
): Promise<[Child, number]> {
  const port = await freePort();
  const profile = args['cpu-prof'] !== undefined && build === 'B' && round === 0;
  const router: Child = start(
    'switchyard',
    process.execPath,
    [
      ...(profile ? ['--cpu-prof', '--cpu-prof-dir', resolve(args['cpu-prof']!)] : []),
      join(builds[build], 'packages/switchyard/dist/cli.js'),
      // One process: builds with --workers (default: one per CPU) are told 1; older builds lack the option.
      ...(existsSync(join(builds[build], 'packages/switchyard/dist/worker-main.js')) ? ['--workers', '1'] : []),
      '--http',
      `127.0.0.1:${port}`,
      ...nodes.flatMap((p) => ['--http-to', `127.0.0.1:${p}`]),
      '--subscription-server',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--log-level',
      'warn',
    ],
    { cpu: ROUTER_CPU },
  );
  await waitFor2xx(port, args.path, HOST, 10_000);
  return [router, port];
}

async function stopRouter(router: Child, profile: boolean): Promise<void> {
  // SIGINT lets node write its --cpu-prof file; the group is killed after the grace period.
  if (profile) {
    process.kill(router.pid, 'SIGINT');
    await Promise.race([router.exited, new Promise((r) => setTimeout(r, 3000))]);
  }
  await router.stop(3000);
}

/** Both builds at once, each with its own wrk, over the same window: other load hits both alike. */
async function measurePair(nodes: readonly number[], round: number): Promise<[number, number]> {
  const first = round % 2 === 0 ? 'A' : 'B';
  const one = await startRouter(first, nodes, round);
  const two = await startRouter(first === 'A' ? 'B' : 'A', nodes, round);
  const [[a, portA], [b, portB]] = first === 'A' ? [one, two] : [two, one];
  try {
    const wrk = (port: number, durationS: number) =>
      runWrk({
        url: `http://127.0.0.1:${port}${args.path}`,
        host: HOST,
        threads: 1,
        connections,
        cpu: CLIENT_CPU,
        durationS,
      });
    await Promise.all([wrk(portA, 1), wrk(portB, 1)]);
    const a0 = cpuSeconds(a.pid);
    const b0 = cpuSeconds(b.pid);
    const [ra, rb] = await Promise.all([wrk(portA, durationS), wrk(portB, durationS)]);
    const usA = ((cpuSeconds(a.pid) - a0) / ra.requests) * 1e6;
    const usB = ((cpuSeconds(b.pid) - b0) / rb.requests) * 1e6;
    log(
      `bench: round ${round + 1} together: A ${ra.requests} req ${usA.toFixed(0)} µs/req, B ${rb.requests} req ${usB.toFixed(0)} µs/req, B/A ${(usB / usA).toFixed(3)}`,
    );
    if (ra.errors + rb.errors > 0) log(`       errors A ${ra.errors} B ${rb.errors}`);
    return [usA, usB];
  } finally {
    await stopRouter(a, false);
    await stopRouter(b, args['cpu-prof'] !== undefined && round === 0);
  }
}

async function measure(build: keyof typeof builds, nodes: readonly number[], round: number): Promise<number> {
  const profile = args['cpu-prof'] !== undefined && build === 'B' && round === 0;
  const [router, port] = await startRouter(build, nodes, round);
  try {
    const wrk = { url: `http://127.0.0.1:${port}${args.path}`, host: HOST, threads: 1, connections, cpu: CLIENT_CPU };
    await runWrk({ ...wrk, durationS: 1 });
    const cpu0 = cpuSeconds(router.pid);
    const sys0 = systemSeconds(router.pid);
    const result = await runWrk({ ...wrk, durationS });
    const cpu = cpuSeconds(router.pid) - cpu0;
    const sys = systemSeconds(router.pid) - sys0;
    if (result.errors > 0) log(`       ${build}: ${result.errors} errors`);
    const us = (cpu / result.requests) * 1e6;
    log(
      `bench: round ${round + 1} ${build}: ${result.requests} req, ${cpu.toFixed(2)} CPU-s, ${us.toFixed(0)} µs/req ` +
        `(sys ${((sys / result.requests) * 1e6).toFixed(0)})`,
    );
    return us;
  } finally {
    await stopRouter(router, profile);
  }
}

/** stime of the router process itself (not its children), seconds. */
function systemSeconds(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[12]) / 100;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

try {
  const nodes = await startUwsgiNodes(dir, CLIENT_CPU);
  const results = { A: [] as number[], B: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    if (!args.sequential) {
      const [a, b] = await measurePair(nodes, round);
      results.A.push(a);
      results.B.push(b);
      continue;
    }
    const order: (keyof typeof builds)[] = round % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
    for (const build of order) results[build].push(await measure(build, nodes, round));
  }
  const a = median(results.A);
  const b = median(results.B);
  const ratios = results.B.map((x, i) => x / results.A[i]!);
  process.stdout.write(
    `path ${args.path}, -c${connections}, ${rounds} rounds × ${durationS} s\n` +
      `A ${builds.A}: ${results.A.map((x) => x.toFixed(0)).join(' ')} µs/req, median ${a.toFixed(0)}\n` +
      `B ${builds.B}: ${results.B.map((x) => x.toFixed(0)).join(' ')} µs/req, median ${b.toFixed(0)}\n` +
      `B/A ${(b / a).toFixed(3)} (median of per-round ratios ${median(ratios).toFixed(3)})\n`,
  );
} finally {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
  clearTimeout(watchdog);
}
