/**
 * Intake over real UDP sockets, between processes (intake.ts):
 *  - drainCost: CPU per datagram of a receiver fed at a steady rate it keeps up with: a bare node:dgram
 *    socket that only counts (Node's own per-datagram cost), then the Switchyard CLI refreshing known
 *    hosts (the whole path). CPU from /proc (utime + stime of the receiver), idle CPU subtracted; the
 *    inverse is the most datagrams per second one core could drain.
 *  - burst: `count` subscribes for new hosts (then, again, for the same hosts: refreshes) sent by one
 *    socket with no pacing at a fresh Switchyard CLI; how many arrived, how many the kernel dropped.
 *  - refreshCpu: `hosts` hosts loaded through the socket, then refreshed at `hosts / 10` per second (every
 *    host every 10 s, as uWSGI nodes do) by sender processes; CPU of the Switchyard process over that window.
 * Every sender is its own process (lib/udp-sender.ts); the receiver is pinned to core 0 and the senders
 * to core 1 when the machine has two cores and taskset.
 */
import { type Child, start } from './children.js';
import {
  kernelUdpDrops,
  processCpuSeconds,
  runSender,
  type SenderResult,
  type SwitchyardProcess,
  startSwitchyard,
} from './subscriptions.js';

const SINK = new URL('./udp-sink.ts', import.meta.url).pathname;
const DOMAIN = 'intake.test';
/** Any address: nothing connects to it in these benches. */
const NODE_ADDRESS = '10.0.0.1:3031';
const UWSGI_FIELDS = { modifier1: '0', modifier2: '0', cores: '4', load: '0', weight: '1' };

export interface Placement {
  /** CPU for the receiver (undefined = unpinned). */
  readonly receiver: number | undefined;
  /** CPU for the senders. */
  readonly sender: number | undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * CPU seconds per second the process uses while idle (timers), over `ms`: measured once it has settled
 * (after a load, a process keeps working for a while: backlog, garbage collection), at most `maxMs`.
 */
async function idleRate(pid: number, ms = 1000, maxMs = 30_000): Promise<number> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    const c0 = processCpuSeconds(pid);
    await sleep(ms);
    const rate = (processCpuSeconds(pid) - c0) / (ms / 1000);
    if (rate < 0.05 || Date.now() > deadline) return rate;
  }
}

/** Waits until `read()` stops changing for `quietMs` (or reaches `target`), bounded by `maxMs`. */
async function settle(read: () => Promise<number>, target: number, quietMs = 500, maxMs = 30_000): Promise<number> {
  const deadline = Date.now() + maxMs;
  let last = await read();
  let since = Date.now();
  while (Date.now() < deadline && last < target) {
    await sleep(50);
    const now = await read();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) break;
  }
  return last;
}

/** Loads hosts h<first>..h<first+count-1> through the socket, paced, until the registry has them all. */
export async function loadHosts(
  sy: SwitchyardProcess,
  first: number,
  count: number,
  rate: number,
  placement: Placement,
  options: {
    readonly addresses?: readonly string[];
    readonly expectedNodes?: number;
    readonly domain?: string;
    /** Fields after key and address; default the uWSGI 2.0 set (uwsgi protocol). */
    readonly fields?: Record<string, string>;
    /** Passes over all hosts at most (each pass resends every one). Default 5. */
    readonly passes?: number;
  } = {},
): Promise<{ seconds: number; passes: number; nodes: number }> {
  const addresses = options.addresses ?? [NODE_ADDRESS];
  const expectedNodes = options.expectedNodes;
  const domain = options.domain ?? DOMAIN;
  const t0 = performance.now();
  const target = expectedNodes ?? count;
  let passes = 0;
  let nodes = 0;
  for (; passes < (options.passes ?? 5); passes++) {
    await runSender(
      { mode: 'paced', first, hosts: count, rate, seconds: count / rate },
      { port: sy.udpPort, domain, addresses, fields: options.fields ?? UWSGI_FIELDS, cpu: placement.sender },
    );
    nodes = await settle(async () => (await sy.stats()).registry.nodes, target);
    if (nodes >= target) break;
  }
  return { seconds: (performance.now() - t0) / 1000, passes: passes + 1, nodes };
}

export interface DrainCost {
  readonly receiver: string;
  readonly datagrams: number;
  readonly dropped: number;
  /** CPU microseconds per datagram, idle CPU subtracted. */
  readonly cpuMicros: number;
  readonly sender: SenderResult;
}

