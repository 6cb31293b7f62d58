import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyTableChange, Router, type TableChange, TableFeed, tableDigest, type VhostNode } from '../src/index.js';

/** Deterministic PRNG (mulberry32), so a failing seed can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOSTS = ['a.test', 'b.test', 'c.test', 'd.test:8080'];
const ADDRESSES = ['127.0.0.1:3001', '127.0.0.1:3002', '127.0.0.1:3003', '127.0.0.1:3004'];

function subscribed(key: string, address: string, weight: number): VhostNode {
  const port = Number(address.split(':')[1]);
  return {
    key,
    address,
    target: { kind: 'tcp', host: '127.0.0.1', port },
    protocol: 'http',
    weight,
    modifier1: 0,
    modifier2: 0,
    backup: 0,
    source: 'subscription',
    state: 'active',
  };
}

/** Changes cross a process boundary as JSON: so do they here. */
function overIpc<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** One random operation of the kinds the primary's table sees: subscriptions, admin writes, policies. */
function randomOperation(router: Router, random: () => number): void {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const key = pick(HOSTS);
  const address = pick(ADDRESSES);
  const roll = random();
  try {
    if (roll < 0.3) router.upsertNode(subscribed(key, address, 1 + Math.floor(random() * 5)), pick([undefined, 'lrc']));
    else if (roll < 0.42) router.setNodeState(key, address, pick(['active', 'draining'] as const));
    else if (roll < 0.52) router.removeNode(key, address, 'subscription');
    else if (roll < 0.62)
      router.ops.operator.patchNode(
        key,
        address,
        pick([{ state: 'draining' }, { weight: 7 }, { weight: null, state: 'active' }]),
      );
    else if (roll < 0.68) router.ops.operator.deleteNode(key, address);
    else if (roll < 0.74) router.ops.operator.addNode(key, { address, protocol: 'http', weight: 3 });
    else if (roll < 0.82) router.setHostBalancer(key, pick([undefined, 'wrr', 'p2c-ewma', 'least-requests']));
    else if (roll < 0.9) router.ops.policies.apply(key, { maxBodyBytes: pick([null, 1024]) });
    else if (roll < 0.94) router.ops.policies.apply(key, { maintenance: { enabled: random() < 0.5, status: 503 } });
    else if (roll < 0.97) router.ops.policies.clear(key);
    else router.addStaticNode({ ...subscribed('*', address, 1), weight: 1 });
  } catch (error) {
    // SY_NO_NODE, SY_NODE_EXISTS...: the admin API answers these with 4xx and the table is unchanged.
    assert.match(String((error as { code?: string }).code), /^SY_/);
  }
}

function nodeOrder(router: Router): string[] {
  const out: string[] = [];
  for (const entry of router.table.entries()) {
    out.push(`${entry.key}: ${entry.nodes.map((n) => `${n.address}/${n.state}/${n.weight}`).join(' ')}`);
  }
  return out.sort();
}

describe('table replication (switchyard --workers)', () => {
  test('a replica fed the snapshot and every later change equals its primary (random operation sequences)', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const random = prng(seed);
      const primary = new Router({ http: [] });
      const log: TableChange[] = [];
      const feed = new TableFeed(primary, (change) => log.push(overIpc(change)));
      const steps = 150;
      const snapshotAt = Math.floor(random() * steps);
      let snapshot: TableChange[] = [];
      let after = 0;
      for (let step = 0; step < steps; step++) {
        if (step === snapshotAt) {
          snapshot = overIpc(feed.snapshot());
          after = log.length;
        }
        randomOperation(primary, random);
      }
      const replica = new Router({ http: [] });
      for (const change of snapshot) applyTableChange(replica, change, true);
      for (const change of log.slice(after)) applyTableChange(replica, change);
      assert.deepEqual(nodeOrder(replica), nodeOrder(primary), `seed ${seed}: node order`);
      assert.equal(tableDigest(replica), tableDigest(primary), `seed ${seed}: digest`);
      feed.close();
    }
  });

  test('a replica built from the full change log alone also equals its primary', () => {
    const random = prng(99);
    const primary = new Router({ http: [] });
    const replica = new Router({ http: [] });
    const feed = new TableFeed(primary, (change) => applyTableChange(replica, overIpc(change)));
    for (let step = 0; step < 500; step++) randomOperation(primary, random);
    assert.equal(tableDigest(replica), tableDigest(primary));
    assert.ok(primary.table.hostCount > 0, 'the sequence leaves hosts in the table');
    feed.close();
  });

  test('the digest changes when a replica misses a change', () => {
    const primary = new Router({ http: [] });
    const replica = new Router({ http: [] });
    const log: TableChange[] = [];
    const feed = new TableFeed(primary, (change) => log.push(change));
    primary.upsertNode(subscribed('a.test', ADDRESSES[0]!, 1));
    primary.upsertNode(subscribed('a.test', ADDRESSES[1]!, 1));
    primary.setNodeState('a.test', ADDRESSES[1]!, 'draining');
    for (const change of log.slice(0, -1)) applyTableChange(replica, change);
    assert.notEqual(tableDigest(replica), tableDigest(primary));
    applyTableChange(replica, log.at(-1)!);
    assert.equal(tableDigest(replica), tableDigest(primary));
    feed.close();
  });

  test('snapshot nodes do not slow-start on the replica; nodes added later ramp as on the primary', () => {
    const options = { http: [], balancing: { slowStartMs: 10_000 } };
    const primary = new Router(options);
    const log: TableChange[] = [];
    const feed = new TableFeed(primary, (change) => log.push(change));
    primary.upsertNode(subscribed('a.test', ADDRESSES[0]!, 1));
    primary.upsertNode(subscribed('a.test', ADDRESSES[1]!, 1));
    const replica = new Router(options);
    for (const change of feed.snapshot()) applyTableChange(replica, change, true);
    assert.equal(replica.lifecycleState('a.test', ADDRESSES[1]!), 'active', 'it was serving already');
    const before = log.length;
    primary.upsertNode(subscribed('a.test', ADDRESSES[2]!, 1));
    for (const change of log.slice(before)) applyTableChange(replica, change);
    assert.equal(primary.lifecycleState('a.test', ADDRESSES[2]!), 'joining');
    assert.equal(replica.lifecycleState('a.test', ADDRESSES[2]!), 'joining');
    feed.close();
  });

  test('forwards a subscription certificate once per key until its files change or it is withdrawn', () => {
    const primary = new Router({ http: [] });
    const log: TableChange[] = [];
    const feed = new TableFeed(primary, (change) => log.push(change));
    const files = { cert: '/nonexistent/a.crt', key: '/nonexistent/a.key' };
    primary.certificates.offer('a.test', files);
    primary.certificates.offer('a.test', files);
    primary.certificates.offer('a.test', { ...files, cert: '/nonexistent/b.crt' });
    primary.certificates.withdraw('a.test');
    primary.certificates.withdraw('a.test');
    assert.deepEqual(
      log.map((c) => (c.op === 'certificate' ? (c.files?.cert ?? null) : c.op)),
      ['/nonexistent/a.crt', '/nonexistent/b.crt', null],
    );
    assert.deepEqual(feed.snapshot(), [], 'a withdrawn certificate is not in the snapshot');
    feed.close();
    primary.certificates.close();
  });
});
