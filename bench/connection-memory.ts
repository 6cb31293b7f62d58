/**
 * Memory of the router under two client patterns, Switchyard (its CLI, as a user runs it) side by side
 * with the plain Node proxy (bench/plain-node-proxy.js) as the reference:
 *
 *  1. idle keep-alive connections: `--connections N` (10000) clients each make one request and stay
 *     open; the proxy's RSS (VmRSS from /proc) before and after gives bytes per idle connection.
 *  2. a slow reader: one client downloads `--slow-mib M` (200) MiB through the proxy at
 *     `--slow-rate R` (40) MiB/s; the proxy's RSS is sampled every 100 ms: its peak over the baseline
 *     shows whether the response is buffered (it should stay near the socket buffers, not M MiB).
 *
 *   npx tsx bench/connection-memory.ts [--connections 10000] [--slow-mib 200] [--slow-rate 40] [--only idle|slow]
 *
 * Needs N + 512 open files in this process and in the proxy (`ulimit -n`); with fewer, the idle part is
 * skipped with a message. Loopback only; every child is stopped at the end. After `npm run build`.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { installCleanup, killAll, start } from './lib/children.js';
import { freePort } from './lib/probe.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '10000' },
    'slow-mib': { type: 'string', default: '200' },
    'slow-rate': { type: 'string', default: '40' },
    only: { type: 'string' },
  },
  strict: true,
});
const CONNECTIONS = Number(values.connections);
const SLOW_MIB = Number(values['slow-mib']);
const SLOW_RATE = Number(values['slow-rate']);
const ONLY = values.only;

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return kb * 1024;
}

function openFileLimit(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  return Number(/Max open files\s+(\d+)/.exec(limits)?.[1] ?? 1024);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

/** A backend: `GET /` → "ok"; `GET /big` → SLOW_MIB MiB streamed with backpressure. */
async function startBackend(): Promise<{ server: http.Server; port: number }> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const server = http.createServer({ keepAliveTimeout: 600_000 }, (req, res) => {
    if (req.url !== '/big') {
      res.end('ok');
      return;
    }
    const size = SLOW_MIB * 1024 * 1024;
    res.writeHead(200, { 'Content-Length': String(size) });
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  server.keepAliveTimeout = 600_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as net.AddressInfo).port };
}

interface Proxy {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  stop(): Promise<void>;
}

async function startProxy(name: 'switchyard' | 'plain-node', backendPort: number): Promise<Proxy> {
  const port = await freePort();
  const child =
    name === 'switchyard'
      ? start('switchyard', process.execPath, [
          path.join(ROOT, 'packages/switchyard/dist/cli.js'),
          '--workers',
          '1',
          '--http',
          `127.0.0.1:${port}`,
          '--http-to',
          `http://127.0.0.1:${backendPort}`,
          '--subscription-server',
          '127.0.0.1:0',
          '--admin',
          '127.0.0.1:0',
          '--client-keepalive-timeout',
          '600',
          '--max-connections',
          '0',
          '--log-level',
          'error',
        ])
      : start('plain-node', process.execPath, [
          path.join(ROOT, 'bench/plain-node-proxy.js'),
          '--listen',
          `127.0.0.1:${port}`,
          '--backend',
          `http://127.0.0.1:${backendPort}`,
        ]);
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      http
        .get({ port, host: '127.0.0.1', path: '/', headers: { host: 'bench.test' }, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        })
        .on('error', () => resolve(false));
    });
    if (ok) return { name, pid: child.pid, port, stop: () => child.stop() };
    await sleep(100);
  }
  throw new Error(`${name} did not start: ${child.output()}`);
}

/** One keep-alive request on a fresh connection; resolves with the socket left open and idle. */
function idleConnection(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let seen = '';
    socket.on('error', reject);
    socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nHost: bench.test\r\n\r\n'));
    socket.on('data', (c: Buffer) => {
      seen += c.toString('latin1');
      if (seen.includes('\r\n\r\n') && seen.endsWith('ok')) resolve(socket);
      else if (/\r\n0\r\n\r\n$/.test(seen)) resolve(socket);
    });
  });
}

