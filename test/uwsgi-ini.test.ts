/**
 * One uWSGI router ini file, two routers: `uwsgi --ini` and `switchyard --ini` (the CLI, as a user runs
 * it) start from the SAME file; a real uWSGI node subscribes to both; a request through each must reach
 * the node with the same environ (apart from the documented per-router differences).
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { CLI, freePort, SKIP_UWSGI, startUwsgiNode, waitFor } from './support.js';
import { rawExchange, startUwsgiRouter } from './uwsgi-router-support.js';

const INI = `; a uWSGI HTTP router, as an existing fleet has it
[uwsgi]
plugins = corerouter,http
master = true
http = 127.0.0.1:$(ROUTER_PORT)
http-subscription-server = 127.0.0.1:$(SUB_PORT)
subscription-dotsplit = true
http-keepalive = 1
deploy = blue
http-var = DEPLOY=%(deploy)
http-var = INI_NAME=%n
http-timeout = 30

[other]
http = 127.0.0.1:1
`;

interface Running {
  readonly child: ChildProcessWithoutNullStreams;
  readonly stdout: string[];
  readonly stderr: string[];
}

function runCli(args: string[], env: Record<string, string>): Running {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout.on('data', (c: Buffer) => stdout.push(...c.toString().split('\n').filter(Boolean)));
  child.stderr.on('data', (c: Buffer) => stderr.push(...c.toString().split('\n').filter(Boolean)));
  return { child, stdout, stderr };
}

function environOf(body: Buffer): Record<string, string> {
  return JSON.parse(body.toString('utf8')) as Record<string, string>;
}

describe('the same uWSGI ini file run by uwsgi and by switchyard', { skip: SKIP_UWSGI }, () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('routes a dotsplit subdomain to the same node with the same environ', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-ini-e2e-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'router.ini');
    writeFileSync(file, INI);
    const [uPort, uSub, sPort, sSub] = [await freePort(), await freePort(), await freePort(), await freePort()];

    const uwsgi = await startUwsgiRouter(['--ini', file], uPort, {
      env: { ROUTER_PORT: String(uPort), SUB_PORT: String(uSub) },
    });
    cleanups.push(() => uwsgi.stop());
    const sy = runCli(['--ini', file, '--admin', '127.0.0.1:0'], {
      ROUTER_PORT: String(sPort),
      SUB_PORT: String(sSub),
    });
    cleanups.push(() => {
      if (sy.child.exitCode === null) sy.child.kill('SIGKILL');
    });
    await waitFor(() => (sy.stdout.some((l) => l.includes('"switchyard ready"')) ? true : undefined), 10_000, 'ready');
    // plugins, master and http-keepalive are uWSGI options Switchyard does not use: one warning each.
    assert.equal(sy.stderr.filter((l) => l.startsWith('switchyard: warning:')).length, 3, sy.stderr.join('\n'));

    const node = await startUwsgiNode('ini', () => [
      '--subscribe-to',
      `127.0.0.1:${uSub}:.ini.test`,
      '--subscribe-to',
      `127.0.0.1:${sSub}:.ini.test`,
    ]);
    cleanups.push(() => node.stop());
    const request = 'GET /hello?x=1 HTTP/1.1\r\nHost: www.ini.test\r\nConnection: close\r\n\r\n';
    const reach = (port: number) =>
      waitFor(
        async () => {
          const reply = await rawExchange(port, request);
          return reply.status === 200 ? environOf(reply.body) : undefined;
        },
        15_000,
        `a routed request on ${port}`,
      );
    const theirs = await reach(uPort);
    const ours = await reach(sPort);
    assert.equal(ours.DEPLOY, 'blue');
    assert.equal(ours.INI_NAME, 'router');
    const differing = Object.keys({ ...theirs, ...ours })
      .filter((k) => theirs[k] !== ours[k])
      .sort();
    assert.deepEqual(differing, ['HTTP_CONNECTION', 'REMOTE_PORT', 'SERVER_PORT']);

    sy.child.kill('SIGTERM');
    const code = await new Promise((resolve) => sy.child.once('exit', resolve));
    assert.equal(code, 0);
  });
});
