/**
 * `--subscription-server off` and `--admin off`: a static router (uWSGI `--http-to` style) without the
 * listeners it did not ask for. Loopback only, port 0 everywhere; "nothing bound" is checked through the
 * app's own accessors and the process's active handles (UDP sockets, TCP servers), never fixed ports.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { helpText, parseCli } from '../src/cli-options.js';
import { SwitchyardApp } from '../src/switchyard-app.js';

const isBadOption = (option: string) => (err: unknown) =>
  (err as { code?: string }).code === 'SY_BAD_OPTION' && (err as { option?: string }).option === option;

function config(argv: string[]) {
  const parsed = parseCli(argv);
  return parsed.kind === 'run' ? parsed.config : assert.fail('not a run');
}

/** How many handles of `kind` (e.g. UDPWRAP, TCPServerWrap) this process holds. */
function handles(kind: string): number {
  return process.getActiveResourcesInfo().filter((r) => r === kind).length;
}

function get(
  port: number,
  pathname = '/',
  method = 'GET',
  body?: string,
  host = 'static.test',
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: pathname,
        method,
        headers: { host, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('optional listeners: --subscription-server off and --admin off', () => {
  let backend: http.Server;
  let backendPort = 0;
  before(async () => {
    backend = http.createServer((_req, res) => res.end('from the static node'));
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    backendPort = (backend.address() as net.AddressInfo).port;
  });
  after(() => backend.close());

  test('off and none turn each listener off; the defaults stay on', () => {
    for (const off of ['off', 'none']) {
      const c = config(['--subscription-server', off, '--admin', off]);
      assert.deepEqual(c.subscriptionServer, []);
      assert.equal(c.admin, undefined);
    }
    assert.deepEqual(config(['--http-subscription-server', 'off']).subscriptionServer, []);
    const defaults = config(['--http-to', '127.0.0.1:3031']);
    assert.deepEqual(defaults.subscriptionServer, ['127.0.0.1:2626']);
    assert.equal(defaults.admin, '127.0.0.1:9090');
  });

  test('bad values and off mixed with addresses are SY_BAD_OPTION naming the option', () => {
    assert.throws(() => parseCli(['--subscription-server', 'offf']), isBadOption('--subscription-server'));
    assert.throws(
      () => parseCli(['--subscription-server', 'off', '--subscription-server', '127.0.0.1:0']),
      isBadOption('--subscription-server'),
    );
    assert.throws(() => parseCli(['--admin', 'nope']), isBadOption('--admin'));
    assert.throws(() => parseCli(['--admin', 'OFF']), isBadOption('--admin'));
  });

  test('--help lists the off value of both options', () => {
    const help = helpText().split('\n');
    for (const flag of ['--subscription-server ADDR|off', '--admin ADDR|off']) {
      const line = help.find((l) => l.trimStart().startsWith(flag));
      assert.ok(line?.includes('off (or none)'), `${flag} documents off`);
    }
  });

  test('with both off the app binds only its HTTP listener, serves a static --http-to node and closes cleanly', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const parsed = parseCli([
      '--http',
      '127.0.0.1:0',
      '--http-to',
      `http://127.0.0.1:${backendPort}`,
      '--subscription-server',
      'off',
      '--admin',
      'off',
    ]);
    assert.ok(parsed.kind === 'run');
    const udpBefore = handles('UDPWRAP');
    const tcpBefore = handles('TCPServerWrap');
    const app = new SwitchyardApp({ config: parsed.config, logger });
    await app.start();
    try {
      assert.equal(app.subscriptions, undefined);
      assert.equal(app.admin, undefined);
      assert.deepEqual(app.subscriptionAddresses(), []);
      assert.equal(app.adminAddress(), undefined);
      assert.equal(handles('UDPWRAP'), udpBefore, 'no UDP socket');
      assert.equal(handles('TCPServerWrap'), tcpBefore + 1, 'one TCP listener: HTTP');
      const ready = lines.find((l) => l.msg === 'switchyard ready');
      assert.deepEqual(ready?.subscriptionServer, []);
      assert.equal(ready?.admin, undefined);
      const reply = await get(app.router.addresses()[0]!.port);
      assert.equal(reply.status, 200);
      assert.equal(reply.text, 'from the static node');
    } finally {
      await app.close();
      await app.close();
    }
    // A closed server's handle goes at the next loop turn: bounded wait, then assert.
    for (let i = 0; i < 100 && handles('TCPServerWrap') !== tcpBefore; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(handles('TCPServerWrap'), tcpBefore);
  });

  test('with the subscription server off the admin API still adds nodes and /metrics has no packet counters', async () => {
    const parsed = parseCli(['--http', '127.0.0.1:0', '--subscription-server', 'off', '--admin', '127.0.0.1:0']);
    assert.ok(parsed.kind === 'run');
    const udpBefore = handles('UDPWRAP');
    const app = new SwitchyardApp({ config: parsed.config, logger: pino({ level: 'silent' }) });
    await app.start();
    try {
      assert.equal(handles('UDPWRAP'), udpBefore, 'no UDP socket');
      const adminPort = app.adminAddress()!.port;
      const added = await get(
        adminPort,
        '/v1/vhosts/static.test/nodes',
        'POST',
        JSON.stringify({ address: `127.0.0.1:${backendPort}`, protocol: 'http' }),
        `127.0.0.1:${adminPort}`,
      );
      assert.equal(added.status, 201);
      const reply = await get(app.router.addresses()[0]!.port);
      assert.equal(reply.text, 'from the static node');
      const metrics = await get(adminPort, '/metrics', 'GET', undefined, `127.0.0.1:${adminPort}`);
      assert.match(metrics.text, /switchyard_registry_nodes/);
      assert.doesNotMatch(metrics.text, /switchyard_subscription_packets_total/);
      const stats = JSON.parse(
        (await get(adminPort, '/v1/stats', 'GET', undefined, `127.0.0.1:${adminPort}`)).text,
      ) as Record<string, unknown>;
      assert.equal(stats.subscriptions, undefined);
    } finally {
      await app.close();
    }
  });

  test('the uWSGI stats server lists no subscription server when it is off', async () => {
    const parsed = parseCli([
      '--http',
      '127.0.0.1:0',
      '--subscription-server',
      'off',
      '--admin',
      'off',
      '--http-stats',
      '127.0.0.1:0',
    ]);
    assert.ok(parsed.kind === 'run');
    const app = new SwitchyardApp({ config: parsed.config, logger: pino({ level: 'silent' }) });
    await app.start();
    try {
      const port = app.compat.stats!.address()!.port;
      const text = await new Promise<string>((resolve, reject) => {
        let out = '';
        const socket = net.connect(port, '127.0.0.1');
        socket.setEncoding('utf8');
        socket.on('data', (c: string) => (out += c));
        socket.on('end', () => resolve(out));
        socket.on('error', reject);
      });
      const doc = JSON.parse(text) as { http: string[] };
      const httpPort = app.router.addresses()[0]!.port;
      assert.deepEqual(doc.http, [`127.0.0.1:${httpPort}`]);
    } finally {
      await app.close();
    }
  });
});
