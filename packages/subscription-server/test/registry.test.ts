import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeSubscription, encodeSubscription, type SubscriptionCommand } from '@switchyard/protocol';
import {
  type Announcement,
  parseAnnouncement,
  type RegistryOptions,
  SubscriptionError,
  SubscriptionRegistry,
  type TableEvent,
} from '../src/index.js';

function ann(fields: Record<string, string>, command: SubscriptionCommand = 'subscribe'): Announcement {
  const decoded = decodeSubscription(encodeSubscription(command, Object.entries(fields)));
  assert.ok(decoded.ok);
  const parsed = parseAnnouncement(decoded.value);
  assert.ok(parsed.ok);
  return parsed.value;
}

const A = { key: 'app.test', address: '127.0.0.1:9001' };
const B = { key: 'app.test', address: '127.0.0.1:9002' };

/** A registry on a manual clock, recording every event. */
function setup(options: RegistryOptions = {}) {
  const clock = { now: 1_000_000 };
  const registry = new SubscriptionRegistry({ clock: () => clock.now, ...options });
  const events: TableEvent[] = [];
  registry.onEvent((e) => events.push(e));
  const types = () => events.map((e) => e.type);
  return { clock, registry, events, types };
}

describe('subscribe and refresh', () => {
  test('a subscribe for a new node adds it and get returns it', () => {
    const { clock, registry, events } = setup();
    assert.deepEqual(registry.apply(ann({ ...A, weight: '3', cores: '4' })), { accepted: true, change: 'added' });
    const nodes = registry.get('app.test');
    assert.equal(nodes?.length, 1);
    const node = nodes[0]!;
    assert.equal(node.address, '127.0.0.1:9001');
    assert.equal(node.weight, 3);
    assert.equal(node.cores, 4);
    assert.equal(node.state, 'active');
    assert.equal(node.firstSeen, clock.now);
    assert.equal(node.lastSeen, clock.now);
    assert.ok(Object.isFrozen(node));
    assert.ok(Object.isFrozen(nodes));
    assert.equal(events.length, 1);
    assert.equal(events[0]?.type, 'added');
    assert.deepEqual(events[0]?.node, node);
    assert.equal(registry.size, 1);
    assert.equal(registry.nodeCount, 1);
    assert.deepEqual([...registry.hosts()], ['app.test']);
  });

  test('nodes are listed in subscription order and a refresh keeps that order', () => {
    const { registry, clock } = setup();
    registry.apply(ann(A));
    registry.apply(ann(B));
    clock.now += 1000;
    registry.apply(ann(A));
    assert.deepEqual(
      registry.get('app.test')?.map((n) => n.address),
      ['127.0.0.1:9001', '127.0.0.1:9002'],
    );
  });

  test('a refresh that changes only load and cores is a refreshed event with a new lastSeen', () => {
    const { registry, clock, events } = setup();
    registry.apply(ann(A));
    const first = registry.get('app.test')?.[0];
    clock.now += 10_000;
    registry.apply(ann({ ...A, cores: '8', load: '2' }));
    const node = registry.get('app.test')?.[0];
    assert.equal(events.at(-1)?.type, 'refreshed');
    assert.equal(node?.lastSeen, clock.now);
    assert.equal(node?.firstSeen, first?.firstSeen);
    assert.equal(node?.cores, 8);
    assert.notEqual(node, first);
  });

  test('a refresh that changes a routing field is an updated event carrying the previous node', () => {
    for (const change of [{ weight: '5' }, { proto: 'http' }, { backup: '1' }, { algo: 'lrc' }, { modifier1: '5' }]) {
      const { registry, events } = setup();
      registry.apply(ann(A));
      const before = registry.get('app.test')?.[0];
      registry.apply(ann({ ...A, ...change }));
      const last = events.at(-1);
      assert.equal(last?.type, 'updated', JSON.stringify(change));
      assert.deepEqual(last?.type === 'updated' ? last.previous : undefined, before);
    }
  });

  test('refreshes keep a node alive past the tolerance', () => {
    const { registry, clock, types } = setup();
    registry.apply(ann(A));
    for (let i = 0; i < 5; i++) {
      clock.now += 10_000;
      registry.apply(ann(A));
      assert.equal(registry.sweep(), 0);
    }
    assert.equal(registry.get('app.test')?.length, 1);
    assert.ok(!types().includes('expired'));
  });
});