/** Feeds `rate` datagrams/s for `seconds` to a receiver and charges its CPU to the datagrams. */
async function feed(
  receiver: string,
  pid: number,
  port: number,
  received: () => Promise<number>,
  rate: number,
  seconds: number,
  hosts: number,
  placement: Placement,
): Promise<DrainCost> {
  const idle = await idleRate(pid);
  const r0 = await received();
  const d0 = kernelUdpDrops(port);
  const c0 = processCpuSeconds(pid);
  const t0 = performance.now();
  const sender = await runSender(
    { mode: 'paced', first: 0, hosts, rate, seconds },
    { port, domain: DOMAIN, addresses: [NODE_ADDRESS], fields: UWSGI_FIELDS, cpu: placement.sender },
  );
  const r1 = await settle(received, r0 + sender.sent, 300);
  const cpu = processCpuSeconds(pid) - c0 - (idle * (performance.now() - t0)) / 1000;
  const datagrams = r1 - r0;
  return {
    receiver,
    datagrams,
    dropped: kernelUdpDrops(port) - d0,
    cpuMicros: (cpu * 1e6) / Math.max(1, datagrams),
    sender,
  };
}

/** A bare dgram receiver in a child process (lib/udp-sink.ts). */
interface Sink {
  readonly child: Child;
  readonly port: number;
  count(): Promise<number>;
  cpuMicros(): Promise<number>;
}

async function startSink(cpu: number | undefined): Promise<Sink> {
  const child = start('udp-sink', process.execPath, ['--import', 'tsx', SINK], { cpu, ipc: true });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('udp sink did not start')), 10_000);
    child.process.once('message', (m: { port: number }) => {
      clearTimeout(timer);
      resolve(m.port);
    });
  });
  const ask = <T>(command: string) =>
    new Promise<T>((resolve) => {
      const on = (m: { command?: string } & T) => {
        if (m.command !== command) return;
        child.process.off('message', on);
        resolve(m);
      };
      child.process.on('message', on);
      child.process.send(command);
    });
  return {
    child,
    port,
    count: async () => (await ask<{ received: number }>('count')).received,
    cpuMicros: async () => {
      const { cpu } = await ask<{ cpu: NodeJS.CpuUsage }>('cpu');
      return cpu.user + cpu.system;
    },
  };
}

export interface BacklogDrain {
  readonly receiver: string;
  /** Datagrams queued in the socket while the receiver was stopped. */
  readonly queued: number;
  readonly kernelDrops: number;
  /** CPU microseconds per datagram while draining the backlog (process.cpuUsage inside the receiver). */
  readonly cpuMicros: number;
}

/**
 * The most a receiver drains: stop it (SIGSTOP), queue `count` datagrams in its socket, resume it and
 * charge the CPU it spends until all are handled to those datagrams. No wake-up per datagram here, unlike
 * a slow steady stream: this is the batch cost that decides whether a burst is absorbed.
 */
