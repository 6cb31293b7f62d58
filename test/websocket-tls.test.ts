/**
 * WebSocket and TLS end to end through the composed `switchyard` (CLI options → app), over real sockets:
 * a real uWSGI node speaking uWSGI's websocket API, `ws` nodes joining and leaving by subscription while
 * tunnels stay up, HTTPS listeners with CLI certificates, and certificates carried by signed subscriptions.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type AgentHandle, announce } from '@switchyard/agent';
import { type ClientOptions, WebSocket, WebSocketServer } from 'ws';
import { freePort, SKIP_UWSGI, startApp, waitFor } from './support.js';
import { makeCert, servedSubject } from './tls-support.js';

const WS_APP = `import uwsgi

def application(env, start_response):
    if env.get('HTTP_UPGRADE', '').lower() == 'websocket':
        uwsgi.websocket_handshake(env['HTTP_SEC_WEBSOCKET_KEY'], env.get('HTTP_ORIGIN', ''))
        while True:
            try:
                msg = uwsgi.websocket_recv()
            except IOError:
                return []
            uwsgi.websocket_send(b'uwsgi:' + msg + b':' + env.get('HTTPS', 'off').encode())
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'plain']
`;

function connect(url: string, host: string, extra: Record<string, unknown> = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers: { host }, ...extra } as ClientOptions);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function echo(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    ws.once('message', (data) => resolve(data.toString()));
    ws.once('close', (code) => reject(new Error(`closed with ${code}`)));
    ws.send(text);
  });
}

/** A `ws` node that tags replies with its name, announced over UDP by the agent library. */
async function wsNode(name: string, subscriptionPort: number, key: string) {
  const server = http.createServer((_req, res) => res.end(name));
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => {
    ws.on('message', (data) => ws.send(`${name}:${data.toString()}`));
    ws.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  let agent: AgentHandle | undefined = announce({
    server: `127.0.0.1:${subscriptionPort}`,
    key,
    address,
    proto: 'http',
    intervalMs: 60_000,
  });
  return {
    name,
    address,
    /** Unsubscribes (the node drains) but keeps serving its open connections. */
    leave: async () => {
      await agent?.close();
      agent = undefined;
    },
    close: async () => {
      await agent?.close();
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('WebSocket and TLS through switchyard', () => {
  let dir: string;
  const cleanups: (() => Promise<void> | void)[] = [];
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sy-wstls-'));
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    rmSync(dir, { recursive: true, force: true });
  });

  test('echoes WebSocket messages to a real uWSGI node using uwsgi.websocket_*, over ws:// and wss:// (HTTPS=on)', {
    skip: SKIP_UWSGI,
  }, async () => {
    const def = makeCert(dir, 'default.test');
    const { app, httpPort, subscriptionPort } = await startApp(['--https', `127.0.0.1:0,${def.cert},${def.key}`]);
    cleanups.push(() => app.close());
    const httpsPort = app.router.httpsAddresses()[0]!.port;
    writeFileSync(path.join(dir, 'ws_app.py'), WS_APP);
    const port = await freePort();
    const child: ChildProcess = spawn(
      'uwsgi',
      [
        '--plugin',
        'python3',
        '--socket',
        `127.0.0.1:${port}`,
        '--wsgi-file',
        path.join(dir, 'ws_app.py'),
        '--master',
        '--processes',
        '1',
        '--threads',
        '2',
        '--logto',
        path.join(dir, 'uwsgi.log'),
        '--subscribe-to',
        `127.0.0.1:${subscriptionPort}:ws.test`,
      ],
      { stdio: 'ignore' },
    );
    const exited = once(child, 'exit');
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
      await exited;
      clearTimeout(timer);
    });
    await waitFor(() => app.registry.get('ws.test'), 15_000, 'the uWSGI node to subscribe');
    const plain = await connect(`ws://127.0.0.1:${httpPort}/ws`, 'ws.test');
    assert.equal(await echo(plain, 'hello'), 'uwsgi:hello:off');
    const big = 'x'.repeat(200_000);
    assert.equal(await echo(plain, big), `uwsgi:${big}:off`);
    plain.close();
    const secure = await connect(`wss://127.0.0.1:${httpsPort}/ws`, 'ws.test', {
      servername: 'ws.test',
      rejectUnauthorized: false,
    });
    assert.equal(await echo(secure, 'hi'), 'uwsgi:hi:on');
    secure.close();
  });

  test('keeps established tunnels working while nodes join and leave; new tunnels go to live nodes', async () => {
    const { app, httpPort, subscriptionPort, adminPort } = await startApp([
      '--websocket-drain-deadline',
      'churn.test=1.5',
    ]);
    cleanups.push(() => app.close());
    const url = `ws://127.0.0.1:${httpPort}/`;
    const a = await wsNode('a', subscriptionPort, 'churn.test');
    cleanups.push(() => a.close());
    await waitFor(() => app.registry.get('churn.test'), 3000, 'node a');
    const onA = await Promise.all(Array.from({ length: 5 }, () => connect(url, 'churn.test')));
    const closedA = onA.map((ws) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code))));
    const b = await wsNode('b', subscriptionPort, 'churn.test');
    cleanups.push(() => b.close());
    await waitFor(() => (app.router.table.get('churn.test')?.live.length === 2 ? true : undefined), 3000, 'b');
    await a.leave();
    await waitFor(
      () => (app.router.table.get('churn.test')?.live.every((n) => n.address === b.address) ? true : undefined),
      3000,
      'a draining',
    );
    let failures = 0;
    // Established tunnels to the draining node keep echoing; every new tunnel goes to b.
    for (let round = 0; round < 10; round++) {
      for (const [i, ws] of onA.entries()) {
        if ((await echo(ws, `m${round}.${i}`)) !== `a:m${round}.${i}`) failures++;
      }
      const fresh = await connect(url, 'churn.test');
      if ((await echo(fresh, 'new')) !== 'b:new') failures++;
      fresh.close();
    }
    const c = await wsNode('c', subscriptionPort, 'churn.test');
    cleanups.push(() => c.close());
    await waitFor(() => (app.router.table.get('churn.test')?.live.length === 2 ? true : undefined), 3000, 'c');
    const onB = await connect(url, 'churn.test');
    const first = await echo(onB, 'x');
    await (first.startsWith('b:') ? b : c).leave();
    for (let round = 0; round < 5; round++) {
      if (!(await echo(onB, `y${round}`)).endsWith(`:y${round}`)) failures++;
    }
    // Done with it before its own node's 1.5 s drain deadline can close it (only a's tunnels are counted
    // below; on a slow machine the waits that follow outlast that deadline).
    onB.terminate();
    assert.equal(failures, 0);
    assert.equal(
      app.registry.get('churn.test')?.some((n) => n.address === a.address),
      true,
      'a still draining',
    );
    // The host's drain deadline (1.5 s) then closes a's tunnels with 1001, and a leaves the table.
    assert.deepEqual(await Promise.all(closedA), [1001, 1001, 1001, 1001, 1001]);
    await waitFor(
      () => (app.registry.get('churn.test')?.every((n) => n.address !== a.address) ? true : undefined),
      3000,
      'a removed once drained',
    );
    const stats = (await (await fetch(`http://127.0.0.1:${adminPort}/v1/stats`)).json()) as {
      websockets: { goingAway: { drain: number } };
    };
    assert.equal(stats.websockets.goingAway.drain, 5);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    assert.match(metrics, /switchyard_websocket_going_away_total\{reason="drain"\} 5/);
    assert.match(metrics, /switchyard_websockets_open \d+/);
  });

  test('installs certificates from signed subscriptions only', async () => {
    const def = makeCert(dir, 'fallback.test');
    const sub = makeCert(dir, 'signed.test');
    const keys = generateKeyPairSync('ed25519');
    const pub = path.join(dir, 'tenant.pub');
    writeFileSync(pub, keys.publicKey.export({ type: 'spki', format: 'pem' }));
    const backend = http.createServer((_req, res) => res.end('ok'));
    backend.listen(0, '127.0.0.1');
    await once(backend, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => backend.close(() => resolve())));
    const address = `127.0.0.1:${(backend.address() as AddressInfo).port}`;
    const extra = { sni_crt: sub.cert, sni_key: sub.key };

    const signed = await startApp([
      '--https',
      '127.0.0.1:0',
      '--https-cert-default',
      `${def.cert},${def.key}`,
      '--subscription-key',
      `*.test=ed25519:${pub}`,
    ]);
    cleanups.push(() => signed.app.close());
    const agent = announce({
      server: `127.0.0.1:${signed.subscriptionPort}`,
      key: 'signed.test',
      address,
      proto: 'http',
      intervalMs: 60_000,
      extra,
      signing: { kid: 'tenant', algorithm: 'ed25519', key: keys.privateKey },
    });
    cleanups.push(() => agent.close());
    const signedPort = signed.app.router.httpsAddresses()[0]!.port;
    await waitFor(() => signed.app.router.certificates.find('signed.test'), 3000, 'the subscription certificate');
    assert.equal(await servedSubject(signedPort, 'signed.test'), 'signed.test');
    assert.equal(await servedSubject(signedPort, 'other.test'), 'fallback.test');

    const unsigned = await startApp(['--https', `127.0.0.1:0,${def.cert},${def.key}`]);
    cleanups.push(() => unsigned.app.close());
    const plainAgent = announce({
      server: `127.0.0.1:${unsigned.subscriptionPort}`,
      key: 'signed.test',
      address,
      proto: 'http',
      intervalMs: 60_000,
      extra,
    });
    cleanups.push(() => plainAgent.close());
    await waitFor(() => unsigned.app.registry.get('signed.test'), 3000, 'the unsigned subscription');
    assert.equal(unsigned.app.sni.refused, 1);
    assert.equal(unsigned.app.router.certificates.find('signed.test'), undefined);
    const unsignedPort = unsigned.app.router.httpsAddresses()[0]!.port;
    assert.equal(await servedSubject(unsignedPort, 'signed.test'), 'fallback.test');
  });
});
