import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { freePort, get, SKIP_UWSGI, startApp, startUwsgiNode, waitFor } from './support.js';
import { readStats, startUwsgiRouter } from './uwsgi-router-support.js';

/** Keys Switchyard adds on purpose: uWSGI master's per-pool `algo` and per-node vassal/backup/proto. */
const MASTER_KEYS = new Set(['algo', 'vassal', 'backup', 'proto']);

/**
 * Compares the shape of two JSON documents: same keys (ours may add MASTER_KEYS), same JSON types,
 * arrays compared element by element against uWSGI's first element. Returns the differences.
 */
function shapeDiff(ours: unknown, theirs: unknown, at = '$'): string[] {
  const kind = (v: unknown) => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v);
  if (kind(ours) !== kind(theirs)) return [`${at}: ${kind(ours)} vs uWSGI ${kind(theirs)}`];
  if (Array.isArray(ours) && Array.isArray(theirs)) {
    if (theirs.length === 0 || ours.length === 0) return ours.length === theirs.length ? [] : [`${at}: length`];
    return ours.flatMap((item, i) => shapeDiff(item, theirs[0], `${at}[${i}]`));
  }
  if (kind(ours) !== 'object') return [];
  const a = ours as Record<string, unknown>;
  const b = theirs as Record<string, unknown>;
  const diffs: string[] = [];
  for (const key of Object.keys(b)) {
    if (!(key in a)) diffs.push(`${at}.${key}: missing`);
    else diffs.push(...shapeDiff(a[key], b[key], `${at}.${key}`));
  }
  for (const key of Object.keys(a)) if (!(key in b) && !MASTER_KEYS.has(key)) diffs.push(`${at}.${key}: extra`);
  return diffs;
}

interface StatsNode {
  name: string;
  requests: number;
  tx: number;
  rx: number;
  cores: number;
  weight: number;
  last_check: number;
  ref: number;
  death_mark: number;
}
interface StatsDoc {
  http: string[];
  static_nodes: { name: string; hits: number }[];
  subscriptions: { key: string; hash: number; hits: number; nodes: StatsNode[] }[];
}

describe('the --http-stats server', { skip: SKIP_UWSGI }, () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test("writes the same JSON shape as uWSGI's router stats server for the same node", async () => {
    const [uPort, uSub, uStats, staticPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const uwsgi = await startUwsgiRouter(
      [
        '--http',
        `127.0.0.1:${uPort}`,
        '--http-subscription-server',
        `127.0.0.1:${uSub}`,
        '--http-stats',
        `127.0.0.1:${uStats}`,
        '--http-to',
        `127.0.0.1:${staticPort}`,
        '--master',
      ],
      uPort,
    );
    cleanups.push(() => uwsgi.stop());
    const { app, httpPort, subscriptionPort } = await startApp([
      '--http-stats',
      '127.0.0.1:0',
      '--http-to',
      `127.0.0.1:${staticPort}`,
    ]);
    cleanups.push(() => app.close());
    const ourStats = app.compat.stats!.address()!.port;
    const node = await startUwsgiNode('stats', () => [
      '--subscribe-to',
      `127.0.0.1:${uSub}:stats.test`,
      '--subscribe-to',
      `127.0.0.1:${subscriptionPort}:stats.test`,
    ]);
    cleanups.push(() => node.stop());
    await waitFor(async () => ((await get(httpPort, 'stats.test')).status === 200 ? true : undefined), 15_000, 'route');
    await waitFor(async () => ((await get(uPort, 'stats.test')).status === 200 ? true : undefined), 15_000, 'uWSGI');

    const theirs = (await readStats(uStats)) as StatsDoc;
    const ours = (await readStats(ourStats)) as StatsDoc;
    assert.deepEqual(shapeDiff(ours, theirs), []);

    const their = theirs.subscriptions.find((p) => p.key === 'stats.test')!;
    const pool = ours.subscriptions.find((p) => p.key === 'stats.test')!;
    assert.equal(pool.hash, their.hash);
    assert.ok(pool.hits >= 1);
    const n = pool.nodes[0]!;
    const t = their.nodes[0]!;
    assert.equal(n.name, t.name);
    assert.equal(n.cores, t.cores);
    assert.equal(n.weight, t.weight);
    assert.ok(Math.abs(n.last_check - t.last_check) <= 12, `last_check ${n.last_check} vs ${t.last_check}`);
    assert.ok(n.requests >= 1 && n.tx > 0 && n.rx > 0, JSON.stringify(n));
    assert.deepEqual([n.ref, n.death_mark], [0, 0]);
    assert.deepEqual(
      ours.static_nodes.map((s) => s.name),
      theirs.static_nodes.map((s) => s.name),
    );
    assert.ok(ours.http.includes(`127.0.0.1:${httpPort}`) && ours.http.includes(`127.0.0.1:${subscriptionPort}`));
  });

  test('counts the bytes of each request both ways and marks a draining node', async () => {
    const { app, httpPort, subscriptionPort } = await startApp(['--http-stats', '127.0.0.1:0']);
    cleanups.push(() => app.close());
    const node = await startUwsgiNode('bytes', () => ['--subscribe-to', `127.0.0.1:${subscriptionPort}:bytes.test`]);
    cleanups.push(() => node.stop());
    await waitFor(async () => ((await get(httpPort, 'bytes.test')).status === 200 ? true : undefined), 15_000, 'route');
    const before = ((await readStats(app.compat.stats!.address()!.port)) as StatsDoc).subscriptions[0]!.nodes[0]!;
    const reply = await get(httpPort, 'bytes.test', `/${'x'.repeat(1000)}`);
    assert.equal(reply.status, 200);
    const afterOne = ((await readStats(app.compat.stats!.address()!.port)) as StatsDoc).subscriptions[0]!.nodes[0]!;
    assert.equal(afterOne.requests, before.requests + 1);
    // The request carried the 1000-byte path twice (REQUEST_URI, PATH_INFO); the reply echoes the environ.
    assert.ok(afterOne.rx - before.rx > 2000, `rx grew by ${afterOne.rx - before.rx}`);
    assert.ok(afterOne.tx - before.tx >= Buffer.byteLength(reply.text), `tx grew by ${afterOne.tx - before.tx}`);
    // A node added by other means (admin) has no announcement: last_check 0; draining → death_mark 1.
    app.router.upsertNode({
      key: 'manual.test',
      address: '127.0.0.1:9',
      target: { kind: 'tcp', host: '127.0.0.1', port: 9 },
      protocol: 'http',
      weight: 2,
      modifier1: 0,
      modifier2: 0,
      backup: 0,
      source: 'admin',
      state: 'active',
    });
    app.router.setNodeState('manual.test', '127.0.0.1:9', 'draining');
    const doc = (await readStats(app.compat.stats!.address()!.port)) as StatsDoc;
    const manual = doc.subscriptions.find((p) => p.key === 'manual.test')!.nodes[0]!;
    assert.deepEqual([manual.death_mark, manual.last_check, manual.weight], [1, 0, 2]);
  });
});
