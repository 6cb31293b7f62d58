/**
 * Embedded mode (`--spawn`) when switchyard dies without stopping its workers: SIGKILL of the CLI must
 * not leave the workers, nor the processes they started, running (regression: they kept their ports
 * forever). Node workers only, so it needs no uWSGI.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { EPHEMERAL_LISTENERS, get, processAlive, type RunningCli, readyPort, runCli, waitFor } from './support.js';

/** Children of `parent` whose command line mentions `marker` (Linux /proc). */
function childrenMatching(parent: number, marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1];
      if (Number(ppid) !== parent) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) found.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return found;
}

describe('embedded mode (--spawn) when switchyard is killed', () => {
  const leftovers: number[] = [];
  const clis: RunningCli[] = [];
  after(() => {
    for (const run of clis) if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    for (const pid of leftovers) {
      if (!processAlive(pid)) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  });

  test('SIGKILL of switchyard stops every spawned worker and the processes it forked within 10 s', async () => {
    // The worker is `sh` itself (no exec): the HTTP server is its child, i.e. switchyard's grandchild.
    const script =
      "require('http').createServer((q,s)=>s.end(process.pid+' '+process.ppid)).listen(process.env.PORT,'127.0.0.1')";
    const run = runCli([
      ...EPHEMERAL_LISTENERS,
      '--spawn',
      `"${process.execPath}" -e "${script}" & wait`,
      '--processes',
      '2',
    ]);
    clis.push(run);
    const port = await readyPort(run);
    const servers = new Map<number, number>(); // grandchild pid → worker (sh) pid
    await waitFor(
      async () => {
        const reply = await get(port, `app${servers.size}.test`);
        assert.equal(reply.status, 200);
        const [pid, ppid] = reply.text.split(' ').map(Number);
        servers.set(pid!, ppid!);
        return servers.size === 2 ? true : undefined;
      },
      10_000,
      'answers from both workers',
    );
    const pids = [...servers.keys(), ...servers.values()];
    leftovers.push(...pids);
    assert.equal(new Set(pids).size, 4, `two workers, each with its own server process: ${pids.join(' ')}`);
    assert.ok(
      [...servers.values()].every((worker) => childrenMatching(run.child.pid!, '').includes(worker)),
      'the workers are switchyard children',
    );
    const reapers = childrenMatching(run.child.pid!, 'switchyard-reaper');
    leftovers.push(...reapers);

    run.child.kill('SIGKILL');
    await run.exit;
    await waitFor(
      () => (pids.every((pid) => !processAlive(pid)) ? true : undefined),
      10_000,
      `workers and their children gone (alive: ${pids.filter(processAlive).join(' ')})`,
    );
    await waitFor(() => (reapers.every((pid) => !processAlive(pid)) ? true : undefined), 10_000, 'the reaper gone');
  });
});
