/**
 * WebSocket tunnels: what a proxy hop costs a WebSocket, as ratios against a direct connection and
 * against nginx proxying the same echo node side by side in the same run.
 *
 * The node is a `ws` echo server in a child process. Variants: direct (client → node), Switchyard
 * (its CLI with `--http-to http://node`), nginx (1 worker, `proxy_http_version 1.1` + Upgrade/Connection
 * headers, the documented WebSocket setup; skipped when nginx is missing). Proxies are pinned to core 0
 * and the node to core 1 when `taskset` and 2 cores exist; the client runs here. Per variant:
 *   - rtt: one connection, sequential 32-byte echoes for `duration` s → round trips/s and p50/p99 µs;
 *   - bulk: one connection, 64 KiB binary messages with up to 8 MiB in flight → echoed MiB/s;
 *   - fanout: `conns` connections each doing sequential echoes → messages/s.
 *
 *   npx tsx bench/websocket-tunnel.ts [--duration 3] [--conns 100]       (after npm run build)
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { type Child, canPin, installCleanup, killAll, start } from './lib/children.js';
import { nginxAvailable } from './lib/nginx.js';
import { freePort } from './lib/probe.js';

const CLI = resolve(import.meta.dirname, '..', 'packages', 'switchyard', 'dist', 'cli.js');
const WS_MODULE = resolve(import.meta.dirname, '..', 'node_modules', 'ws', 'index.js');

const NODE_SCRIPT = `
const { WebSocketServer } = require(${JSON.stringify(WS_MODULE)});
const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[1]), perMessageDeflate: false });
wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
wss.on('listening', () => console.log('ready'));
`;

interface VariantResult {
  readonly name: string;
  readonly rtt: number;
  readonly p50us: number;
  readonly p99us: number;
  readonly bulkMiBs: number;
  readonly fanout: number;
}

function open(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { host: 'bench.test' }, perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function waitOpen(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      (await open(port)).terminate();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function rtt(port: number, ms: number): Promise<{ rate: number; p50: number; p99: number }> {
  const ws = await open(port);
  const payload = Buffer.alloc(32, 0x61);
  const samples: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t = performance.now();
    await new Promise<void>((done) => {
      ws.once('message', () => done());
      ws.send(payload);
    });
    samples.push((performance.now() - t) * 1000);
  }
  ws.terminate();
  samples.sort((a, b) => a - b);
  return {
    rate: samples.length / (ms / 1000),
    p50: samples[Math.floor(samples.length * 0.5)]!,
    p99: samples[Math.floor(samples.length * 0.99)]!,
  };
}

async function bulk(port: number, ms: number): Promise<number> {
  const ws = await open(port);
  const payload = Buffer.alloc(64 * 1024, 0x62);
  const window = 8 * 1024 * 1024;
  let inFlight = 0;
  let echoed = 0;
  let stop = false;
  return new Promise((resolve) => {
    const pump = (): void => {
      while (!stop && inFlight < window) {
        inFlight += payload.length;
        ws.send(payload);
      }
    };
    ws.on('message', (data: Buffer) => {
      inFlight -= data.length;
      echoed += data.length;
      pump();
    });
    const started = performance.now();
    pump();
    setTimeout(() => {
      stop = true;
      const seconds = (performance.now() - started) / 1000;
      ws.terminate();
      resolve(echoed / 1024 / 1024 / seconds);
    }, ms);
  });
}

async function fanout(port: number, conns: number, ms: number): Promise<number> {
  const sockets = await Promise.all(Array.from({ length: conns }, () => open(port)));
  let count = 0;
  const end = performance.now() + ms;
  const payload = Buffer.alloc(32, 0x63);
  await Promise.all(
    sockets.map(async (ws) => {
      while (performance.now() < end) {
        await new Promise<void>((done) => {
          ws.once('message', () => done());
          ws.send(payload);
        });
        count++;
      }
    }),
  );
  for (const ws of sockets) ws.terminate();
  return count / (ms / 1000);
}

function nginxConfig(dir: string, listen: number, node: number): string {
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  const path = join(dir, 'nginx-ws.conf');
  writeFileSync(
    path,
    `${user}daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'nginx-error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  server {
    listen 127.0.0.1:${listen} backlog=4096;
    location / {
      proxy_pass http://127.0.0.1:${node};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
      proxy_read_timeout 300s;
    }
  }
}
`,
  );
  return path;
}

async function measure(name: string, port: number, seconds: number, conns: number): Promise<VariantResult> {
  await waitOpen(port);
  const ms = seconds * 1000;
  await rtt(port, 300); // warm-up
  const r = await rtt(port, ms);
  const b = await bulk(port, ms);
  const f = await fanout(port, conns, ms);
  return { name, rtt: r.rate, p50us: r.p50, p99us: r.p99, bulkMiBs: b, fanout: f };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { duration: { type: 'string', default: '3' }, conns: { type: 'string', default: '100' } },
  });
  const seconds = Number(values.duration);
  const conns = Number(values.conns);
  if (!existsSync(CLI)) throw new Error('packages/switchyard/dist/cli.js is missing: run npm run build');
  installCleanup();
  const pin = canPin(os.cpus().length);
  const dir = mkdtempSync(join(os.tmpdir(), 'sy-bench-ws-'));
  const nodePort = await freePort();
  const children: Child[] = [];
  children.push(
    start('ws-node', process.execPath, ['-e', NODE_SCRIPT, String(nodePort)], { cpu: pin ? 1 : undefined }),
  );
  const results: VariantResult[] = [];
  results.push(await measure('direct', nodePort, seconds, conns));

  const syPort = await freePort();
  children.push(
    start(
      'switchyard',
      process.execPath,
      [
        CLI,
        '--workers',
        '1',
        '--http',
        `127.0.0.1:${syPort}`,
        '--http-to',
        `http://127.0.0.1:${nodePort}`,
        '--subscription-server',
        '127.0.0.1:0',
        '--admin',
        '127.0.0.1:0',
        '--log-level',
        'warn',
      ],
      { cpu: pin ? 0 : undefined },
    ),
  );
  results.push(await measure('switchyard', syPort, seconds, conns));
  await children.pop()!.stop();

  if (nginxAvailable()) {
    const ngPort = await freePort();
    const conf = nginxConfig(dir, ngPort, nodePort);
    children.push(start('nginx', 'nginx', ['-p', dir, '-c', conf], { cpu: pin ? 0 : undefined }));
    results.push(await measure('nginx', ngPort, seconds, conns));
  } else {
    console.log('nginx not installed: skipping the nginx variant');
  }
  await killAll();

  const direct = results[0]!;
  console.log(`WebSocket tunnels, ${seconds} s per measure, fanout ${conns} connections, pinned: ${pin}`);
  console.log('variant      rtt/s   p50 µs  p99 µs  bulk MiB/s  fanout msg/s   (ratio to direct: rtt bulk fanout)');
  for (const r of results) {
    console.log(
      `${r.name.padEnd(11)} ${r.rtt.toFixed(0).padStart(6)} ${r.p50us.toFixed(0).padStart(8)} ${r.p99us.toFixed(0).padStart(7)} ${r.bulkMiBs.toFixed(0).padStart(11)} ${r.fanout.toFixed(0).padStart(13)}   ${(r.rtt / direct.rtt).toFixed(2)} ${(r.bulkMiBs / direct.bulkMiBs).toFixed(2)} ${(r.fanout / direct.fanout).toFixed(2)}`,
    );
  }
}

await main();
