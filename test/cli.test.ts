import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { CLI, get, waitFor } from './support.js';

interface Running {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: string[];
  readonly exit: Promise<number | null>;
}

function run(args: string[]): Running {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  const collect = (chunk: Buffer): void => {
    partial += chunk.toString();
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, lines, exit };
}

async function runToEnd(args: string[]): Promise<{ code: number | null; output: string }> {
  const r = run(args);
  const code = await r.exit;
  await new Promise((resolve) => setImmediate(resolve));
  return { code, output: r.lines.join('\n') };
}

describe('the switchyard CLI as a user runs it', () => {
  const children: Running[] = [];
  after(() => {
    for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGKILL');
  });

  test('routes through a node announced by `switchyard agent` and exits 0 on SIGTERM', async () => {
    const router = run(['--http', '127.0.0.1:0', '--subscription-server', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
    children.push(router);
    const ready = await waitFor(
      () => {
        for (const line of router.lines) {
          if (!line.startsWith('{')) continue;
          const entry = JSON.parse(line) as {
            msg?: string;
            http?: string[];
            subscriptionServer?: string[];
            admin?: string;
          };
          if (entry.msg === 'switchyard ready') return entry;
        }
        return undefined;
      },
      10_000,
      'the router to start',
    );
    const httpPort = Number(ready.http![0]!.split(':').at(-1));
    const subscription = ready.subscriptionServer![0]!;
    const adminPort = Number(ready.admin!.split(':').at(-1));

    const backend = http.createServer((_req, res) => res.end('from backend'));
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const backendPort = (backend.address() as net.AddressInfo).port;
    const agent = run([
      'agent',
      '--subscribe-to',
      `${subscription}:cli.test`,
      '--address',
      `127.0.0.1:${backendPort}`,
      '--proto',
      'http',
    ]);
    children.push(agent);

    const reply = await waitFor(
      async () => {
        const r = await get(httpPort, 'cli.test');
        return r.status === 200 ? r : undefined;
      },
      10_000,
      'the agent-announced node',
    );
    assert.equal(reply.text, 'from backend');
    assert.equal((await get(adminPort, 'admin', '/readyz')).status, 200);
    const vhosts = JSON.parse((await get(adminPort, 'admin', '/v1/vhosts')).text) as {
      hosts: { host: string; nodes: { address: string; protocol: string }[] }[];
    };
    assert.deepEqual(
      vhosts.hosts.map((h) => [h.host, h.nodes[0]!.address, h.nodes[0]!.protocol]),
      [['cli.test', `127.0.0.1:${backendPort}`, 'http']],
    );

    agent.child.kill('SIGTERM');
    assert.equal(await agent.exit, 0);
    await waitFor(
      async () => ((await get(httpPort, 'cli.test')).status === 404 ? true : undefined),
      5_000,
      'the node to leave',
    );

    router.child.kill('SIGTERM');
    assert.equal(await router.exit, 0);
    backend.close();
  });

  test('refuses an unknown option with one line naming it and exit code 2', async () => {
    const { code, output } = await runToEnd(['--bogus']);
    assert.equal(code, 2);
    assert.equal(output.trim().split('\n').length, 1);
    assert.match(output, /--bogus/);
  });

  test('refuses a malformed address with exit code 2 naming the option', async () => {
    const { code, output } = await runToEnd(['--http', 'nonsense']);
    assert.equal(code, 2);
    assert.match(output, /--http/);
  });

  test('exits 2 with one line when the HTTP address is already in use, leaving nothing bound', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as net.AddressInfo).port;
    const { code, output } = await runToEnd([
      '--http',
      `127.0.0.1:${port}`,
      '--subscription-server',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
    ]);
    busy.close();
    assert.equal(code, 2);
    assert.match(output, /--http/);
    assert.match(output, /EADDRINUSE/);
  });

  test('lists every option with its default in --help', async () => {
    const { code, output } = await runToEnd(['--help']);
    assert.equal(code, 0);
    for (const option of ['--http ADDR', '--subscription-server', '--http-to', '--subscription-tolerance', '--admin']) {
      assert.ok(output.includes(option), option);
    }
    assert.match(output, /default: 0\.0\.0\.0:8080/);
    assert.match(output, /default: 127\.0\.0\.1:2626/);
    assert.match(output, /default: 17/);
    assert.match(output, /default: 127\.0\.0\.1:9090/);
  });
});
