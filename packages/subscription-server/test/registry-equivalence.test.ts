/**
 * The registry keeps its nodes in compact columns with lazily re-armed expiry (registry.ts). This file
 * keeps a straightforward reference (a Map of host → array of node objects, expiry by scanning every
 * node) and runs both through random operation sequences: subscribes and refreshes with changing
 * fields, unsubscribes, removals, sweeps, limits. After every operation both must agree on the result,
 * the events, every host's nodes (all fields and the announcement) and the host order.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeSubscription, encodeSubscription } from '@switchyard/protocol';
import {
  type Announcement,
  type ApplyResult,
  type NodeState,
  parseAnnouncement,
  type RegisteredNode,
  SubscriptionRegistry,
  type TableEvent,
} from '../src/index.js';

const TOLERANCE = 17_000;
const DRAIN = 30_000;
const MAX_HOSTS = 5;
const MAX_NODES = 3;

interface RefNode {
  announcement: Announcement;
  state: NodeState;
  firstSeen: number;
  lastSeen: number;
  drainUntil: number;
}

type RefEvent = { type: TableEvent['type']; node: unknown; previous?: unknown; reason?: string };

/** The reference registry: the obvious data structure, O(nodes) sweeps, same contract. */
class ReferenceRegistry {
  readonly hosts = new Map<string, RefNode[]>();
  events: RefEvent[] = [];

  constructor(private readonly clock: () => number) {}

  apply(a: Announcement): ApplyResult {
    const nodes = this.hosts.get(a.key);
    const node = nodes?.find((n) => n.announcement.address === a.address);
    if (a.command === 'unsubscribe') {
      if (node === undefined) return { accepted: false, reason: 'unknown-node', detail: '' };
      if (node.state === 'draining') return { accepted: true, change: 'draining' };
      node.state = 'draining';
      node.drainUntil = this.clock() + DRAIN;
      this.events.push({ type: 'draining', node: view(node) });
      return { accepted: true, change: 'draining' };
    }
    const now = this.clock();
    if (node !== undefined) {
      const before = view(node);
      const old = node.announcement;
      const routing =
        old.weight !== a.weight ||
        old.protocol !== a.protocol ||
        old.backup !== a.backup ||
        old.algo !== a.algo ||
        old.modifier1 !== a.modifier1 ||
        old.modifier2 !== a.modifier2;
      const wasDraining = node.state === 'draining';
      node.announcement = a;
      node.lastSeen = now;
      node.state = 'active';
      if (routing || wasDraining) {
        this.events.push({ type: 'updated', node: view(node), previous: before });
        return { accepted: true, change: 'updated' };
      }
      this.events.push({ type: 'refreshed', node: view(node) });
      return { accepted: true, change: 'refreshed' };
    }
    if (nodes === undefined && this.hosts.size >= MAX_HOSTS) {
      return { accepted: false, reason: 'too-many-hosts', detail: '' };
    }
    if (nodes !== undefined && nodes.length >= MAX_NODES) {
      return { accepted: false, reason: 'too-many-nodes', detail: '' };
    }
    const created: RefNode = { announcement: a, state: 'active', firstSeen: now, lastSeen: now, drainUntil: 0 };
    if (nodes === undefined) this.hosts.set(a.key, [created]);
    else nodes.push(created);
    this.events.push({ type: 'added', node: view(created) });
    return { accepted: true, change: 'added' };
  }

  remove(key: string, address: string, reason: 'drained' | 'admin'): boolean {
    const node = this.hosts.get(key)?.find((n) => n.announcement.address === address);
    if (node === undefined) return false;
    this.#delete(node);
    this.events.push({ type: 'removed', node: view(node), reason });
    return true;
  }

  sweep(): number {
    const now = this.clock();
    const due: RefEvent[] = [];
    for (const nodes of [...this.hosts.values()]) {
      for (const node of [...nodes]) {
        if (node.state === 'active' && node.lastSeen + TOLERANCE < now) {
          this.#delete(node);
          due.push({ type: 'expired', node: view(node) });
        } else if (node.state === 'draining' && node.drainUntil < now) {
          this.#delete(node);
          due.push({ type: 'removed', node: view(node), reason: 'drain-timeout' });
        }
      }
    }
    this.events.push(...due);
    return due.length;
  }

