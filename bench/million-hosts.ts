/**
 * A million virtual hosts (bench/README.md, "A million virtual hosts"). Everything goes through the
 * subscription socket into the Switchyard CLI, started with the memory probe (lib/memory-probe.mjs: full
 * GC + process.memoryUsage(), event-loop delay histogram, over an IPC channel).
 *  - memory: 1 000 000 hosts × 1 node, then a fresh process with 100 000 hosts × 3 nodes: memory after
 *    three full GCs, before and after loading, per host: heapUsed, heap + external (typed arrays),
 *    RSS. Scale with --hosts (the 3-node case uses hosts / 10).
 *  - throughput (in the 1M process): wrk with a Lua script choosing a random host among all of them
 *    for every request, against the same script choosing among one host; interleaved rounds; the
 *    backend is nginx (1 worker, 3 ports; every host's node is one of them).
 *  - sweep (same process): nobody refreshes the hosts, so with `--subscription-tolerance 120` they all
 *    expire about 2 minutes after their load; the event-loop delay (monitorEventLoopDelay, 1 ms
 *    resolution) is recorded over the whole expiry, while one kept-alive host serves wrk.
 * Writes bench/results/YYYY-MM-DD-<hostname>-million-hosts.md unless --no-write. About 4 minutes.
 *
 *   npx tsx bench/million-hosts.ts [--hosts 1000000] [--only memory,throughput,sweep] [--no-write]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { canPin, installCleanup, killAll, pinSelf, start } from './lib/children.js';
import { loadHosts, type Placement } from './lib/intake-socket.js';
import { machineInfo } from './lib/machine.js';
import { nginxArgs, nginxAvailable, writeBackendConfig } from './lib/nginx.js';
import { freePort, waitFor2xx } from './lib/probe.js';
import {
  loadAverage,
  processCpuSeconds,
  runSender,
  type SwitchyardProcess,
  startSwitchyard,
} from './lib/subscriptions.js';
import { runWrk, type WrkResult } from './lib/wrk.js';

const DOMAIN = 'scale.test';
const LOAD_RATE = 30_000;
/** uWSGI master's fields, with proto=http: the backend is nginx. */
const HTTP_NODE = { modifier1: '0', modifier2: '0', cores: '4', load: '0', weight: '1', proto: 'http' };
/**
 * Long enough that no loaded host expires before the throughput rounds are over (a million hosts load in
 * ~90 s, the rounds take ~60 s): an expiry running under the random-host rounds would be measured as
 * their cost (the 2026-11-25 run with 120 s had its last round at 56%).
 */
const TOLERANCE_S = 240;
const n = (x: number) => Math.round(x).toLocaleString('en');
const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface MemoryRow {
  readonly label: string;
  readonly hosts: number;
  readonly nodes: number;
  readonly loadSeconds: number;
  readonly before: NodeJS.MemoryUsage;
  readonly after: NodeJS.MemoryUsage;
}

function memoryMarkdown(rows: readonly MemoryRow[]): string {
  const per = (a: number, b: number, hosts: number) => `${n((a - b) / hosts)} B`;
  return [
    '## Memory per host',
    '',
    'Hosts loaded through the subscription socket (uWSGI 2.0 packets, one sender process); memory of the ' +
      'Switchyard process after full GCs before and after, divided by the number of hosts. The "before" is taken ' +
      'after 100 000 warm-up datagrams (unsubscribes for unknown hosts), so that the young generation V8 grows ' +
      'for any busy process is not charged to the hosts. "heap + ' +
      "external\" adds V8's external memory (the registry's typed-array columns and expiry chunks live there). " +
      'uWSGI reference: 1 930 B per hostname.',
    '',
    '| case | hosts | nodes | load time | heapUsed / host | heap + external / host | RSS / host | RSS after |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${n(r.hosts)} | ${n(r.nodes)} | ${r.loadSeconds.toFixed(0)} s | ` +
        `${per(r.after.heapUsed, r.before.heapUsed, r.hosts)} | ` +
        `${per(r.after.heapUsed + r.after.external, r.before.heapUsed + r.before.external, r.hosts)} | ` +
        `${per(r.after.rss, r.before.rss, r.hosts)} | ${mib(r.after.rss)} |`,
    ),
    '',
  ].join('\n');
}

