import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { announce as announceNode } from '@switchyard/agent';
import { encodeSubscription } from '@switchyard/protocol';
import { pino } from 'pino';
import { parseCli, SwitchyardApp } from 'switchyard';
import { CLI, EPHEMERAL_LISTENERS, get, processAlive, ROOT, waitFor } from './support.js';
import { makeCert, servedSubject } from './tls-support.js';

interface Backend {
  readonly port: number;
  readonly server: http.Server;
  /** Responses of /slow wait for this to be called. */
  release(): void;
  slowStarted: number;
}

async function startBackend(name: string, status = 200): Promise<Backend> {
  let waiting: (() => void)[] = [];
  const backend: Backend = {
    port: 0,
    server: http.createServer((req, res) => {
      if (req.url === '/slow') {
        backend.slowStarted++;
        waiting.push(() => res.end(`${name} slow`));
        return;
      }
      res.statusCode = status;
      res.end(name);
    }),
    release: () => {
      for (const w of waiting) w();
      waiting = [];
    },
    slowStarted: 0,
  };
  await new Promise<void>((resolve) => backend.server.listen(0, '127.0.0.1', resolve));
  (backend as { port: number }).port = (backend.server.address() as AddressInfo).port;
  return backend;
}

const udp = dgram.createSocket('udp4');
udp.unref(); // shared by every test of this file; never keeps the process alive
function announce(port: number, command: 'subscribe' | 'unsubscribe', key: string, node: number, weight = 1): void {
  const packet = encodeSubscription(command, [
    ['key', key],
    ['address', `127.0.0.1:${node}`],
    ['proto', 'http'],
    ['weight', String(weight)],
  ]);
  udp.send(packet, port, '127.0.0.1');
}

async function metric(adminPort: number, series: string): Promise<number> {
  const reply = await get(adminPort, '127.0.0.1', '/metrics');
  const line = reply.text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

/** Resolves once every worker has applied every change and its table digest equals the primary's. */
async function converged(app: SwitchyardApp, workers: number): Promise<void> {
  await waitFor(
    async () => {
      const d = await app.cluster!.digests();
      const done = d.workers.length === workers && d.workers.every((w) => w.seq === d.seq && w.digest === d.primary);
      return done ? true : undefined;
    },
    10_000,
    'worker tables equal to the primary',
  );
}

function httpsGet(port: number, host: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: '127.0.0.1', port, servername: host, headers: { host }, rejectUnauthorized: false, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
  });
}