  #delete(node: RefNode): void {
    const key = node.announcement.key;
    const nodes = this.hosts.get(key)!;
    nodes.splice(nodes.indexOf(node), 1);
    if (nodes.length === 0) this.hosts.delete(key);
  }
}

/** A node as both registries must show it: every field, and the announcement minus per-packet fields. */
function view(node: RefNode): unknown {
  const a = node.announcement;
  return {
    key: a.key,
    address: a.address,
    protocol: a.protocol,
    weight: a.weight,
    modifier1: a.modifier1,
    modifier2: a.modifier2,
    cores: a.cores,
    load: a.load,
    backup: a.backup,
    algo: a.algo,
    state: node.state,
    firstSeen: node.firstSeen,
    lastSeen: node.lastSeen,
    announcement: { ...a, command: 'subscribe', unix: undefined, extra: {} },
  };
}

function viewOf(node: RegisteredNode): unknown {
  const { announcement, ...fields } = { ...node, announcement: node.announcement };
  return { ...fields, announcement: { ...announcement, extra: { ...announcement.extra } } };
}

function eventOf(e: TableEvent): RefEvent {
  return {
    type: e.type,
    node: viewOf(e.node),
    ...(e.type === 'updated' ? { previous: viewOf(e.previous) } : {}),
    ...(e.type === 'removed' ? { reason: e.reason } : {}),
  };
}

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

const KEYS = ['a.test', 'b.test', 'c.test', 'd.test', 'e.test', 'f.test', 'g.test'];
const ADDRESSES = ['127.0.0.1:9001', '127.0.0.1:9002', '/run/a.sock', '[::1]:9003', 'node.test:80'];

function announcement(fields: [string, string][], command: 'subscribe' | 'unsubscribe'): Announcement {
  const decoded = decodeSubscription(encodeSubscription(command, fields));
  assert.ok(decoded.ok);
  const parsed = parseAnnouncement(decoded.value);
  assert.ok(parsed.ok);
  return parsed.value;
}

function randomAnnouncement(rand: () => number): Announcement {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const fields: [string, string][] = [
    ['key', pick(KEYS)],
    ['address', pick(ADDRESSES)],
  ];
  if (rand() < 0.3) fields.push(['weight', pick(['1', '2', '0'])]);
  if (rand() < 0.2) fields.push(['proto', pick(['http', 'uwsgi'])]);
  if (rand() < 0.15) fields.push(['backup', pick(['0', '1'])]);
  if (rand() < 0.15) fields.push(['algo', pick(['lrc', 'wrr'])]);
  if (rand() < 0.1) fields.push(['modifier1', pick(['0', '5'])]);
  if (rand() < 0.5) fields.push(['cores', pick(['1', '4', '8'])]);
  if (rand() < 0.5) fields.push(['load', pick(['0', '3'])]);
  if (rand() < 0.1) fields.push(['notify', '/tmp/n.sock']);
  if (rand() < 0.1) fields.push(['vassal', pick(['v1', 'v2'])]);
  if (rand() < 0.05) fields.push(['sni_crt', '/c.crt'], ['sni_key', '/c.key']);
  if (rand() < 0.05) fields.push(['clear', '1']);
  if (rand() < 0.1) fields.push(['unix', '1700000000'], ['inactive', '0']);
  return announcement(fields, rand() < 0.15 ? 'unsubscribe' : 'subscribe');
}

