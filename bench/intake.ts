/**
 * Subscription intake performance (bench/README.md, "Subscription intake"). Sections, all by default or
 * chosen with `--only pipeline,drain,burst,refresh`:
 *  - pipeline: packets per CPU-second through decode → validate → verify → registry → router table,
 *    in-process on one core, stage by stage (lib/intake-pipeline.ts);
 *  - drain: CPU per datagram received over a real UDP socket: bare node:dgram vs the Switchyard CLI;
 *  - burst: `--burst` (30 000) subscribes from one socket with no pacing, new hosts then refreshes, at a
 *    fresh Switchyard CLI, `--rounds` times: sent, received, dropped by the kernel;
 *  - latency: packet → first routed request, idle and with the router saturated by wrk
 *    (subscription-latency.ts);
 *  - refresh: `--refresh-hosts` (1 000 000) hosts loaded through the socket, then all refreshed every
 *    10 s (hosts/10 datagrams per second) for `--seconds`: CPU share of the Switchyard process.
 * Writes bench/results/YYYY-MM-DD-<hostname>-intake.md unless --no-write. Every figure comes with the
 * load average; CPU figures are CPU time (process.cpuUsage, /proc), so other load inflates them less
 * than wall-clock ones.
 *
 *   npx tsx bench/intake.ts [--only pipeline,drain,burst,latency,refresh] [--hosts 100000] [--burst 30000]
 *                           [--rounds 3] [--refresh-hosts 1000000] [--seconds 10] [--no-write]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { canPin, installCleanup, killAll, pinSelf } from './lib/children.js';
import { measurePipeline, pipelineMarkdown } from './lib/intake-pipeline.js';
import {
  type BacklogDrain,
  burst,
  type DrainCost,
  drainCost,
  type Placement,
  refreshCpu,
} from './lib/intake-socket.js';
import { machineInfo } from './lib/machine.js';
import { loadAverage, rmemMax } from './lib/subscriptions.js';
import { latencyMarkdown, measureSubscriptionLatency } from './subscription-latency.js';

const n = (x: number) => Math.round(x).toLocaleString('en');
const kib = (bytes: number | undefined) => (bytes === undefined ? '?' : `${(bytes / 1024).toFixed(0)} KiB`);

function drainMarkdown(rows: readonly DrainCost[], backlog: readonly BacklogDrain[], rate: number): string {
  return [
    '## Socket drain: CPU per datagram',
    '',
    `A paced sender (${n(rate)} datagrams/s, uWSGI 2.0 refresh packets) against each receiver; the ` +
      "receiver's CPU time (/proc, idle CPU subtracted) divided by the datagrams it handled. The inverse is " +
      'the most datagrams one core drains per second with that receiver.',
    '',
    '| receiver | datagrams | kernel drops | CPU per datagram | datagrams per CPU-second | sender achieved |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.receiver} | ${n(r.datagrams)} | ${n(r.dropped)} | ${r.cpuMicros.toFixed(2)} µs | ` +
        `${n(1e6 / r.cpuMicros)} | ${n(r.sender.pps)}/s |`,
    ),
    '',
    'Backlog drain: the receiver is stopped (SIGSTOP), datagrams are queued in its socket, it is resumed and ' +
      'its own CPU time (process.cpuUsage) until all are handled is divided by their number: the batch cost ' +
      'with no wake-up per datagram, which decides how fast a burst is absorbed.',
    '',
    '| receiver | queued | kernel drops while stopped | CPU per datagram | datagrams per CPU-second |',
    '|---|---:|---:|---:|---:|',
    ...backlog.map(
      (r) =>
        `| ${r.receiver} | ${n(r.queued)} | ${n(r.kernelDrops)} | ${r.cpuMicros.toFixed(2)} µs | ${n(1e6 / r.cpuMicros)} |`,
    ),
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  installCleanup();
  const { values } = parseArgs({
    options: {
      only: { type: 'string', default: 'pipeline,drain,burst,latency,refresh' },
      hosts: { type: 'string', default: '100000' },
      burst: { type: 'string', default: '30000' },
      rounds: { type: 'string', default: '3' },
      'refresh-hosts': { type: 'string', default: '1000000' },
      seconds: { type: 'string', default: '10' },
      'drain-rate': { type: 'string', default: '20000' },
      backlog: { type: 'string', default: '4000' },
      'no-write': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const only = new Set(values.only.split(','));
  const cpus = availableParallelism();
  const machine = machineInfo(); // before pinning: affinity hides the other cores
  const pin = canPin(cpus);
  if (pin) pinSelf(1);
  const placement: Placement = { receiver: pin ? 0 : undefined, sender: pin ? 1 : undefined };
  const started = Date.now();
  const out: string[] = [
    `# Subscription intake, ${new Date().toISOString().slice(0, 10)} on ${machine.hostname}`,
    '',
    `- Machine: ${machine.cpus} CPUs, ${machine.cpuModel}, ${machine.kernel}; node ${machine.node}`,
    `- net.core.rmem_max = ${n(rmemMax())} bytes (the subscription server asks for 32 MiB; the kernel caps the request at this)`,
    `- Placement: ${pin ? 'receiver (Switchyard) pinned to core 0, senders and this orchestrator to core 1' : 'unpinned'}`,
    `- Load average at start: ${loadAverage()}`,
    '- `--only` sections run in this order: pipeline, drain, burst, latency, refresh.',
    '- Senders are separate node processes (bench/lib/udp-sender.ts); Switchyard is the CLI ' +
      '(`packages/switchyard/dist/cli.js`) with `--subscription-rate 100000000` (the default 1 000 packets/s ' +
      'per source would turn a one-sender burst into rate-limited drops, which is not what is measured here).',
    '',
  ];
  const section = async (name: string, body: () => Promise<string>) => {
    if (!only.has(name)) return;
    const before = loadAverage();
    process.stderr.write(`intake: ${name}...\n`);
    const text = await body();
    out.push(text, `Load average before: ${before}; after: ${loadAverage()}.`, '');
    process.stdout.write(`${text}\n`);
  };

  await section('pipeline', async () => {
    const hosts = Number(values.hosts);
    return pipelineMarkdown(await measurePipeline({ hosts }), hosts);
  });
  await section('drain', async () => {
    const rate = Number(values['drain-rate']);
    const result = await drainCost(rate, 5, 10_000, Number(values.backlog), placement);
    return drainMarkdown(result.steady, result.backlog, rate);
  });
  await section('burst', async () => {
    const count = Number(values.burst);
    const rows = await burst(count, Number(values.rounds), placement);
    return [
      '## Burst: one socket, no pacing',
      '',
      `${n(count)} subscribes for new hosts sent back to back from one UDP socket at a fresh Switchyard, then ` +
        'the same datagrams again (refreshes of now known hosts); one fresh process per round. "Lost" = sent − ' +
        "handled by the server (its received counter); kernel drops are the socket's drop counter in /proc/net/udp; " +
        'the receive buffer is what the kernel reports (twice what it grants).',
      '',
      '| round | burst | sent | sender rate | handled | lost | kernel drops | until all handled | receive buffer (kernel) |',
      '|---:|---|---:|---:|---:|---:|---:|---:|---:|',
      ...rows.map(
        (r, i) =>
          `| ${Math.floor(i / 2) + 1} | ${r.kind} | ${n(r.sent)} | ${n(r.sender.pps)}/s | ${n(r.received)} | ` +
          `${n(r.sent - r.received)} | ${n(r.kernelDrops)} | ${n(r.drainMs)} ms | ${kib(r.effectiveBuffer)} |`,
      ),
      '',
    ].join('\n');
  });
  await section('latency', async () => {
    const idle = latencyMarkdown(await measureSubscriptionLatency({ count: 200, pin }));
    const busy = latencyMarkdown(await measureSubscriptionLatency({ count: 200, pin, saturate: true }));
    return `${idle}\n${busy}`;
  });
  await section('refresh', async () => {
    const hosts = Number(values['refresh-hosts']);
    const r = await refreshCpu(hosts, Number(values.seconds), placement);
    return [
      '## Refresh of every host every 10 s',
      '',
      `${n(hosts)} hosts loaded through the socket (${r.loadSeconds.toFixed(0)} s), then refreshed by ${r.senders} ` +
        `sender process(es) at ${n(r.targetRate)} datagrams/s for ${r.seconds.toFixed(1)} s. CPU of the Switchyard ` +
        'process over that window (/proc, idle subtracted).',
      '',
      '| hosts | target rate | achieved rate | datagrams handled | kernel drops | CPU per refresh | share of one core | core share at the target rate |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|',
      `| ${n(hosts)} | ${n(r.targetRate)}/s | ${n(r.achievedRate)}/s | ${n(r.datagrams)} | ${n(r.dropped)} | ` +
        `${r.cpuMicros.toFixed(2)} µs | ${(r.coreShare * 100).toFixed(1)}% | ${((r.cpuMicros * r.targetRate) / 1e4).toFixed(1)}% |`,
      '',
    ].join('\n');
  });
  out.push(
    `Wall time: ${((Date.now() - started) / 1000).toFixed(0)} s. Command: \`npx tsx bench/intake.ts --only ${values.only}\`.`,
    '',
  );
  if (!values['no-write']) {
    const dir = resolve(import.meta.dirname, 'results');
    mkdirSync(dir, { recursive: true });
    const file = resolve(dir, `${new Date().toISOString().slice(0, 10)}-${hostname()}-intake.md`);
    writeFileSync(file, out.join('\n'));
    process.stderr.write(`intake: wrote ${file}\n`);
  }
  await killAll();
}

await main();