async function backlogDrain(
  receiver: string,
  pid: number,
  port: number,
  received: () => Promise<number>,
  cpuMicros: () => Promise<number>,
  count: number,
  placement: Placement,
): Promise<BacklogDrain> {
  const r0 = await received();
  const d0 = kernelUdpDrops(port);
  const c0 = await cpuMicros();
  process.kill(pid, 'SIGSTOP');
  try {
    await runSender(
      { mode: 'burst', first: 0, count },
      { port, domain: DOMAIN, addresses: [NODE_ADDRESS], fields: UWSGI_FIELDS, cpu: placement.sender },
    );
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  const drops = kernelUdpDrops(port) - d0;
  const handled = (await settle(received, r0 + count - drops, 300)) - r0;
  const c1 = await cpuMicros();
  return { receiver, queued: handled, kernelDrops: drops, cpuMicros: (c1 - c0) / Math.max(1, handled) };
}

export async function drainCost(
  rate: number,
  seconds: number,
  hosts: number,
  backlog: number,
  placement: Placement,
): Promise<{ steady: DrainCost[]; backlog: BacklogDrain[] }> {
  const steady: DrainCost[] = [];
  const backlogs: BacklogDrain[] = [];
  const bare = 'node:dgram socket, empty handler';
  const sink = await startSink(placement.receiver);
  try {
    steady.push(await feed(bare, sink.child.pid, sink.port, sink.count, rate, seconds, hosts, placement));
    backlogs.push(await backlogDrain(bare, sink.child.pid, sink.port, sink.count, sink.cpuMicros, backlog, placement));
  } finally {
    await sink.child.stop();
  }
  const sy = await startSwitchyard(['--subscription-rate', '100000000', '--max-hosts', String(hosts * 2)], {
    cpu: placement.receiver,
    probe: true,
  });
  try {
    await loadHosts(sy, 0, hosts, Math.min(rate, 20_000), placement);
    const received = async () => (await sy.stats()).subscriptions.received;
    const name = 'Switchyard CLI, refreshes of known hosts';
    steady.push(await feed(name, sy.child.pid, sy.udpPort, received, rate, seconds, hosts, placement));
    backlogs.push(
      await backlogDrain(name, sy.child.pid, sy.udpPort, received, () => sy.cpuMicros(), backlog, placement),
    );
  } finally {
    await sy.stop();
  }
  return { steady, backlog: backlogs };
}

export interface BurstResult {
  readonly kind: 'new hosts' | 'refreshes';
  readonly sent: number;
  readonly received: number;
  readonly kernelDrops: number;
  readonly sender: SenderResult;
  /** ms from the first send until the last datagram was handled (as seen by polling the stats). */
  readonly drainMs: number;
  readonly effectiveBuffer: number | undefined;
}

/** The receive buffer the server reports it got (its "subscription socket bound" log line). */
function effectiveBuffer(output: string): number | undefined {
  const m = /"effective":(\d+)/.exec(output);
  return m === null ? undefined : Number(m[1]);
}

export async function burst(count: number, rounds: number, placement: Placement): Promise<BurstResult[]> {
  const out: BurstResult[] = [];
  for (let round = 0; round < rounds; round++) {
    const sy = await startSwitchyard(['--subscription-rate', '100000000', '--max-hosts', String(count * 2)], {
      cpu: placement.receiver,
    });
    try {
      for (const kind of ['new hosts', 'refreshes'] as const) {
        const s0 = await sy.stats();
        const d0 = kernelUdpDrops(sy.udpPort);
        const t0 = performance.now();
        const sender = await runSender(
          { mode: 'burst', first: 0, count },
          { port: sy.udpPort, domain: DOMAIN, addresses: [NODE_ADDRESS], fields: UWSGI_FIELDS, cpu: placement.sender },
        );
        const received =
          (await settle(
            async () => (await sy.stats()).subscriptions.received,
            s0.subscriptions.received + count,
            1000,
          )) - s0.subscriptions.received;
        out.push({
          kind,
          sent: sender.sent,
          received,
          kernelDrops: kernelUdpDrops(sy.udpPort) - d0,
          sender,
          drainMs: performance.now() - t0,
          effectiveBuffer: effectiveBuffer(sy.child.output()),
        });
      }
    } finally {
      await sy.stop();
    }
  }
  return out;
}

export interface RefreshCpu {
  readonly hosts: number;
  readonly loadSeconds: number;
  readonly targetRate: number;
  readonly achievedRate: number;
  readonly seconds: number;
  readonly datagrams: number;
  readonly dropped: number;
  /** Share of one core used by the Switchyard process over the window (idle subtracted). */
  readonly coreShare: number;
  readonly cpuMicros: number;
  readonly senders: number;
}

export async function refreshCpu(
  hosts: number,
  seconds: number,
  placement: Placement,
  loadRate = 40_000,
): Promise<RefreshCpu> {
  const sy = await startSwitchyard(['--subscription-rate', '100000000', '--max-hosts', String(hosts + 10)], {
    cpu: placement.receiver,
  });
  try {
    const load = await loadHosts(sy, 0, hosts, loadRate, placement);
    const targetRate = hosts / 10;
    // One Node sender tops out around 50-80k datagrams/s: split the hosts between senders.
    const senders = Math.max(1, Math.ceil(targetRate / 50_000));
    const share = Math.ceil(hosts / senders);
    const pid = sy.child.pid;
    const idle = await idleRate(pid);
    const r0 = (await sy.stats()).subscriptions.received;
    const d0 = kernelUdpDrops(sy.udpPort);
    const c0 = processCpuSeconds(pid);
    const t0 = performance.now();
    const results = await Promise.all(
      Array.from({ length: senders }, (_, i) =>
        runSender(
          {
            mode: 'paced',
            first: i * share,
            hosts: Math.min(share, hosts - i * share),
            rate: targetRate / senders,
            seconds,
          },
          { port: sy.udpPort, domain: DOMAIN, addresses: [NODE_ADDRESS], fields: UWSGI_FIELDS, cpu: placement.sender },
        ),
      ),
    );
    const r1 = await settle(
      async () => (await sy.stats()).subscriptions.received,
      Number.POSITIVE_INFINITY,
      300,
      5_000,
    );
    const wall = (performance.now() - t0) / 1000;
    const cpu = processCpuSeconds(pid) - c0 - idle * wall;
    const datagrams = r1 - r0;
    const sendSeconds = Math.max(...results.map((r) => r.ms)) / 1000;
    return {
      hosts,
      loadSeconds: load.seconds,
      targetRate,
      achievedRate: results.reduce((a, r) => a + r.sent, 0) / sendSeconds,
      seconds: sendSeconds,
      datagrams,
      dropped: kernelUdpDrops(sy.udpPort) - d0,
      coreShare: cpu / sendSeconds,
      cpuMicros: (cpu * 1e6) / Math.max(1, datagrams),
      senders,
    };
  } finally {
    await sy.stop();
  }
}