function run(seed: number, operations: number): Map<string, number> {
  const rand = prng(seed);
  const clock = { now: 1_000_000 };
  const compact = new SubscriptionRegistry({
    clock: () => clock.now,
    toleranceMs: TOLERANCE,
    drainTimeoutMs: DRAIN,
    maxHosts: MAX_HOSTS,
    maxNodesPerHost: MAX_NODES,
  });
  const reference = new ReferenceRegistry(() => clock.now);
  let events: TableEvent[] = [];
  compact.onEvent((e) => events.push(e));
  const counts = new Map<string, number>();
  for (let op = 0; op < operations; op++) {
    const roll = rand();
    let what: string;
    if (roll < 0.6) {
      const a = randomAnnouncement(rand);
      const got = compact.apply(a);
      const want = reference.apply(a);
      assert.deepEqual(
        got.accepted ? got : { accepted: false, reason: got.reason },
        want.accepted ? want : { accepted: false, reason: want.reason },
        `seed ${seed} op ${op}`,
      );
      what = got.accepted ? got.change : got.reason;
    } else if (roll < 0.68) {
      const key = KEYS[Math.floor(rand() * KEYS.length)]!;
      const address = ADDRESSES[Math.floor(rand() * ADDRESSES.length)]!;
      const reason = rand() < 0.5 ? 'drained' : 'admin';
      assert.equal(compact.remove(key, address, reason), reference.remove(key, address, reason));
      what = 'remove';
    } else if (roll < 0.95) {
      clock.now += Math.floor(rand() * (rand() < 0.1 ? 40_000 : 4_000));
      what = 'time';
    } else {
      // Sweep at a wheel-bucket boundary (250 ms): there, the compact sweep is exact (see expiry-wheel.ts).
      clock.now = Math.ceil(clock.now / 250) * 250;
      assert.equal(compact.sweep(), reference.sweep(), `seed ${seed} op ${op} sweep`);
      what = 'sweep';
    }
    counts.set(what, (counts.get(what) ?? 0) + 1);
    const sortEvents = what === 'sweep';
    const got = events.map(eventOf);
    const want = reference.events;
    const order = (list: RefEvent[]) =>
      sortEvents ? [...list].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y))) : list;
    assert.deepEqual(order(got), order(want), `seed ${seed} op ${op} events`);
    events = [];
    reference.events = [];
    assert.deepEqual([...compact.hosts()].sort(), [...reference.hosts.keys()].sort(), `seed ${seed} op ${op} hosts`);
    for (const key of KEYS) {
      const nodes = compact.get(key);
      const expected = reference.hosts.get(key);
      assert.deepEqual(nodes?.map(viewOf), expected?.map(view), `seed ${seed} op ${op} ${key}`);
    }
    const refNodes = [...reference.hosts.values()].flat();
    assert.equal(compact.nodeCount, refNodes.length);
    assert.equal(compact.metrics().draining, refNodes.filter((n) => n.state === 'draining').length);
  }
  return counts;
}

describe('compact registry against the reference', () => {
  test('random operation sequences give the same results, events and tables', () => {
    const totals = new Map<string, number>();
    for (let seed = 1; seed <= 12; seed++) {
      for (const [what, n] of run(seed, 1_500)) totals.set(what, (totals.get(what) ?? 0) + n);
    }
    // Every kind of outcome must have happened, or the comparison proves little.
    for (const what of [
      'added',
      'refreshed',
      'updated',
      'draining',
      'unknown-node',
      'too-many-hosts',
      'too-many-nodes',
      'remove',
      'sweep',
    ]) {
      assert.ok((totals.get(what) ?? 0) > 10, `${what} happened ${totals.get(what) ?? 0} times`);
    }
  });

  test('between bucket boundaries a sweep never expires a node early', () => {
    const clock = { now: 1_000_000 };
    const registry = new SubscriptionRegistry({ clock: () => clock.now, toleranceMs: TOLERANCE });
    const rand = prng(99);
    const seen = new Map<string, number>();
    registry.onEvent((e) => {
      if (e.type === 'expired') assert.ok(e.node.lastSeen + TOLERANCE < clock.now, 'expired early');
    });
    for (let i = 0; i < 5_000; i++) {
      const key = `h${Math.floor(rand() * 300)}.test`;
      registry.apply(
        announcement(
          [
            ['key', key],
            ['address', ':1'],
          ],
          'subscribe',
        ),
      );
      seen.set(key, clock.now);
      clock.now += Math.floor(rand() * 37);
      if (i % 50 === 0) registry.sweep();
    }
    clock.now += TOLERANCE + 251;
    registry.sweep();
    assert.equal(registry.nodeCount, 0);
  });
});
