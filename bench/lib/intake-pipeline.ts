/**
 * The subscription intake pipeline measured in-process, on one core, stage by stage: decode →
 * validate → verify (the default SubscriptionSecurity, as the CLI composes it) → registry apply →
 * router table event. The last stage runs through a real SwitchyardApp (router listening, admin API,
 * event log, SNI wiring: every registry listener the CLI has), fed with `handleDatagram`, which is what
 * the UDP socket calls per datagram; the socket itself is measured by intake.ts.
 *
 * Figures are CPU-time based (process.cpuUsage over the measured loop), so other load on the machine
 * slows the wall clock but hardly the result. Each figure is the best of `rounds` runs after one warm-up
 * run (the JIT settles; GC is included).
 */
import { decodeSubscription, type SubscriptionPacket } from '@switchyard/protocol';
import {
  type Announcement,
  parseAnnouncement,
  SubscriptionRegistry,
  SubscriptionSecurity,
} from '@switchyard/subscription-server';
import { pino } from 'pino';
import { parseCli, SwitchyardApp } from 'switchyard';
import { subscribePacket } from './subscriptions.js';

export interface StageResult {
  readonly stage: string;
  readonly packets: number;
  /** CPU microseconds per packet (user + system). */
  readonly cpuMicros: number;
  /** Packets per CPU-second. */
  readonly perCpuSecond: number;
  /** Packets per wall-clock second. */
  readonly perWallSecond: number;
}

export interface PipelineOptions {
  readonly hosts?: number;
  readonly rounds?: number;
}

const SOURCE = Object.freeze({ address: '127.0.0.1', port: 40_000 });

/**
 * Runs `body` over `count` items `rounds` times after a warm-up (with `between` after each run, not
 * timed); the best round's CPU and wall time.
 */
function measure(stage: string, count: number, rounds: number, body: () => void, between?: () => void): StageResult {
  let best = Number.POSITIVE_INFINITY;
  let bestWall = Number.POSITIVE_INFINITY;
  for (let round = 0; round <= rounds; round++) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    body();
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    between?.();
    const micros = cpu.user + cpu.system;
    if (round > 0 && micros < best) {
      best = micros;
      bestWall = wall;
    }
  }
  return {
    stage,
    packets: count,
    cpuMicros: best / count,
    perCpuSecond: (count * 1e6) / best,
    perWallSecond: (count * 1e3) / bestWall,
  };
}

/**
 * The uWSGI 2.0 packet shape (what --subscribe-to sends every 10 s), for host i; hosts are spread over
 * 1 024 backend addresses.
 */
function packetFor(i: number, load = 0): Buffer {
  return subscribePacket(`h${i}.intake.test`, `10.0.${(i >> 8) & 3}.${i & 255}:3031`, {
    modifier1: '0',
    modifier2: '0',
    cores: '4',
    load: String(load),
    weight: '1',
  });
}