/** The wrk Lua script: every request for a random host among `hosts`. */
function writeRandomHostScript(dir: string, hosts: number): string {
  const path = join(dir, `random-host-${hosts}.lua`);
  writeFileSync(
    path,
    `-- one random host of ${hosts} per request (h0..h${hosts - 1}.${DOMAIN})
local n = ${hosts}
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/", { ["Host"] = "h" .. math.random(0, n - 1) .. ".${DOMAIN}" })
end
`,
  );
  return path;
}

async function startBackend(dir: string, cpu: number | undefined): Promise<number[]> {
  const ports = [await freePort(), await freePort(), await freePort()];
  const conf = writeBackendConfig(dir, ports);
  start('nginx-backend', 'nginx', nginxArgs(dir, conf), { cpu });
  for (const port of ports) await waitFor2xx(port, '/', 'backend', 5000);
  return ports;
}

/**
 * Exercises the intake before the baseline is taken: unsubscribes for hosts nobody subscribed (decoded,
 * validated, refused as unknown-node) make V8 grow its young generation to its working size, a fixed
 * cost of any busy process that would otherwise be charged to the hosts loaded next.
 */
async function warmUp(sy: SwitchyardProcess, placement: Placement): Promise<void> {
  await runSender(
    { mode: 'paced', first: 0, hosts: 50_000, rate: LOAD_RATE, seconds: 100_000 / LOAD_RATE },
    {
      port: sy.udpPort,
      domain: `warmup.${DOMAIN}`,
      addresses: ['127.0.0.1:9'],
      fields: HTTP_NODE,
      command: 'unsubscribe',
      cpu: placement.sender,
    },
  );
}

async function loadInto(
  sy: SwitchyardProcess,
  hosts: number,
  addresses: readonly string[],
  perHost: boolean,
  placement: Placement,
): Promise<number> {
  const t0 = performance.now();
  if (perHost) {
    // Host i → addresses[i % 3]: one node per host, spread over the backends.
    await loadHosts(sy, 0, hosts, LOAD_RATE, placement, { addresses, domain: DOMAIN, fields: HTTP_NODE });
  } else {
    // Every host gets a node on every address.
    for (let k = 0; k < addresses.length; k++) {
      await loadHosts(sy, 0, hosts, LOAD_RATE, placement, {
        addresses: [addresses[k]!],
        domain: DOMAIN,
        fields: HTTP_NODE,
        expectedNodes: hosts * (k + 1),
      });
    }
  }
  return (performance.now() - t0) / 1000;
}

interface ThroughputRow {
  readonly round: number;
  readonly one: WrkResult;
  readonly random: WrkResult;
}

async function throughput(
  sy: SwitchyardProcess,
  hosts: number,
  dir: string,
  cpu: number | undefined,
  rounds: number,
  seconds: number,
): Promise<ThroughputRow[]> {
  const oneScript = writeRandomHostScript(dir, 1);
  const allScript = writeRandomHostScript(dir, hosts);
  const url = `http://127.0.0.1:${sy.httpPort}/`;
  const common = { url, host: `h0.${DOMAIN}`, threads: 1, connections: 64, cpu };
  await runWrk({ ...common, durationS: 2, script: allScript }); // warm-up, both paths
  await runWrk({ ...common, durationS: 1, script: oneScript });
  const rows: ThroughputRow[] = [];
  for (let round = 1; round <= rounds; round++) {
    const one = await runWrk({ ...common, durationS: seconds, script: oneScript });
    const random = await runWrk({ ...common, durationS: seconds, script: allScript });
    rows.push({ round, one, random });
  }
  return rows;
}

function throughputMarkdown(rows: readonly ThroughputRow[], hosts: number): string {
  const ratios = rows.map((r) => r.random.rps / r.one.rps).sort((a, b) => a - b);
  const median = ratios[Math.floor(ratios.length / 2)]!;
  return [
    '## Requests spread over every host vs one host',
    '',
    `wrk \`-t1 -c64\` with a Lua script whose request() picks a random host among ${n(hosts)} (or among one, ` +
      'the reference: same script, same wrk cost) for every request; backend nginx on 3 ports; rounds ' +
      `interleaved. Median ratio random / one host: **${(median * 100).toFixed(1)}%**.`,
    '',
    '| round | one host: rps | p99 | random host: rps | p99 | ratio | errors (one / random) |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.round} | ${n(r.one.rps)} | ${r.one.p99.toFixed(1)} ms | ${n(r.random.rps)} | ` +
        `${r.random.p99.toFixed(1)} ms | ${((r.random.rps / r.one.rps) * 100).toFixed(1)}% | ` +
        `${r.one.errors} / ${r.random.errors} |`,
    ),
    '',
  ].join('\n');
}

