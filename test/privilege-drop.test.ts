/**
 * `--uid`/`--gid` end to end: the CLI started as root binds everything, then runs as `nobody` (primary,
 * `--workers` workers, a restarted worker and `--spawn` apps), and still serves; a CLI that is not root
 * asking for other ids exits 2. Ids are read from /proc/<pid>/status. Needs root and a `nobody` user
 * (skipped otherwise); loopback only, port 0 everywhere.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CLI, EPHEMERAL_LISTENERS, get, type RunningCli, readyPort, runCli, waitFor } from './support.js';

interface Ids {
  readonly name: string;
  readonly ppid: number;
  /** Real, effective, saved and filesystem ids. */
  readonly uid: number[];
  readonly gid: number[];
  readonly groups: number[];
}

/** The ids of a live process, from /proc/<pid>/status; undefined once it is gone. */
function idsOf(pid: number): Ids | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  const numbers = (name: string): number[] => field(name).split(/\s+/).filter(Boolean).map(Number);
  return {
    name: field('Name'),
    ppid: Number(field('PPid')),
    uid: numbers('Uid'),
    gid: numbers('Gid'),
    groups: numbers('Groups'),
  };
}

/** Live child processes of `pid` named `name`. */
function childrenOf(pid: number, name: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((child) => {
      const ids = idsOf(child);
      return ids !== undefined && ids.ppid === pid && ids.name === name;
    });
}

function passwdEntry(name: string): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  const fields = line?.split(':');
  return fields === undefined ? undefined : { uid: Number(fields[2]), gid: Number(fields[3]) };
}

/** The name of group `gid` (nogroup on Debian, nobody elsewhere), or the number when it has none. */
function groupName(gid: number): string {
  const line = readFileSync('/etc/group', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[2] === String(gid));
  return line?.split(':')[0] ?? String(gid);
}

const NOBODY = passwdEntry('nobody');
const SKIP =
  process.getuid?.() !== 0
    ? 'needs root (the CLI must start as root to drop to nobody)'
    : NOBODY === undefined
      ? 'no nobody user in /etc/passwd'
      : false;

function assertRunsAsNobody(pid: number, what: string): void {
  const ids = idsOf(pid);
  assert.ok(ids !== undefined, `${what} (${pid}) is running`);
  assert.deepEqual(ids.uid, [NOBODY!.uid, NOBODY!.uid, NOBODY!.uid, NOBODY!.uid], `${what} uid`);
  assert.deepEqual(ids.gid, [NOBODY!.gid, NOBODY!.gid, NOBODY!.gid, NOBODY!.gid], `${what} gid`);
  assert.deepEqual(ids.groups, [NOBODY!.gid], `${what} supplementary groups`);
}

async function stop(run: RunningCli): Promise<void> {
  if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGTERM');
  assert.equal(await run.exit, 0);
}

describe('--uid and --gid drop root after binding', { skip: SKIP }, () => {
  let backend: http.Server;
  let backendPort: number;
  const runs: RunningCli[] = [];

  before(async () => {
    backend = http.createServer((_req, res) => res.end('backend'));
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    backendPort = (backend.address() as AddressInfo).port;
  });

  after(async () => {
    for (const run of runs) if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    await new Promise<void>((resolve) => backend.close(() => resolve()));
  });

  function start(extra: string[]): RunningCli {
    const run = runCli([
      '--uid',
      'nobody',
      '--gid',
      groupName(NOBODY!.gid),
      ...EPHEMERAL_LISTENERS,
      '--log-level',
      'info',
      ...extra,
    ]);
    runs.push(run);
    return run;
  }

  test('with --workers 2 the primary and both workers run as nobody, serve, and a restarted worker is nobody too', async () => {
    const run = start([
      '--workers',
      '2',
      '--http-stats',
      '127.0.0.1:0',
      '--http-to',
      `http://127.0.0.1:${backendPort}`,
    ]);
    const port = await readyPort(run);
    const ready = JSON.parse(run.lines.find((l) => l.includes('"switchyard ready"'))!) as { uid: number; gid: number };
    assert.deepEqual([ready.uid, ready.gid], [NOBODY!.uid, NOBODY!.gid]);
    const reply = await get(port, 'any.test');
    assert.equal(reply.status, 200);
    assert.equal(reply.text, 'backend');
    const primary = run.child.pid!;
    assertRunsAsNobody(primary, 'primary');
    const workers = childrenOf(primary, 'node');
    assert.equal(workers.length, 2, 'two workers');
    for (const worker of workers) assertRunsAsNobody(worker, 'worker');

    // The unprivileged primary forks the replacement: unprivileged from birth, and it serves.
    process.kill(workers[0]!, 'SIGKILL');
    const replacement = await waitFor(
      () => childrenOf(primary, 'node').find((pid) => !workers.includes(pid)),
      20_000,
      'a replacement worker',
    );
    await waitFor(
      () => (run.lines.filter((l) => l.includes('"worker ready"')).length >= 3 ? true : undefined),
      20_000,
      'the replacement worker ready',
    );
    assertRunsAsNobody(replacement, 'replacement worker');
    for (let i = 0; i < 4; i++) assert.equal((await get(port, 'any.test')).text, 'backend');
    await stop(run);
  });

  test('with --workers 1 the single process runs as nobody and serves', async () => {
    const run = start(['--workers', '1', '--http-to', `http://127.0.0.1:${backendPort}`]);
    const port = await readyPort(run);
    assert.equal((await get(port, 'any.test')).text, 'backend');
    assertRunsAsNobody(run.child.pid!, 'switchyard');
    assert.deepEqual(childrenOf(run.child.pid!, 'node'), []);
    await stop(run);
  });

  test('--spawn apps run as nobody and can bind their unix socket in the spawner directory', async () => {
    const app = `require('http').createServer((q, s) => s.end(process.getuid() + ':' + process.getgid())).listen(process.env.SWITCHYARD_SOCKET)`;
    const run = start([
      '--workers',
      '1',
      '--spawn',
      `exec ${process.execPath} -e "${app}" -- {socket}`,
      '--spawn-protocol',
      'http',
      '--processes',
      '1',
    ]);
    const port = await readyPort(run);
    const reply = await waitFor(
      async () => {
        const r = await get(port, 'any.test');
        return r.status === 200 ? r : undefined;
      },
      20_000,
      'the spawned app',
    );
    assert.equal(reply.text, `${NOBODY!.uid}:${NOBODY!.gid}`);
    assertRunsAsNobody(run.child.pid!, 'switchyard');
    await stop(run);
  });

  test('a CLI that is not root asking for another uid exits 2 with SY_PRIVILEGE_DROP_FAILED and never serves', async () => {
    const child = spawn(
      process.execPath,
      [
        CLI,
        '--uid',
        'root',
        '--http',
        '127.0.0.1:0',
        '--subscription-server',
        'off',
        '--admin',
        'off',
        '--workers',
        '1',
      ],
      { uid: NOBODY!.uid, gid: NOBODY!.gid },
    );
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    assert.equal(code, 2, output);
    assert.doesNotMatch(output, /switchyard ready/);
  });
});