export async function measurePipeline(options: PipelineOptions = {}): Promise<StageResult[]> {
  const hosts = options.hosts ?? 100_000;
  const rounds = options.rounds ?? 3;
  const packets = Array.from({ length: hosts }, (_, i) => packetFor(i));
  const loaded = Array.from({ length: hosts }, (_, i) => packetFor(i, 1 + (i % 7)));
  const results: StageResult[] = [];

  // Stages 1-4 on their own (no router): what each step adds.
  const decoded: SubscriptionPacket[] = new Array(hosts);
  results.push(
    measure('general path: decode (decodeSubscription)', hosts, rounds, () => {
      for (let i = 0; i < hosts; i++) {
        const r = decodeSubscription(packets[i]!);
        if (r.ok) decoded[i] = r.value;
      }
    }),
  );
  const announcements: Announcement[] = new Array(hosts);
  results.push(
    measure('general path: decode + validate (parseAnnouncement)', hosts, rounds, () => {
      for (let i = 0; i < hosts; i++) {
        const r = decodeSubscription(packets[i]!);
        if (!r.ok) continue;
        const a = parseAnnouncement(r.value);
        if (a.ok) announcements[i] = a.value;
      }
    }),
  );
  const security = new SubscriptionSecurity({
    sourceRate: 1e9,
    ownListeners: () => OWN_LISTENERS,
  });
  results.push(
    measure('general path: decode + validate + verify (default security)', hosts, rounds, () => {
      for (let i = 0; i < hosts; i++) {
        if (!security.admit(SOURCE).ok) continue;
        const r = decodeSubscription(packets[i]!);
        if (!r.ok) continue;
        const a = parseAnnouncement(r.value);
        if (a.ok) security.verify(r.value, a.value, SOURCE);
      }
    }),
  );
  const registry = new SubscriptionRegistry({ maxHosts: hosts + 1 });
  let events = 0;
  registry.onEvent(() => {
    events++;
  });
  for (const a of announcements) registry.apply(a);
  results.push(
    measure('registry apply: refresh of an unchanged node (one listener)', hosts, rounds, () => {
      for (let i = 0; i < hosts; i++) registry.apply(announcements[i]!);
    }),
  );
  if (events < hosts) throw new Error('registry did not emit');

  // The whole pipeline through the CLI's composition.
  const parsed = parseCli([
    '--http',
    '127.0.0.1:0',
    '--subscription-server',
    '127.0.0.1:0',
    '--admin',
    '127.0.0.1:0',
    '--max-hosts',
    String(hosts * 2),
    '--subscription-rate',
    '100000000',
  ]);
  if (parsed.kind !== 'run') throw new Error('unexpected CLI parse');
  const app = new SwitchyardApp({ config: parsed.config, logger: pino({ level: 'silent' }) });
  await app.start();
  try {
    const server = app.subscriptions!;
    let offset = 0;
    const fresh = () => {
      // Adds need hosts the table has not seen: a new batch per round.
      const batch = Array.from({ length: hosts }, (_, i) => packetFor(hosts * (2 + offset) + i));
      offset++;
      return batch;
    };
    let adds = fresh();
    results.push(
      measure(
        'whole pipeline: new host (added → router table)',
        hosts,
        rounds,
        () => {
          for (let i = 0; i < hosts; i++) server.handleDatagram(adds[i]!, SOURCE);
        },
        () => {
          // Empty the table again for the next round (not measured).
          for (const key of [...app.registry.hosts()]) {
            for (const node of app.registry.get(key) ?? []) app.registry.remove(key, node.address, 'admin');
          }
          adds = fresh();
        },
      ),
    );
    for (let i = 0; i < hosts; i++) server.handleDatagram(packets[i]!, SOURCE);
    if (app.registry.size !== hosts) throw new Error(`expected ${hosts} hosts, have ${app.registry.size}`);
    results.push(
      measure('whole pipeline: refresh, unchanged node (hosts in subscription order)', hosts, rounds, () => {
        for (let i = 0; i < hosts; i++) server.handleDatagram(packets[i]!, SOURCE);
      }),
    );
    const shuffled = packets.slice();
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    results.push(
      measure('whole pipeline: refresh, unchanged node (hosts in random order)', hosts, rounds, () => {
        for (let i = 0; i < hosts; i++) server.handleDatagram(shuffled[i]!, SOURCE);
      }),
    );
    let flip = false;
    results.push(
      measure('whole pipeline: refresh with a new load value', hosts, rounds, () => {
        const list = flip ? packets : loaded;
        flip = !flip;
        for (let i = 0; i < hosts; i++) server.handleDatagram(list[i]!, SOURCE);
      }),
    );
    const stats = server.stats();
    const dropped = Object.entries(stats.dropped).filter(([, n]) => n > 0);
    if (dropped.length > 0) throw new Error(`packets dropped: ${JSON.stringify(dropped)}`);
  } finally {
    await app.close();
  }
  return results;
}

const OWN_LISTENERS = Object.freeze([
  Object.freeze({ address: '127.0.0.1', port: 8080 }),
  Object.freeze({ address: '127.0.0.1', port: 2626 }),
  Object.freeze({ address: '127.0.0.1', port: 9090 }),
]);

export function pipelineMarkdown(results: readonly StageResult[], hosts: number): string {
  const n = (x: number) =>
    x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e4 ? `${(x / 1e3).toFixed(0)}k` : x.toFixed(0);
  const rows = results.map(
    (r) => `| ${r.stage} | ${r.cpuMicros.toFixed(2)} µs | ${n(r.perCpuSecond)} | ${n(r.perWallSecond)} |`,
  );
  return [
    '## Intake pipeline, in-process, one core',
    '',
    `${hosts.toLocaleString('en')} hosts on 1 024 backend addresses (uWSGI 2.0 packet shape: key, address, ` +
      'modifier1, modifier2, cores, load, weight); each stage run 1 + 3 times over all of them, best round ' +
      'shown. The "general path" rows are the reference functions (the server reads this packet shape with ' +
      'its one-pass fast path instead, announcement-reader.ts). The whole-pipeline rows call ' +
      "`SubscriptionServer.handleDatagram` (what the socket's message handler calls) inside a SwitchyardApp " +
      'composed as the CLI does it (router, admin API, event log, SNI wiring), with the per-source rate limit raised.',
    '',
    '| stage | CPU per packet | packets per CPU-second | packets per wall-second |',
    '|---|---:|---:|---:|',
    ...rows,
    '',
  ].join('\n');
}