describe('expiry', () => {
  test('a silent node expires only once the tolerance has passed', () => {
    const { registry, clock, events } = setup({ toleranceMs: 17_000 });
    registry.apply(ann(A));
    clock.now += 17_000;
    assert.equal(registry.sweep(), 0);
    assert.equal(registry.get('app.test')?.length, 1);
    clock.now += 1;
    assert.equal(registry.sweep(), 1);
    assert.equal(events.at(-1)?.type, 'expired');
    assert.equal(events.at(-1)?.node.address, A.address);
    assert.equal(registry.get('app.test'), undefined);
    assert.equal(registry.size, 0);
    assert.equal(registry.nodeCount, 0);
  });

  test('a refreshed node expires from its last refresh, not its first subscribe', () => {
    const { registry, clock } = setup({ toleranceMs: 17_000 });
    registry.apply(ann(A));
    clock.now += 10_000;
    registry.apply(ann(A));
    clock.now += 17_000;
    assert.equal(registry.sweep(), 0);
    clock.now += 1;
    assert.equal(registry.sweep(), 1);
  });

  test('sweep with a limit removes at most that many nodes', () => {
    const { registry, clock } = setup();
    for (let i = 0; i < 5; i++) registry.apply(ann({ key: `h${i}.test`, address: A.address }));
    clock.now += 20_000;
    assert.equal(registry.sweep(2), 2);
    assert.equal(registry.size, 3);
    assert.equal(registry.sweep(), 3);
    assert.equal(registry.size, 0);
  });

  test('a sweep over 100k nodes where only a few are due examines only those', () => {
    const { registry, clock } = setup({ toleranceMs: 17_000, sweepIntervalMs: 1_000 });
    const base = ann(A);
    for (let i = 0; i < 5; i++) registry.apply({ ...base, key: `due${i}.test` });
    clock.now += 5_000;
    for (let i = 0; i < 100_000; i++) registry.apply({ ...base, key: `h${i}.test` });
    assert.equal(registry.nodeCount, 100_005);
    clock.now += 12_500; // the first five are 17.5 s old, the rest 12.5 s
    const before = registry.metrics().sweepExamined;
    assert.equal(registry.sweep(), 5);
    const examined = registry.metrics().sweepExamined - before;
    assert.ok(examined <= 6, `examined ${examined} entries`);
    assert.equal(registry.nodeCount, 100_000);
    const again = registry.metrics().sweepExamined;
    assert.equal(registry.sweep(), 0);
    assert.ok(registry.metrics().sweepExamined - again <= 1);
  });

  test('refreshes add no expiry entries: one per node, gone with the node', () => {
    const { registry, clock } = setup({ toleranceMs: 17_000 });
    registry.apply(ann(A));
    for (let i = 0; i < 10; i++) {
      clock.now += 1_000;
      registry.apply(ann(A));
    }
    assert.equal(registry.metrics().wheelEntries, 1);
    clock.now += 16_000;
    assert.equal(registry.sweep(), 0);
    assert.equal(registry.metrics().wheelEntries, 1);
    assert.equal(registry.nodeCount, 1);
    clock.now += 1_001;
    assert.equal(registry.sweep(), 1);
    assert.equal(registry.metrics().wheelEntries, 0);
  });
});