interface SweepResult {
  readonly expired: number;
  readonly seconds: number;
  readonly cpuMicrosPerNode: number;
  readonly loop: Awaited<ReturnType<SwitchyardProcess['loop']>>;
  readonly wrk: WrkResult | undefined;
}

/**
 * Waits for the mass expiry of the loaded hosts (they are never refreshed), recording the event-loop
 * delay over it; one extra host is kept alive by a paced sender and served to wrk meanwhile.
 */
async function sweep(
  sy: SwitchyardProcess,
  hosts: number,
  loadedAt: number,
  backend: string,
  placement: Placement,
): Promise<SweepResult> {
  const keep = hosts + 1; // h<keep> is refreshed every 0.1 s and never expires
  const until = loadedAt + TOLERANCE_S * 1000;
  const keeper = runSender(
    { mode: 'paced', first: keep, hosts: 1, rate: 10, seconds: Math.ceil((until - Date.now()) / 1000) + 120 },
    { port: sy.udpPort, domain: DOMAIN, addresses: [backend], fields: HTTP_NODE, cpu: placement.sender },
  );
  await sleep(Math.max(0, until - Date.now() - 10_000));
  await sy.loopReset();
  const cpu0 = processCpuSeconds(sy.child.pid);
  const t0 = performance.now();
  const wrk = runWrk({
    url: `http://127.0.0.1:${sy.httpPort}/`,
    host: `h${keep}.${DOMAIN}`,
    threads: 1,
    connections: 16,
    durationS: 60,
    cpu: placement.sender,
  }).catch(() => undefined);
  let nodes = (await sy.stats()).registry.nodes;
  const start = nodes;
  const deadline = Date.now() + 110_000;
  while (nodes > 1 && Date.now() < deadline) {
    await sleep(1000);
    nodes = (await sy.stats()).registry.nodes;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = processCpuSeconds(sy.child.pid) - cpu0;
  const loop = await sy.loop();
  const served = await wrk;
  await keeper.catch(() => undefined);
  return {
    expired: start - nodes,
    seconds,
    cpuMicrosPerNode: (cpu * 1e6) / Math.max(1, start - nodes),
    loop,
    wrk: served,
  };
}

function sweepMarkdown(r: SweepResult): string {
  return [
    '## Mass expiry',
    '',
    `The loaded hosts are never refreshed; with \`--subscription-tolerance ${TOLERANCE_S}\` they all expire about ` +
      `${TOLERANCE_S} s after their load, as fast as they were loaded. Event-loop delay of the Switchyard ` +
      'process over the whole expiry (perf_hooks.monitorEventLoopDelay, 1 ms resolution, from 10 s before the ' +
      'first deadline until the table is empty), while wrk (`-c16`) requests one host that a sender keeps alive.',
    '',
    '| nodes expired | over | CPU per expired node | loop delay max | p99.9 | p99 | mean | wrk on the kept host: rps | p99 | errors |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| ${n(r.expired)} | ${r.seconds.toFixed(0)} s | ${r.cpuMicrosPerNode.toFixed(1)} µs | ${r.loop.maxMs.toFixed(2)} ms | ` +
      `${r.loop.p999Ms.toFixed(2)} ms | ${r.loop.p99Ms.toFixed(2)} ms | ${r.loop.meanMs.toFixed(2)} ms | ` +
      `${r.wrk === undefined ? '-' : n(r.wrk.rps)} | ${r.wrk === undefined ? '-' : `${r.wrk.p99.toFixed(1)} ms`} | ` +
      `${r.wrk?.errors ?? '-'} |`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  installCleanup();
  const { values } = parseArgs({
    options: {
      hosts: { type: 'string', default: '1000000' },
      only: { type: 'string', default: 'memory,throughput,sweep' },
      rounds: { type: 'string', default: '2' },
      duration: { type: 'string', default: '8' },
      'no-write': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const only = new Set(values.only.split(','));
  const hosts = Number(values.hosts);
  if (!nginxAvailable()) throw new Error('nginx is needed for the backend (apt-get install nginx-light)');
  const machine = machineInfo(); // before pinning: affinity hides the other cores
  const pin = canPin(availableParallelism());
  if (pin) pinSelf(1);
  const placement: Placement = { receiver: pin ? 0 : undefined, sender: pin ? 1 : undefined };
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-million-'));
  const out: string[] = [
    `# A million virtual hosts, ${new Date().toISOString().slice(0, 10)} on ${machine.hostname}`,
    '',
    `- Machine: ${machine.cpus} CPUs, ${machine.cpuModel}, ${machine.kernel}; node ${machine.node}`,
    `- Placement: ${pin ? 'Switchyard pinned to core 0; senders, wrk, nginx and this orchestrator on core 1' : 'unpinned'}`,
    `- Load average at start: ${loadAverage()}`,
    '- Switchyard: the CLI with `--subscription-rate 100000000` (one sender loads everything), ' +
      `\`--max-hosts ${n(hosts + 10)}\`, \`--subscription-tolerance ${TOLERANCE_S}\`, default logging (info).`,
    '',
  ];
  const emit = (text: string, before: string) => {
    out.push(text, `Load average before: ${before}; after: ${loadAverage()}.`, '');
    process.stdout.write(`${text}\n`);
  };
  try {
    const backendPorts = await startBackend(dir, placement.sender);
    const backends = backendPorts.map((p) => `127.0.0.1:${p}`);
    const args = [
      '--subscription-rate',
      '100000000',
      '--max-hosts',
      String(hosts + 10),
      '--subscription-tolerance',
      String(TOLERANCE_S),
    ];
    const memoryRows: MemoryRow[] = [];
    // 1M × 1 node: memory, then throughput and the mass expiry in the same process.
    if (only.has('memory') || only.has('throughput') || only.has('sweep')) {
      const before = loadAverage();
      process.stderr.write(`million-hosts: loading ${n(hosts)} hosts × 1 node...\n`);
      const sy = await startSwitchyard(args, { cpu: placement.receiver, probe: true });
      try {
        await warmUp(sy, placement);
        const base = await sy.memory();
        const loadStart = Date.now();
        const loadSeconds = await loadInto(sy, hosts, backends, true, placement);
        const stats = await sy.stats();
        memoryRows.push({
          label: `${n(hosts)} hosts × 1 node`,
          hosts: stats.registry.hosts,
          nodes: stats.registry.nodes,
          loadSeconds,
          before: base,
          after: await sy.memory(),
        });
        if (only.has('throughput')) {
          process.stderr.write('million-hosts: throughput...\n');
          const t = loadAverage();
          const rows = await throughput(
            sy,
            hosts,
            dir,
            placement.sender,
            Number(values.rounds),
            Number(values.duration),
          );
          emit(throughputMarkdown(rows, hosts), t);
        }
        if (only.has('sweep')) {
          process.stderr.write('million-hosts: waiting for the mass expiry...\n');
          const t = loadAverage();
          emit(sweepMarkdown(await sweep(sy, hosts, loadStart, backends[0]!, placement)), t);
        }
      } finally {
        await sy.stop();
      }
      if (only.has('memory')) {
        const few = Math.max(1, Math.round(hosts / 10));
        process.stderr.write(`million-hosts: loading ${n(few)} hosts × 3 nodes...\n`);
        const sy3 = await startSwitchyard(args, { cpu: placement.receiver, probe: true });
        try {
          await warmUp(sy3, placement);
          const base = await sy3.memory();
          const loadSeconds = await loadInto(sy3, few, backends, false, placement);
          const stats = await sy3.stats();
          memoryRows.push({
            label: `${n(few)} hosts × 3 nodes`,
            hosts: stats.registry.hosts,
            nodes: stats.registry.nodes,
            loadSeconds,
            before: base,
            after: await sy3.memory(),
          });
        } finally {
          await sy3.stop();
        }
        emit(memoryMarkdown(memoryRows), before);
      }
    }
  } finally {
    await killAll();
    rmSync(dir, { recursive: true, force: true });
  }
  out.push(
    `Wall time: ${((Date.now() - started) / 1000).toFixed(0)} s. Command: \`npx tsx bench/million-hosts.ts --hosts ${hosts}\`.`,
    '',
  );
  if (!values['no-write']) {
    const results = resolve(import.meta.dirname, 'results');
    mkdirSync(results, { recursive: true });
    const file = resolve(results, `${new Date().toISOString().slice(0, 10)}-${hostname()}-million-hosts.md`);
    writeFileSync(file, out.join('\n'));
    process.stderr.write(`million-hosts: wrote ${file}\n`);
  }
}

await main();
