/**
 * One wrk run (keep-alive, `--latency`) and the parse of its text report. wrk runs as a registered child
 * (pinned when asked) and is killed if it overruns its duration by 15 s.
 */
import { spawnSync } from 'node:child_process';
import { start } from './children.js';

export interface WrkOptions {
  readonly url: string;
  readonly host: string;
  readonly threads: number;
  readonly connections: number;
  readonly durationS: number;
  readonly cpu?: number | undefined;
  /** A wrk Lua script (`-s`); its request() may override the Host header. */
  readonly script?: string | undefined;
}

export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  /** Latency percentiles in milliseconds. */
  readonly p50: number;
  readonly p99: number;
  /** Socket errors (connect + read + write + timeout) plus non-2xx/3xx responses. */
  readonly errors: number;
}

export function wrkVersion(): string {
  const r = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  return (`${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0] ?? '').replace(/ Copyright.*/, '').trim() || 'unknown';
}

export async function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${o.threads}`,
    `-c${o.connections}`,
    `-d${o.durationS}s`,
    '--latency',
    '-H',
    `Host: ${o.host}`,
    ...(o.script === undefined ? [] : ['-s', o.script]),
    o.url,
  ];
  const child = start('wrk', 'wrk', args, { cpu: o.cpu });
  const overrun = setTimeout(() => void child.stop(), (o.durationS + 15) * 1000);
  const code = await child.exited;
  clearTimeout(overrun);
  await child.stop();
  const text = child.output();
  if (code !== 0) throw new Error(`wrk exited with ${code}: ${text.trim().slice(-500)}`);
  return parseWrk(text);
}

const UNIT_MS: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function latencyMs(text: string, percentile: string): number {
  const m = new RegExp(`^\\s*${percentile}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
  if (m === null) throw new Error(`wrk report has no ${percentile}% latency:\n${text}`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

export function parseWrk(text: string): WrkResult {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m),/.exec(text);
  if (total === null) throw new Error(`unexpected wrk report:\n${text}`);
  const requests = Number(total[1]);
  const seconds = (Number(total[2]) * UNIT_MS[total[3]!]!) / 1000;
  const rpsMatch = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const errors =
    (socket === null ? 0 : socket.slice(1, 5).reduce((sum, n) => sum + Number(n), 0)) +
    (non2xx === null ? 0 : Number(non2xx[1]));
  return {
    requests,
    seconds,
    rps: rpsMatch === null ? requests / seconds : Number(rpsMatch[1]),
    p50: latencyMs(text, '50'),
    p99: latencyMs(text, '99'),
    errors,
  };
}
