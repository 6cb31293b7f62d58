import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { RestartBackoff } from '../src/restart-backoff.js';
import type { SpawnConfig } from '../src/uwsgi-compat-options.js';
import { type Scheduler, type WorkerEndpoint, WorkerSpawner } from '../src/worker-spawner.js';

const logger = pino({ level: 'silent' });

/** A scheduler that only records delays; the test fires the callbacks. */
function manualScheduler(): Scheduler & { delays: number[]; fire(): void } {
  const pending: (() => void)[] = [];
  const delays: number[] = [];
  return {
    delays,
    setTimeout(callback, ms) {
      delays.push(ms);
      pending.push(callback);
      return pending.length;
    },
    clearTimeout() {},
    fire() {
      pending.shift()?.();
    },
  };
}

function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

function get(worker: WorkerEndpoint): Promise<string> {
  const t = worker.target;
  assert.equal(t.kind, 'tcp');
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: t.kind === 'tcp' ? t.port : 0, agent: false }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      })
      .on('error', reject);
  });
}

describe('restart backoff', () => {
  test('doubles from 100 ms to a 10 s cap and starts over after 30 s of healthy run', () => {
    const backoff = new RestartBackoff();
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) delays.push(backoff.next(0, 10));
    assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
    assert.equal(backoff.next(1000, 1000 + 29_999), 10_000);
    assert.equal(backoff.next(1000, 1000 + 30_000), 100);
    assert.equal(backoff.next(0, 5), 200);
  });
});

describe('worker spawner (--spawn)', () => {
  const spawners: WorkerSpawner[] = [];
  after(async () => {
    for (const s of spawners) await s.close();
  });

  test('restarts a crashing worker with growing delays and resets them after a healthy run', async () => {
    let now = 1_000_000;
    const scheduler = manualScheduler();
    const config: SpawnConfig = {
      command: 'exit 3 # {socket}',
      processes: 1,
      key: undefined,
      protocol: 'uwsgi',
      transport: 'unix',
    };
    const spawner = new WorkerSpawner({
      config,
      logger,
      clock: () => now,
      scheduler,
      onReady: () => assert.fail('a worker that exits is never ready'),
      onGone: () => undefined,
      stdio: 'ignore',
    });
    spawners.push(spawner);
    await spawner.start();
    await until(() => scheduler.delays.length === 1, 5000, 'the first crash');
    for (let crash = 2; crash <= 4; crash++) {
      scheduler.fire();
      await until(() => scheduler.delays.length === crash, 5000, `crash ${crash}`);
    }
    assert.deepEqual(scheduler.delays, [100, 200, 400, 800]);
    // This run "lasts" 30 s on the injected clock: the next delay starts over.
    scheduler.fire();
    now += 30_000;
    await until(() => scheduler.delays.length === 5, 5000, 'the crash after a healthy run');
    assert.equal(scheduler.delays[4], 100);
    assert.deepEqual(spawner.restartCounts(), [5]);
  });

  test('routes to N workers with their own ports, replaces a killed one and stops them all on close', async () => {
    const ready: WorkerEndpoint[] = [];
    const gone: WorkerEndpoint[] = [];
    const script =
      "process.on('SIGTERM',()=>{});require('http').createServer((q,s)=>s.end(process.env.SWITCHYARD_WORKER+':'+process.pid+':'+process.env.PORT)).listen({port},'127.0.0.1')";
    const spawner = new WorkerSpawner({
      config: {
        command: `exec "${process.execPath}" -e "${script}"`,
        processes: 2,
        key: undefined,
        protocol: 'http',
        transport: 'tcp',
      },
      logger,
      onReady: (w) => ready.push(w),
      onGone: (w) => gone.push(w),
      graceMs: 300,
      stdio: 'ignore',
    });
    spawners.push(spawner);
    await spawner.start();
    assert.equal(ready.length, 2);
    const answers = await Promise.all(ready.map(get));
    assert.deepEqual(answers.map((a) => a.split(':')[0]).sort(), ['0', '1']);
    for (let i = 0; i < 2; i++) {
      const [, pid, port] = answers[i]!.split(':');
      assert.equal(Number(pid), ready[i]!.pid);
      assert.equal(`127.0.0.1:${port}`, ready[i]!.address);
    }

    const victim = ready[0]!;
    process.kill(victim.pid, 'SIGKILL');
    await until(() => ready.length === 3, 5000, 'the replacement worker');
    assert.deepEqual(
      gone.map((w) => w.pid),
      [victim.pid],
    );
    const replacement = ready[2]!;
    assert.equal(replacement.index, victim.index);
    assert.notEqual(replacement.pid, victim.pid);
    assert.equal((await get(replacement)).split(':')[0], String(victim.index));

    // The workers ignore SIGTERM: close() must SIGKILL them after the grace.
    const started = Date.now();
    await spawner.close();
    const took = Date.now() - started;
    assert.ok(took >= 250 && took < 5000, `close took ${took} ms`);
    assert.equal(gone.length, 3);
    await assert.rejects(get(replacement));
  });
});

describe('worker spawner without its reaper', () => {
  test('serves and stops its workers when the reaper cannot start, and logs that', async () => {
    const lines: string[] = [];
    const recording = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const ready: WorkerEndpoint[] = [];
    const script = "require('http').createServer((q,s)=>s.end('up')).listen({port},'127.0.0.1')";
    const spawner = new WorkerSpawner({
      config: {
        command: `exec "${process.execPath}" -e "${script}"`,
        processes: 1,
        key: undefined,
        protocol: 'http',
        transport: 'tcp',
      },
      logger: recording,
      onReady: (w) => ready.push(w),
      onGone: () => undefined,
      stdio: 'ignore',
      reaper: { shell: '/nonexistent/sh' },
    });
    try {
      await spawner.start();
      assert.equal(await get(ready[0]!), 'up');
      await until(() => lines.length > 0, 5000, 'the reaper error');
      const entry = JSON.parse(lines[0]!) as { level: number; component: string };
      assert.deepEqual([entry.level, entry.component], [50, 'spawn-reaper']);
    } finally {
      await spawner.close();
    }
    await assert.rejects(get(ready[0]!));
  });
});