/** One JSON document from uWSGI-style stats server on `port` (it writes and closes). */
function statsDocument(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

describe('switchyard --workers 2', () => {
  let app: SwitchyardApp;
  let httpPort: number;
  let subscriptionPort: number;
  let adminPort: number;
  let a: Backend;
  let b: Backend;

  before(async () => {
    a = await startBackend('A');
    b = await startBackend('B');
    const argv = [
      ...EPHEMERAL_LISTENERS,
      '--http-to',
      `http://127.0.0.1:${a.port}`,
      '--http-stats',
      '127.0.0.1:0',
      '--workers',
      '2',
      '--log-level',
      'warn',
    ];
    const parsed = parseCli(argv);
    if (parsed.kind !== 'run') throw new Error('unexpected help');
    // Snapshots in chunks of 7 changes: a restarted worker gets the table in many messages. A worker
    // silent for 4 s (it reports every second) is stalled.
    app = new SwitchyardApp({
      config: parsed.config,
      logger: pino({ level: 'silent' }),
      workerArgv: argv,
      workerTuning: { snapshotChunk: 7, stallMs: 4000 },
    });
    await app.start();
    httpPort = app.httpAddresses()[0]!.port;
    subscriptionPort = app.subscriptions!.addresses()[0]!.port;
    adminPort = app.admin!.address()!.port;
  });

  after(async () => {
    await app.close();
    a.server.close();
    b.server.close();
  });

  test('serves a subscribed host from every worker once the packet is applied', async () => {
    assert.equal(app.router.addresses().length, 0, 'the primary binds no HTTP listener');
    announce(subscriptionPort, 'subscribe', 'app.test', a.port);
    announce(subscriptionPort, 'subscribe', 'app.test', b.port);
    await converged(app, 2);
    const before = await metric(adminPort, 'switchyard_requests_total{class="2xx"}');
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      // A new connection each time: the cluster hands connections to the workers in turn.
      const reply = await get(httpPort, 'app.test');
      assert.equal(reply.status, 200);
      seen.add(reply.text);
    }
    assert.deepEqual([...seen].sort(), ['A', 'B']);
    assert.equal(
      (await metric(adminPort, 'switchyard_requests_total{class="2xx"}')) - before,
      20,
      '/metrics sums the workers',
    );
    // The admin API shows cluster totals (each worker reports about once a second).
    await waitFor(
      async () => {
        const view = JSON.parse((await get(adminPort, '127.0.0.1', '/v1/vhosts/app.test')).text) as {
          nodes: { requests: number }[];
          traffic: { requests: number; '2xx': number };
        };
        const stats = JSON.parse((await get(adminPort, '127.0.0.1', '/v1/stats')).text) as {
          router: { requests: number };
          requests: { ok: number };
        };
        const perNode = view.nodes.reduce((n, node) => n + node.requests, 0);
        const totals = [perNode, view.traffic.requests, view.traffic['2xx'], stats.router.requests, stats.requests.ok];
        return totals.every((n) => n === 20) ? true : undefined;
      },
      5000,
      'per-node request counts summed over the workers in the admin API',
    );
    // uWSGI's stats document too: the workers' listener, and the nodes' requests summed.
    const stats = JSON.parse(await statsDocument(app.compat.stats!.address()!.port)) as {
      http: string[];
      subscriptions: { key: string; nodes: { requests: number }[] }[];
    };
    assert.ok(stats.http.includes(`127.0.0.1:${httpPort}`), `stats lists the HTTP listener: ${stats.http.join(' ')}`);
    const pool = stats.subscriptions.find((p) => p.key === 'app.test');
    assert.equal(
      pool?.nodes.reduce((n, node) => n + node.requests, 0),
      20,
    );
    assert.equal(await metric(adminPort, 'switchyard_workers'), 2);
    assert.equal(await metric(adminPort, 'switchyard_hosts'), 1, 'table gauges are not summed');
    for (let i = 0; i < 4; i++) {
      const reply = await get(httpPort, 'unknown.test');
      assert.equal(
        `${reply.status} ${reply.text}`,
        '200 A',
        'static (--http-to) nodes are in every worker from the start',
      );
    }
  });

  test('keeps every worker table equal to the primary through a burst of subscriptions, weights and unsubscribes', async () => {
    for (let i = 0; i < 400; i++) {
      const key = `burst-${i % 50}.test`;
      const node = i % 3 === 0 ? a.port : b.port;
      if (i % 7 === 6) announce(subscriptionPort, 'unsubscribe', key, node);
      else announce(subscriptionPort, 'subscribe', key, node, 1 + (i % 4));
    }
    await converged(app, 2);
    const lag = app.cluster!.stats().lag;
    assert.ok(lag.samples > 0 && lag.p99Ms !== undefined, 'the lag of applied batches is recorded');
  });

  test('reports a node drained only after the worker serving its last request finished it', async () => {
    const key = 'drain.test';
    announce(subscriptionPort, 'subscribe', key, a.port);
    await converged(app, 2);
    const slowBefore = a.slowStarted;
    const pending = get(httpPort, key, '/slow');
    await waitFor(() => (a.slowStarted > slowBefore ? true : undefined), 5000, 'the slow request at the node');
    announce(subscriptionPort, 'unsubscribe', key, a.port);
    await waitFor(
      () => (app.registry.get(key)?.[0]?.state === 'draining' ? true : undefined),
      5000,
      'the node draining',
    );
    await converged(app, 2);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(app.registry.get(key)?.length, 1, 'still in the registry while a worker serves it');
    a.release();
    assert.equal((await pending).status, 200, 'the in-flight request completes');
    await waitFor(() => (app.registry.get(key) === undefined ? true : undefined), 5000, 'the drained node removed');
  });

  test('shows a node a worker ejected in the admin API and the event log', async () => {
    const bad = await startBackend('bad', 503);
    try {
      announce(subscriptionPort, 'subscribe', 'flaky.test', a.port);
      announce(subscriptionPort, 'subscribe', 'flaky.test', bad.port);
      await converged(app, 2);
      for (let i = 0; i < 30; i++) await get(httpPort, 'flaky.test');
      const address = `127.0.0.1:${bad.port}`;
      await waitFor(
        async () => {
          const view = JSON.parse((await get(adminPort, '127.0.0.1', '/v1/vhosts/flaky.test')).text) as {
            nodes: { address: string; ejection: { ejected: boolean; reason?: string } | null }[];
          };
          return view.nodes.find((n) => n.address === address)?.ejection?.ejected === true ? true : undefined;
        },
        5000,
        'the ejection in the node view',
      );
      const events = JSON.parse((await get(adminPort, '127.0.0.1', '/v1/events?host=flaky.test')).text) as {
        events: { type: string; node?: string; source?: string }[];
      };
      assert.ok(events.events.some((e) => e.type === 'ejected' && e.node === address && e.source === 'health'));
    } finally {
      bad.server.close();
    }
  });

  test('restarts a worker that dies and gives it the table before it serves', async () => {
    const [victim] = app.cluster!.stats().pids;
    process.kill(victim!, 'SIGKILL');
    await waitFor(
      () => {
        const s = app.cluster!.stats();
        return s.restarts === 1 && s.listening === 2 && !s.pids.includes(victim!) ? true : undefined;
      },
      15_000,
      'the worker restarted',
    );
    await converged(app, 2);
    for (let i = 0; i < 10; i++) assert.equal((await get(httpPort, 'app.test')).status, 200);
    assert.equal(await metric(adminPort, 'switchyard_worker_restarts_total'), 1);
  });

  test('kills and replaces a worker that stops answering, and the others keep serving', async () => {
    const before = app.cluster!.stats();
    const [frozen] = before.pids;
    process.kill(frozen!, 'SIGSTOP');
    try {
      // Changes keep coming while it is frozen; the other worker serves them.
      announce(subscriptionPort, 'subscribe', 'late.test', b.port);
      await waitFor(
        () => {
          const s = app.cluster!.stats();
          return s.stalls === before.stalls + 1 && s.listening === 2 && !s.pids.includes(frozen!) ? true : undefined;
        },
        15_000,
        'the stalled worker replaced',
      );
    } finally {
      if (processAlive(frozen!)) process.kill(frozen!, 'SIGKILL');
    }
    await converged(app, 2);
    for (let i = 0; i < 6; i++) assert.equal((await get(httpPort, 'late.test')).text, 'B');
    assert.equal(await metric(adminPort, 'switchyard_worker_stalls_total'), before.stalls + 1);
  });
});