describe('unsubscribe and draining', () => {
  test('an unsubscribe drains the node and remove(drained) deletes it with its host', () => {
    const { registry, types, events } = setup();
    registry.apply(ann(A));
    assert.deepEqual(registry.apply(ann(A, 'unsubscribe')), { accepted: true, change: 'draining' });
    assert.deepEqual(types(), ['added', 'draining']);
    assert.equal(registry.get('app.test')?.[0]?.state, 'draining');
    assert.equal(registry.metrics().draining, 1);
    assert.equal(registry.remove('app.test', A.address, 'drained'), true);
    const last = events.at(-1);
    assert.equal(last?.type, 'removed');
    assert.equal(last?.type === 'removed' ? last.reason : undefined, 'drained');
    assert.equal(registry.get('app.test'), undefined);
    assert.equal(registry.metrics().draining, 0);
    assert.equal(registry.remove('app.test', A.address, 'drained'), false);
  });

  test('an unsubscribe for an unknown node is refused as unknown-node', () => {
    const { registry, events } = setup();
    const result = registry.apply(ann(A, 'unsubscribe'));
    assert.equal(result.accepted ? 'accepted' : result.reason, 'unknown-node');
    registry.apply(ann(A));
    const other = registry.apply(ann(B, 'unsubscribe'));
    assert.equal(other.accepted ? 'accepted' : other.reason, 'unknown-node');
    assert.equal(events.length, 1);
  });

  test('a second unsubscribe of a draining node is accepted without an event', () => {
    const { registry, types } = setup();
    registry.apply(ann(A));
    registry.apply(ann(A, 'unsubscribe'));
    assert.deepEqual(registry.apply(ann(A, 'unsubscribe')), { accepted: true, change: 'draining' });
    assert.deepEqual(types(), ['added', 'draining']);
  });

  test('a draining node nobody reports drained is removed after the drain timeout, not by tolerance', () => {
    const { registry, clock, events } = setup({ toleranceMs: 17_000, drainTimeoutMs: 30_000 });
    registry.apply(ann(A));
    clock.now += 5_000;
    registry.apply(ann(A, 'unsubscribe'));
    clock.now += 20_000; // 25 s silent: past tolerance, but draining nodes wait for the drain timeout
    assert.equal(registry.sweep(), 0);
    clock.now += 10_001;
    assert.equal(registry.sweep(), 1);
    const last = events.at(-1);
    assert.equal(last?.type, 'removed');
    assert.equal(last?.type === 'removed' ? last.reason : undefined, 'drain-timeout');
    assert.equal(registry.size, 0);
  });

  test('a subscribe for a draining node re-activates it and cancels the drain timeout', () => {
    const { registry, clock, events } = setup({ toleranceMs: 17_000, drainTimeoutMs: 30_000 });
    registry.apply(ann(A));
    registry.apply(ann(A, 'unsubscribe'));
    clock.now += 1_000;
    registry.apply(ann(A));
    const last = events.at(-1);
    assert.equal(last?.type, 'updated');
    assert.equal(last?.type === 'updated' ? last.previous.state : undefined, 'draining');
    assert.equal(registry.get('app.test')?.[0]?.state, 'active');
    assert.equal(registry.metrics().draining, 0);
    for (let i = 0; i < 4; i++) {
      clock.now += 10_000;
      registry.apply(ann(A));
      assert.equal(registry.sweep(), 0);
    }
    assert.equal(registry.get('app.test')?.length, 1);
  });

  test('admin removal deletes an active node', () => {
    const { registry, events } = setup();
    registry.apply(ann(A));
    registry.apply(ann(B));
    assert.equal(registry.remove('app.test', A.address, 'admin'), true);
    const last = events.at(-1);
    assert.equal(last?.type === 'removed' ? last.reason : undefined, 'admin');
    assert.deepEqual(
      registry.get('app.test')?.map((n) => n.address),
      [B.address],
    );
  });
});

