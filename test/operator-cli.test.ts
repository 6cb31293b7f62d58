import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseCli } from 'switchyard';
import { CLI, get, startApp } from './support.js';

const TOKEN = 'cli-admin-token-0123456789';

function adminCall(port: number, method: string, pathname: string, token?: string, body?: unknown) {
  return new Promise<{ status: number; body: { error?: { code: string } } }>((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const req = http.request({ host: '127.0.0.1', port, method, path: pathname, headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? {} : JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

test('an admin listener on a non-loopback address without a token is refused at startup (exit 2, one line)', () => {
  const result = spawnSync(
    process.execPath,
    [CLI, '--http', '127.0.0.1:0', '--subscription-server', '127.0.0.1:0', '--admin', '0.0.0.0:0'],
    { encoding: 'utf8', timeout: 10_000 },
  );
  assert.equal(result.status, 2);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /--admin-token/);
  assert.throws(() => parseCli(['--admin', '0.0.0.0:9090']), { code: 'SY_BAD_OPTION', option: '--admin' });
  assert.equal(parseCli(['--admin', '0.0.0.0:9090', '--admin-token', TOKEN]).kind, 'run');
  assert.throws(() => parseCli(['--admin-token', 'short']), { code: 'SY_BAD_OPTION', option: '--admin-token' });
  assert.throws(() => parseCli(['--access-log-sample', '1.5']), { code: 'SY_BAD_OPTION' });
  assert.throws(() => parseCli(['--admin-token-file', '/nonexistent/token']), { code: 'SY_BAD_OPTION' });
});

test('--help lists the operator options with their defaults', () => {
  const result = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(result.status, 0);
  for (const option of [
    '--admin-token ',
    '--admin-token-file',
    '--admin-read-token',
    '--metrics-top-hosts',
    '--access-log ',
    '--access-log-sample',
    '--events-buffer',
  ]) {
    assert.ok(result.stdout.includes(option), option);
  }
  assert.match(result.stdout, /--metrics-top-hosts N.*\(default: 20\)/);
  assert.match(result.stdout, /--access-log FILE\|stdout\|off.*\(default: off\)/);
});

test('tokens from files guard the admin API; the access log gets a line per request and is flushed on close', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-operator-'));
  const tokenFile = path.join(dir, 'admin.token');
  const logFile = path.join(dir, 'access.log');
  writeFileSync(tokenFile, `${TOKEN}\n`);
  const { app, httpPort, adminPort } = await startApp([
    '--admin-token-file',
    tokenFile,
    '--access-log',
    logFile,
    '--metrics-top-hosts',
    '5',
  ]);
  try {
    assert.equal((await adminCall(adminPort, 'GET', '/v1/vhosts')).status, 401);
    assert.equal((await adminCall(adminPort, 'GET', '/v1/vhosts', TOKEN)).status, 200);
    assert.equal((await get(httpPort, 'nobody.test', '/x')).status, 404);
    const stats = await adminCall(adminPort, 'GET', '/v1/stats', TOKEN);
    assert.equal((stats.body as { accessLog: { written: number } }).accessLog.written, 1);
  } finally {
    await app.close();
  }
  const lines = readFileSync(logFile, 'utf8').trim().split('\n');
  assert.equal(lines.length, 1);
  assert.equal(JSON.parse(lines[0]!).code, 'SY_NO_VHOST');
  rmSync(dir, { recursive: true, force: true });
});