describe('switchyard --workers (process)', () => {
  test('refuses to start when the workers cannot bind the HTTP address (SY_BIND_FAILED)', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as AddressInfo).port;
    const argv = ['--http', `127.0.0.1:${port}`, '--subscription-server', '127.0.0.1:0', '--admin', '127.0.0.1:0'];
    const parsed = parseCli([...argv, '--workers', '2', '--log-level', 'silent']);
    if (parsed.kind !== 'run') throw new Error('unexpected help');
    const app = new SwitchyardApp({
      config: parsed.config,
      logger: pino({ level: 'silent' }),
      workerArgv: [...argv, '--workers', '2', '--log-level', 'silent'],
    });
    await assert.rejects(app.start(), { code: 'SY_BIND_FAILED' });
    assert.equal(app.cluster!.stats().pids.length, 0, 'no worker is left running');
    busy.close();
  });

  test('close() lets the workers finish the requests they are serving', async () => {
    const slow = await startBackend('S');
    const argv = ['--http', '127.0.0.1:0', '--subscription-server', '127.0.0.1:0', '--admin', '127.0.0.1:0'];
    const all = [...argv, '--workers', '2', '--log-level', 'silent'];
    const parsed = parseCli(all);
    if (parsed.kind !== 'run') throw new Error('unexpected help');
    const app = new SwitchyardApp({ config: parsed.config, logger: pino({ level: 'silent' }), workerArgv: all });
    await app.start();
    try {
      announce(app.subscriptions!.addresses()[0]!.port, 'subscribe', 'slow.test', slow.port);
      await converged(app, 2);
      const pending = get(app.httpAddresses()[0]!.port, 'slow.test', '/slow');
      await waitFor(() => (slow.slowStarted > 0 ? true : undefined), 5000, 'the request at the node');
      let closed = false;
      const closing = app.close().then(() => {
        closed = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(closed, false, 'close() waits for the request in flight');
      slow.release();
      assert.equal((await pending).text, 'S slow');
      await closing;
      assert.equal(app.cluster!.stats().pids.length, 0);
    } finally {
      await app.close();
      slow.server.close();
    }
  });

  test('every worker serves HTTPS with the certificates of signed subscriptions', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-workers-tls-'));
    const backend = await startBackend('tls-ok');
    const def = makeCert(dir, 'fallback.test');
    const sub = makeCert(dir, 'signed.test');
    const keys = generateKeyPairSync('ed25519');
    const pub = path.join(dir, 'tenant.pub');
    writeFileSync(pub, keys.publicKey.export({ type: 'spki', format: 'pem' }));
    const argv = [
      '--http',
      '127.0.0.1:0',
      '--https',
      '127.0.0.1:0',
      '--https-cert-default',
      `${def.cert},${def.key}`,
      '--subscription-key',
      `*.test=ed25519:${pub}`,
      '--subscription-server',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--workers',
      '2',
      '--log-level',
      'silent',
    ];
    const parsed = parseCli(argv);
    if (parsed.kind !== 'run') throw new Error('unexpected help');
    const app = new SwitchyardApp({ config: parsed.config, logger: pino({ level: 'silent' }), workerArgv: argv });
    await app.start();
    const agent = announceNode({
      server: `127.0.0.1:${app.subscriptions!.addresses()[0]!.port}`,
      key: 'signed.test',
      address: `127.0.0.1:${backend.port}`,
      proto: 'http',
      intervalMs: 60_000,
      extra: { sni_crt: sub.cert, sni_key: sub.key },
      signing: { kid: 'tenant', algorithm: 'ed25519', key: keys.privateKey },
    });
    try {
      const httpsPort = app.httpsAddresses()[0]!.port;
      await converged(app, 2);
      // New connections go to the workers in turn: eight in a row served the subscription's certificate.
      await waitFor(
        async () => {
          for (let i = 0; i < 8; i++)
            if ((await servedSubject(httpsPort, 'signed.test')) !== 'signed.test') return undefined;
          return true;
        },
        10_000,
        'the subscription certificate in every worker',
      );
      assert.equal(await servedSubject(httpsPort, 'other.test'), 'fallback.test');
      const reply = await httpsGet(httpsPort, 'signed.test');
      assert.equal(`${reply.status} ${reply.text}`, '200 tls-ok');
    } finally {
      await agent.close();
      await app.close();
      backend.server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the workers leave with the primary, even when it is killed', async () => {
    const child = spawn(process.execPath, [CLI, '--workers', '2', ...EPHEMERAL_LISTENERS], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => lines.push(...chunk.split('\n')));
    const ready = await waitFor(() => lines.find((l) => l.includes('"switchyard ready"')), 20_000, 'switchyard ready');
    const { admin } = JSON.parse(ready) as { admin: string };
    const stats = JSON.parse((await get(Number(admin.split(':').at(-1)), '127.0.0.1', '/v1/stats')).text) as {
      workers: { pids: number[] };
    };
    assert.equal(stats.workers.pids.length, 2);
    child.kill('SIGKILL');
    await waitFor(
      () => (stats.workers.pids.every((pid) => !processAlive(pid)) ? true : undefined),
      15_000,
      'the workers gone',
    );
  });
});
