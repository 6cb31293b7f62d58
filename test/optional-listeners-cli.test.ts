/**
 * `switchyard --subscription-server off --admin off` as a user runs it: a static router with `--workers 2`
 * (the primary owns no subscription socket and no admin API) serves its `--http-to` node and exits 0 on
 * SIGTERM. Loopback only, port 0 everywhere.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, describe, test } from 'node:test';
import { get, type RunningCli, readyPort, runCli } from './support.js';

describe('the switchyard CLI without optional listeners', () => {
  const runs: RunningCli[] = [];
  const backend = http.createServer((_req, res) => res.end('from the static node'));
  after(() => {
    for (const r of runs) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    backend.close();
  });

  test('--subscription-server off --admin off with --workers 2 serves a static node and exits 0 on SIGTERM', async () => {
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const backendPort = (backend.address() as net.AddressInfo).port;
    const run = runCli([
      '--http',
      '127.0.0.1:0',
      '--http-to',
      `http://127.0.0.1:${backendPort}`,
      '--subscription-server',
      'off',
      '--admin',
      'none',
      '--workers',
      '2',
    ]);
    runs.push(run);
    const port = await readyPort(run);
    const ready = JSON.parse(run.lines.find((l) => l.includes('"switchyard ready"'))!) as Record<string, unknown>;
    assert.equal(ready.workers, 2);
    assert.deepEqual(ready.subscriptionServer, []);
    assert.equal(ready.admin, undefined);
    for (let i = 0; i < 4; i++) {
      const reply = await get(port, 'any.test');
      assert.equal(reply.status, 200);
      assert.equal(reply.text, 'from the static node');
    }
    run.child.kill('SIGTERM');
    assert.equal(await run.exit, 0);
  });

  test('a bad --admin value exits 2 with SY_BAD_OPTION before anything is bound', async () => {
    const run = runCli(['--http', '127.0.0.1:0', '--admin', 'nowhere']);
    runs.push(run);
    assert.equal(await run.exit, 2);
    assert.ok(run.lines.some((l) => l.includes('--admin')));
  });
});
