/**
 * uWSGI-compatibility features end to end with real uWSGI processes: mountpoint and fallback-key routing
 * of subscribed nodes, and embedded mode (`--spawn`) running real uWSGI workers on unix sockets and Node
 * workers on TCP ports, through the CLI as a user runs it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  EPHEMERAL_LISTENERS,
  get,
  processAlive,
  readyPort,
  runCli,
  SKIP_UWSGI,
  startApp,
  startUwsgiNode,
  waitFor,
} from './support.js';

describe('uWSGI compatibility end to end', { skip: SKIP_UWSGI }, () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('routes host/segment subscriptions by path and unknown hosts to the fallback key', async () => {
    const { app, httpPort, subscriptionPort } = await startApp([
      '--subscription-mountpoints',
      '--http-fallback-key',
      'MP.test',
    ]);
    cleanups.push(() => app.close());
    const site = await startUwsgiNode('site', () => ['--subscribe-to', `127.0.0.1:${subscriptionPort}:mp.test`]);
    cleanups.push(() => site.stop());
    const api = await startUwsgiNode('api', (port) => [
      '--subscribe2',
      `server=127.0.0.1:${subscriptionPort},key=mp.test/api,addr=127.0.0.1:${port}`,
    ]);
    cleanups.push(() => api.stop());
    await waitFor(
      () => (app.registry.get('mp.test/api') && app.registry.get('mp.test') ? true : undefined),
      15_000,
      'subs',
    );
    const nodeOf = async (host: string, target: string) => {
      const reply = await waitFor(
        async () => {
          const r = await get(httpPort, host, target);
          return r.status === 200 ? r : undefined;
        },
        5_000,
        `${host}${target}`,
      );
      const environ = JSON.parse(reply.text) as { NODE: string; PATH_INFO: string };
      return `${environ.NODE} ${environ.PATH_INFO}`;
    };
    assert.equal(await nodeOf('mp.test', '/api/users?x=1'), 'api /api/users');
    assert.equal(await nodeOf('mp.test', '/web'), 'site /web');
    assert.equal(await nodeOf('mp.test:8080', '/api'), 'api /api');
    assert.equal(await nodeOf('unknown.test', '/api'), 'site /api');
  });

  test('a real uWSGI node subscribes through a UNIX datagram subscription socket (--subscribe-to /path:key)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-unix-sub-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const socketPath = path.join(dir, 'sub.sock');
    const { app, httpPort } = await startApp(['--subscription-server', socketPath]);
    cleanups.push(() => app.close());
    assert.deepEqual(app.subscriptions?.unixPaths(), [socketPath]);
    const node = await startUwsgiNode('unix-sub', () => ['--subscribe-to', `${socketPath}:unixsub.test`]);
    cleanups.push(() => node.stop());
    const reply = await waitFor(
      async () => {
        const r = await get(httpPort, 'unixsub.test', '/via-unix');
        return r.status === 200 ? r : undefined;
      },
      15_000,
      'the node subscribed over the UNIX socket',
    );
    assert.equal((JSON.parse(reply.text) as Record<string, string>).PATH_INFO, '/via-unix');
  });

  test('--spawn runs real uWSGI workers on unix sockets, balances over them and stops them on SIGTERM', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-spawn-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(
      path.join(dir, 'app.py'),
      `import json, os
def application(env, start_response):
    body = json.dumps({'worker': os.environ.get('SWITCHYARD_WORKER'), 'pid': os.getpid(), 'path': env['PATH_INFO']}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
`,
    );
    const command = `exec uwsgi --plugin python3 --socket {socket} --wsgi-file ${dir}/app.py --master --die-on-term --processes 1 --logto ${dir}/worker-{worker}.log`;
    const run = runCli([...EPHEMERAL_LISTENERS, '--spawn', command, '--processes', '2', '--shutdown-timeout', '5']);
    cleanups.push(() => {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    });
    const port = await readyPort(run);
    const seen = new Map<string, number>();
    for (let i = 0; i < 6; i++) {
      const reply = await get(port, `any${i}.test`, '/hello');
      assert.equal(reply.status, 200);
      const body = JSON.parse(reply.text) as { worker: string; pid: number; path: string };
      assert.equal(body.path, '/hello');
      seen.set(body.worker, body.pid);
    }
    assert.deepEqual([...seen.keys()].sort(), ['0', '1']);
    run.child.kill('SIGTERM');
    assert.equal(await run.exit, 0);
    await waitFor(
      () => ([...seen.values()].every((pid) => !processAlive(pid)) ? true : undefined),
      5_000,
      'workers gone',
    );
  });

  test('--spawn with {port} and --spawn-key serves one host from Node workers', async () => {
    const script =
      "require('http').createServer((q,s)=>s.end('worker '+process.env.SWITCHYARD_WORKER+' port '+process.env.PORT)).listen({port},'127.0.0.1')";
    const run = runCli([
      ...EPHEMERAL_LISTENERS,
      '--spawn',
      `exec "${process.execPath}" -e "${script}"`,
      '--processes',
      '2',
      '--spawn-key',
      'App.Test',
    ]);
    cleanups.push(() => {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    });
    const port = await readyPort(run);
    const texts = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const reply = await get(port, 'app.test');
      assert.equal(reply.status, 200);
      texts.add(reply.text.split(' ').slice(0, 2).join(' '));
    }
    assert.deepEqual([...texts].sort(), ['worker 0', 'worker 1']);
    const other = await get(port, 'other.test');
    assert.equal(other.headers['x-switchyard-error'], 'SY_NO_VHOST');
    run.child.kill('SIGTERM');
    assert.equal(await run.exit, 0);
  });
});
