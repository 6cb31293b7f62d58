/**
 * Helpers shared by the subscription benches (intake.ts, million-hosts.ts): subscription packets, a
 * Switchyard CLI process with its admin API, /proc readings (CPU time, RSS, kernel UDP drops), and
 * UDP sender child processes (lib/udp-sender.ts) so that sending never shares an event loop with the
 * process under test.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { resolve } from 'node:path';
import { encodeSubscription } from '@switchyard/protocol';
import { type Child, start } from './children.js';
import { freePort } from './probe.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const SWITCHYARD_CLI = resolve(ROOT, 'packages', 'switchyard', 'dist', 'cli.js');
const SENDER = resolve(import.meta.dirname, 'udp-sender.ts');
const PROBE = resolve(import.meta.dirname, 'memory-probe.mjs');

/** A subscribe datagram for `key` → `address`, with optional extra fields (after key and address). */
export function subscribePacket(key: string, address: string, fields: Record<string, string> = {}): Buffer {
  return encodeSubscription('subscribe', [['key', key], ['address', address], ...Object.entries(fields)]);
}

/** A free UDP port on 127.0.0.1 (bound and closed a moment ago). */
export async function freeUdpPort(): Promise<number> {
  const { createSocket } = await import('node:dgram');
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const port = socket.address().port;
  await new Promise<void>((r) => socket.close(() => r()));
  return port;
}

/** utime + stime of one process, seconds (/proc/PID/stat). */
export function processCpuSeconds(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

/** Resident set size of a process, bytes (/proc/PID/status VmRSS). */
export function processRss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  return m === null ? Number.NaN : Number(m[1]) * 1024;
}

/** Datagrams the kernel dropped for the UDP socket bound to 127.0.0.1:`port` (/proc/net/udp "drops"). */
export function kernelUdpDrops(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/udp', 'latin1').split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols[1] === local) return Number(cols.at(-1));
  }
  return Number.NaN;
}

/** The machine's load averages (1, 5, 15 min), as `/proc/loadavg` gives them. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ');
}

/** net.core.rmem_max, bytes. */
export function rmemMax(): number {
  return Number(readFileSync('/proc/sys/net/core/rmem_max', 'latin1').trim());
}

export interface SwitchyardProcess {
  readonly child: Child;
  readonly httpPort: number;
  readonly udpPort: number;
  readonly adminPort: number;
  stats(): Promise<SwitchyardStats>;
  /** With `probe`: memory after three full GCs (lib/memory-probe.mjs). */
  memory(): Promise<NodeJS.MemoryUsage>;
  /** With `probe`: restarts the event-loop delay histogram. */
  loopReset(): Promise<void>;
  /** With `probe`: the event-loop delay since the last reset, ms. */
  loop(): Promise<LoopDelay>;
  /** With `probe`: process.cpuUsage() of the process, user + system µs. */
  cpuMicros(): Promise<number>;
  stop(): Promise<void>;
}

export interface LoopDelay {
  readonly maxMs: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly meanMs: number;
  readonly samples: number;
}

export interface SwitchyardStats {
  readonly subscriptions: {
    readonly received: number;
    readonly accepted: number;
    readonly dropped: Record<string, number>;
  };
  readonly registry: { readonly hosts: number; readonly nodes: number };
}

/** GET on the admin API, parsed as JSON. */
export function adminGet<T>(port: number, path: string, timeoutMs = 10_000): Promise<T> {
  return new Promise((done, fail) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          done(JSON.parse(Buffer.concat(chunks).toString('utf8')) as T);
        } catch (error) {
          fail(error);
        }
      });
      res.on('error', fail);
    });
    req.on('timeout', () => req.destroy(new Error(`admin ${path}: no answer in ${timeoutMs} ms`)));
    req.on('error', fail);
  });
}

/**
 * Starts the Switchyard CLI on free ports (HTTP, UDP subscriptions, admin), plus `extra` arguments, and
 * waits until its admin API answers. `nodeArgs` go to node itself (e.g. --expose-gc).
 */