async function idleBench(proxy: Proxy): Promise<string> {
  // Warm up: the same request on 200 short connections, then let the heap settle.
  for (let i = 0; i < 200; i++) (await idleConnection(proxy.port)).destroy();
  await sleep(1500);
  const before = rssBytes(proxy.pid);
  const sockets: net.Socket[] = [];
  const started = Date.now();
  for (let i = 0; i < CONNECTIONS; i += 250) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(250, CONNECTIONS - i) }, () => idleConnection(proxy.port)),
    );
    sockets.push(...batch);
  }
  const openMs = Date.now() - started;
  await sleep(2000);
  const after = rssBytes(proxy.pid);
  for (const s of sockets) s.destroy();
  await sleep(2000);
  const released = rssBytes(proxy.pid);
  const per = (after - before) / CONNECTIONS;
  return `| ${proxy.name} | ${CONNECTIONS} | ${mib(before)} | ${mib(after)} | ${(per / 1024).toFixed(2)} KiB | ${mib(released)} | ${openMs} |`;
}

async function slowBench(proxy: Proxy): Promise<string> {
  await sleep(1000);
  const before = rssBytes(proxy.pid);
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssBytes(proxy.pid));
  }, 100);
  const started = Date.now();
  const received = await new Promise<number>((resolve, reject) => {
    const socket = net.connect(proxy.port, '127.0.0.1');
    let total = 0;
    // Read no faster than SLOW_RATE: pause whenever ahead of schedule, resume every 20 ms.
    const allowed = () => ((Date.now() - started) / 1000) * SLOW_RATE * 1024 * 1024;
    const tick = setInterval(() => {
      if (total <= allowed()) socket.resume();
    }, 20);
    socket.on('error', reject);
    socket.on('connect', () => socket.write('GET /big HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n'));
    socket.on('data', (c: Buffer) => {
      total += c.length;
      if (total > allowed()) socket.pause();
    });
    socket.on('close', () => {
      clearInterval(tick);
      resolve(total);
    });
  });
  clearInterval(sampler);
  const seconds = (Date.now() - started) / 1000;
  return `| ${proxy.name} | ${mib(received)} | ${seconds.toFixed(1)} | ${mib(before)} | ${mib(peak)} | ${mib(peak - before)} |`;
}

async function main(): Promise<void> {
  installCleanup();
  const backend = await startBackend();
  const lines: string[] = [];
  if (ONLY === undefined || ONLY === 'idle') {
    const limit = openFileLimit();
    if (limit < CONNECTIONS + 512) {
      lines.push(`idle connections skipped: open-file limit ${limit} < ${CONNECTIONS + 512} (raise ulimit -n)`);
    } else {
      lines.push(
        '| proxy | idle connections | RSS before (MiB) | RSS with them open (MiB) | per connection | RSS after closing (MiB) | open time (ms) |',
        '|---|---|---|---|---|---|---|',
      );
      for (const name of ['plain-node', 'switchyard'] as const) {
        const proxy = await startProxy(name, backend.port);
        lines.push(await idleBench(proxy));
        await proxy.stop();
      }
    }
    lines.push('');
  }
  if (ONLY === undefined || ONLY === 'slow') {
    lines.push(
      `| proxy | MiB read at ${SLOW_RATE} MiB/s | seconds | RSS before (MiB) | RSS peak (MiB) | peak − before (MiB) |`,
      '|---|---|---|---|---|---|',
    );
    for (const name of ['plain-node', 'switchyard'] as const) {
      const proxy = await startProxy(name, backend.port);
      lines.push(await slowBench(proxy));
      await proxy.stop();
    }
  }
  backend.server.closeAllConnections();
  backend.server.close();
  await killAll();
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
