import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { REAPER_SCRIPT, SpawnReaper } from '../src/spawn-reaper.js';

const logger = pino({ level: 'silent' });

/** The process exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(poll, 20);
    };
    poll();
  });
}

interface Group {
  readonly leader: ChildProcess;
  /** pgid = the leader's pid. */
  readonly pgid: number;
  /** The background process the leader started (same group). */
  readonly member: number;
}

/** A detached `sh` (its own group) that starts a background `sleep` and waits; `prelude` runs first. */
async function startGroup(prelude = ''): Promise<Group> {
  const leader = spawn('/bin/sh', ['-c', `${prelude} sleep 30 & echo $!; wait`], {
    detached: true,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const member = await new Promise<number>((resolve, reject) => {
    leader.stdout!.once('data', (c: Buffer) => resolve(Number(c.toString().trim())));
    leader.once('error', reject);
  });
  return { leader, pgid: leader.pid!, member };
}

describe('spawn reaper', () => {
  const groups: Group[] = [];
  const dirs: string[] = [];
  after(() => {
    for (const g of groups) {
      try {
        process.kill(-g.pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  test('at the end of its input the script stops recorded groups, SIGKILLs those ignoring SIGTERM and spares forgotten ones', async () => {
    const plain = await startGroup();
    const stubborn = await startGroup("trap '' TERM;");
    const forgotten = await startGroup();
    groups.push(plain, stubborn, forgotten);
    const reaper = spawn('/bin/sh', ['-c', REAPER_SCRIPT, 'reaper', '1'], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    const reaperExit = new Promise<void>((resolve) => reaper.once('exit', () => resolve()));
    // Malformed lines and ids ≤ 1 are ignored (-1 / -0 would be "every process" / "own group").
    reaper.stdin!.end(
      `+${plain.pgid}\n+${stubborn.pgid}\n+${forgotten.pgid}\n+1\n+0\n+x\n\n-${forgotten.pgid}\n-${plain.pgid}\n+${plain.pgid}\n`,
    );
    const started = Date.now();
    await until(() => !alive(plain.pgid) && !alive(plain.member), 3000, 'the plain group gone');
    assert.ok(alive(stubborn.member), 'a process ignoring SIGTERM lives through the grace');
    await until(() => !alive(stubborn.pgid) && !alive(stubborn.member), 5000, 'the stubborn group gone');
    assert.ok(Date.now() - started >= 900, 'SIGKILL comes only after the grace');
    await reaperExit;
    assert.ok(alive(forgotten.pgid) && alive(forgotten.member), 'a forgotten group is never signalled');
  });

  test('forgets a released group only once its last member has exited, and close() leaves no reaper', async () => {
    // A stand-in shell that records what switchyard writes to the reaper.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-reaper-'));
    dirs.push(dir);
    const record = path.join(dir, 'lines');
    const shell = path.join(dir, 'recording-sh');
    writeFileSync(shell, `#!/bin/sh\nexec cat > ${record}\n`);
    chmodSync(shell, 0o755);
    const reaper = new SpawnReaper({ logger, shell, probeMs: 20 });
    reaper.start();
    const pid = reaper.pid!;
    assert.ok(alive(pid));
    const group = await startGroup();
    groups.push(group);
    reaper.track(group.pgid);
    group.leader.kill('SIGKILL'); // the leader dies, its background member lives on
    await new Promise((resolve) => group.leader.once('exit', resolve));
    reaper.release(group.pgid);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(readFileSync(record, 'utf8'), `+${group.pgid}\n`, 'not forgotten while a member lives');
    process.kill(group.member, 'SIGKILL');
    // A zombie still counts as a member until init reaps it, which may take a while.
    await until(() => !groupExists(group.pgid), 8000, 'the group gone');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await reaper.close();
    await reaper.close();
    assert.equal(alive(pid), false);
    assert.deepEqual(readFileSync(record, 'utf8').split('\n'), [`+${group.pgid}`, `-${group.pgid}`, '']);
  });

  test('a released group that still has members at close() is stopped by the reaper', async () => {
    const reaper = new SpawnReaper({ logger, graceSeconds: 1 });
    reaper.start();
    const pid = reaper.pid!;
    const group = await startGroup();
    groups.push(group);
    reaper.track(group.pgid);
    group.leader.kill('SIGKILL');
    await new Promise((resolve) => group.leader.once('exit', resolve));
    reaper.release(group.pgid);
    await reaper.close();
    assert.equal(alive(pid), false);
    await until(() => !alive(group.member), 3000, 'the leftover member gone');
  });

  test('a reaper that cannot start is logged, and tracking and close() still work', async () => {
    const lines: string[] = [];
    const recording = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const reaper = new SpawnReaper({ logger: recording, shell: '/nonexistent/sh' });
    reaper.start();
    reaper.track(123_456);
    reaper.release(123_456);
    await until(() => lines.length > 0, 3000, 'the error log');
    await reaper.close();
    await reaper.close();
    const entry = JSON.parse(lines[0]!) as { level: number; component: string };
    assert.equal(entry.level, 50);
    assert.equal(entry.component, 'spawn-reaper');
    assert.equal(reaper.pid, undefined);
  });
});