export async function startSwitchyard(
  extra: readonly string[],
  options: { readonly cpu?: number | undefined; readonly nodeArgs?: readonly string[]; readonly probe?: boolean } = {},
): Promise<SwitchyardProcess> {
  const httpPort = await freePort();
  const adminPort = await freePort();
  const udpPort = await freeUdpPort();
  const child = start(
    'switchyard',
    process.execPath,
    [
      ...(options.probe === true ? ['--expose-gc', '--import', PROBE] : []),
      ...(options.nodeArgs ?? []),
      SWITCHYARD_CLI,
      '--workers',
      '1',
      '--http',
      `127.0.0.1:${httpPort}`,
      '--subscription-server',
      `127.0.0.1:${udpPort}`,
      '--admin',
      `127.0.0.1:${adminPort}`,
      ...extra,
    ],
    { cpu: options.cpu, ipc: options.probe === true },
  );
  const ask = <T>(command: string): Promise<T> =>
    new Promise((done, fail) => {
      const onMessage = (message: { command?: string } & T) => {
        if (message.command !== command) return;
        child.process.off('message', onMessage);
        clearTimeout(timer);
        done(message);
      };
      const timer = setTimeout(() => {
        child.process.off('message', onMessage);
        fail(new Error(`probe: no answer to ${command}`));
      }, 60_000);
      child.process.on('message', onMessage);
      child.process.send(command);
    });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await adminGet(adminPort, '/v1/stats', 1000);
      break;
    } catch (error) {
      if (Date.now() > deadline || child.process.exitCode !== null) {
        await child.stop();
        throw new Error(`switchyard did not start: ${String(error)} ${child.output().slice(-500)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    child,
    httpPort,
    udpPort,
    adminPort,
    stats: () => adminGet<SwitchyardStats>(adminPort, '/v1/stats'),
    memory: async () => (await ask<{ memory: NodeJS.MemoryUsage }>('memory')).memory,
    loopReset: async () => {
      await ask('loop-reset');
    },
    loop: async () => (await ask<{ loop: LoopDelay }>('loop')).loop,
    cpuMicros: async () => {
      const { cpu } = await ask<{ cpu: NodeJS.CpuUsage }>('cpu');
      return cpu.user + cpu.system;
    },
    stop: () => child.stop(3000),
  };
}

/** What the sender child does. */
export type SenderPlan =
  | {
      /** `count` subscribes for hosts first..first+count-1, as fast as one socket can, no pacing. */
      readonly mode: 'burst';
      readonly first: number;
      readonly count: number;
    }
  | {
      /** Subscribes for hosts first..first+hosts-1 in a loop at `rate` packets/s for `seconds`. */
      readonly mode: 'paced';
      readonly first: number;
      readonly hosts: number;
      readonly rate: number;
      readonly seconds: number;
    };

export interface SenderOptions {
  readonly port: number;
  /** Host i is `h<i>.<domain>`. */
  readonly domain: string;
  /** Node address of host i (`address` field): addresses[i % addresses.length]. */
  readonly addresses: readonly string[];
  /** Extra fields of every packet. */
  readonly fields?: Record<string, string>;
  /** Default 'subscribe'. */
  readonly command?: 'subscribe' | 'unsubscribe';
  readonly cpu?: number | undefined;
}

export interface SenderResult {
  readonly sent: number;
  /** Wall time of the sending loop, ms. */
  readonly ms: number;
  /** Datagrams per second achieved. */
  readonly pps: number;
}

/** Runs lib/udp-sender.ts in a child process and resolves with its report. */
export async function runSender(plan: SenderPlan, options: SenderOptions): Promise<SenderResult> {
  const spec = JSON.stringify({ ...plan, ...options });
  const child = start('udp-sender', process.execPath, ['--import', 'tsx', SENDER, spec], { cpu: options.cpu });
  const code = await child.exited;
  const line = child
    .output()
    .split('\n')
    .find((l) => l.startsWith('{"sent"'));
  if (code !== 0 || line === undefined) throw new Error(`udp sender failed (${code}): ${child.output().slice(-500)}`);
  return JSON.parse(line) as SenderResult;
}