describe('limits', () => {
  test('a node beyond maxNodesPerHost is refused and the host keeps working', () => {
    const { registry } = setup({ maxNodesPerHost: 2 });
    registry.apply(ann(A));
    registry.apply(ann(B));
    const third = registry.apply(ann({ key: A.key, address: '127.0.0.1:9003' }));
    assert.equal(third.accepted ? 'accepted' : third.reason, 'too-many-nodes');
    assert.equal(registry.get('app.test')?.length, 2);
    assert.deepEqual(registry.apply(ann(A)), { accepted: true, change: 'refreshed' });
  });

  test('a host beyond maxHosts is refused while existing hosts still take new nodes', () => {
    const { registry } = setup({ maxHosts: 2 });
    registry.apply(ann({ key: 'one.test', address: A.address }));
    registry.apply(ann({ key: 'two.test', address: A.address }));
    const third = registry.apply(ann({ key: 'three.test', address: A.address }));
    assert.equal(third.accepted ? 'accepted' : third.reason, 'too-many-hosts');
    assert.deepEqual(registry.apply(ann({ key: 'one.test', address: B.address })), { accepted: true, change: 'added' });
    assert.deepEqual([...registry.hosts()].sort(), ['one.test', 'two.test']);
  });

  test('a host freed by expiry makes room for a new one', () => {
    const { registry, clock } = setup({ maxHosts: 1 });
    registry.apply(ann({ key: 'one.test', address: A.address }));
    clock.now += 20_000;
    registry.sweep();
    assert.deepEqual(registry.apply(ann({ key: 'two.test', address: A.address })), { accepted: true, change: 'added' });
  });

  test('a key longer than maxKeyLength is refused as key-too-long', () => {
    const { registry } = setup({ maxKeyLength: 10 });
    const result = registry.apply(ann({ key: 'longer-than-ten.test', address: A.address }));
    assert.equal(result.accepted ? 'accepted' : result.reason, 'key-too-long');
    assert.deepEqual(registry.apply(ann({ key: 'short.test', address: A.address })), {
      accepted: true,
      change: 'added',
    });
  });

  test('invalid options throw SY_BAD_OPTIONS', () => {
    assert.throws(
      () => new SubscriptionRegistry({ toleranceMs: -1 }),
      (err: unknown) => err instanceof SubscriptionError && err.code === 'SY_BAD_OPTIONS',
    );
  });
});

describe('events', () => {
  test('an event caused by a listener reaches every listener after the current one', () => {
    const { registry } = setup();
    const seen: string[] = [];
    registry.onEvent((e) => {
      seen.push(`first:${e.type}`);
      if (e.type === 'draining') registry.remove(e.node.key, e.node.address, 'drained');
    });
    registry.onEvent((e) => seen.push(`second:${e.type}`));
    registry.apply(ann(A));
    registry.apply(ann(A, 'unsubscribe'));
    assert.deepEqual(seen, [
      'first:added',
      'second:added',
      'first:draining',
      'second:draining',
      'first:removed',
      'second:removed',
    ]);
    assert.equal(registry.size, 0);
  });

  test('a throwing listener does not stop the others or the table', () => {
    const { registry, types } = setup();
    registry.onEvent(() => {
      throw new Error('listener bug');
    });
    assert.deepEqual(registry.apply(ann(A)), { accepted: true, change: 'added' });
    assert.deepEqual(types(), ['added']);
    assert.equal(registry.nodeCount, 1);
  });

  test('an unsubscribed listener receives nothing more', () => {
    const { registry } = setup();
    let count = 0;
    const off = registry.onEvent(() => count++);
    registry.apply(ann(A));
    off();
    registry.apply(ann(B));
    assert.equal(count, 1);
  });
});

describe('lifecycle', () => {
  test('the sweep timer expires due nodes in slices and close() twice is safe', async () => {
    const { registry, clock, events } = setup({ sweepIntervalMs: 5, sweepBatchSize: 10 });
    for (let i = 0; i < 25; i++) registry.apply(ann({ key: `h${i}.test`, address: A.address }));
    clock.now += 20_000;
    const allExpired = new Promise<void>((resolve) => {
      registry.onEvent(() => {
        if (registry.nodeCount === 0) resolve();
      });
    });
    registry.start();
    registry.start();
    // The sweep timer is unref'd: this ref'd guard keeps the process alive and bounds the wait.
    let guard: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      guard = setTimeout(() => reject(new Error('sweep timer did not run')), 5_000);
    });
    try {
      await Promise.race([allExpired, timeout]);
    } finally {
      clearTimeout(guard);
    }
    assert.equal(events.filter((e) => e.type === 'expired').length, 25);
    await registry.close();
    await registry.close();
  });
});
