import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cookieValue } from '../src/consistent-hash-balancer.js';
import { HashRing, hash32 } from '../src/hash-ring.js';
import { parseBalancerName } from '../src/index.js';
import { context, node, rig, seeded } from './balancing-fixtures.js';

function owners(ring: HashRing, keys: readonly string[], names: readonly string[]): string[] {
  return keys.map((k) => names[ring.owner(hash32(k))]!);
}

describe('consistent hashing', () => {
  const keys = Array.from({ length: 20_000 }, (_, i) => `client-${i}`);

  test('moves only the removed node’s keys (about 10%) when 1 of 10 nodes leaves', () => {
    const names = Array.from({ length: 10 }, (_, i) => `10.0.0.${i}:80`);
    const before = owners(
      new HashRing(
        names,
        names.map(() => 1),
      ),
      keys,
      names,
    );
    const remaining = names.filter((n) => n !== '10.0.0.3:80');
    const after = owners(
      new HashRing(
        remaining,
        remaining.map(() => 1),
      ),
      keys,
      remaining,
    );
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] !== after[i]) {
        moved++;
        assert.equal(before[i], '10.0.0.3:80', 'a key of a node that stayed moved');
      }
    }
    const share = moved / keys.length;
    assert.ok(share > 0.06 && share < 0.14, `moved ${(share * 100).toFixed(1)}% of keys`);
  });

  test('moves only about 1/11 of the keys when an eleventh node joins, all of them to it', () => {
    const names = Array.from({ length: 10 }, (_, i) => `10.0.0.${i}:80`);
    const before = owners(
      new HashRing(
        names,
        names.map(() => 1),
      ),
      keys,
      names,
    );
    const grown = [...names, '10.0.0.99:80'];
    const after = owners(
      new HashRing(
        grown,
        grown.map(() => 1),
      ),
      keys,
      grown,
    );
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] !== after[i]) {
        moved++;
        assert.equal(after[i], '10.0.0.99:80');
      }
    }
    assert.ok(moved / keys.length > 0.05 && moved / keys.length < 0.13, `moved ${moved}`);
  });

  test('sends the same client to the same node, request after request, through the balancer', () => {
    const r = rig({ balancer: 'hash-ip' });
    for (let i = 1; i <= 5; i++) r.add(node(i));
    const balancer = r.balancing.balancerFor('app.test');
    const random = seeded(3);
    for (let c = 0; c < 50; c++) {
      const ip = `198.51.100.${Math.floor(random() * 250)}`;
      const first = balancer.candidates(r.entry(), context(ip))[0]!.address;
      for (let k = 0; k < 5; k++) assert.equal(balancer.candidates(r.entry(), context(ip))[0]!.address, first);
    }
  });

  test('moves a key to its next ring node while its node is ejected and back when it is re-admitted', () => {
    const r = rig({ balancer: 'hash-header:x-user' });
    for (let i = 1; i <= 4; i++) r.add(node(i));
    const balancer = r.balancing.balancerFor('app.test');
    const ctx = context('192.0.2.1', { 'x-user': 'alice' });
    const [first, second] = balancer.candidates(r.entry(), ctx).map((n) => n.address);
    for (let i = 0; i < 5; i++) r.balancing.failed('app.test', first!);
    assert.equal(balancer.candidates(r.entry(), ctx)[0]!.address, second);
    r.clock.advance(30_000);
    assert.equal(balancer.candidates(r.entry(), ctx)[0]!.address, first, 'the probe goes to the key’s own node');
    r.balancing.responded('app.test', first!, 200, 1);
    assert.equal(balancer.candidates(r.entry(), ctx)[0]!.address, first);
  });

  test('hashes a header or a cookie, and falls back to the client address when it is missing', () => {
    const r = rig();
    for (let i = 1; i <= 8; i++) r.add(node(i));
    const byHeader = r.balancing.catalog.get('hash-header:X-Tenant')!;
    const byCookie = r.balancing.catalog.get('hash-cookie:sid')!;
    const byIp = r.balancing.catalog.get('hash-ip')!;
    const entry = r.entry();
    const pick = (b: typeof byIp, ip: string, headers: Record<string, string> = {}) =>
      b.candidates(entry, context(ip, headers))[0]!.address;
    const tenants = new Set<string>();
    for (let i = 0; i < 40; i++) {
      // Same tenant from many addresses: one node.
      tenants.add(pick(byHeader, `203.0.113.${i}`, { 'x-tenant': 'acme' }));
    }
    assert.equal(tenants.size, 1);
    assert.equal(
      pick(byCookie, '203.0.113.1', { cookie: 'a=1; sid=xyz' }),
      pick(byCookie, '203.0.113.2', { cookie: 'sid=xyz' }),
    );
    assert.equal(pick(byHeader, '203.0.113.7'), pick(byIp, '203.0.113.7'));
    assert.match(byCookie.explain(entry, context('203.0.113.1', { cookie: 'sid=xyz' })).reason, /cookie sid/);
  });

  test('parses cookie values like browsers send them', () => {
    assert.equal(cookieValue('a=1; sid=abc; b=2', 'sid'), 'abc');
    assert.equal(cookieValue('sid="quoted"', 'sid'), 'quoted');
    assert.equal(cookieValue('xsid=1; sid=2', 'sid'), '2');
    assert.equal(cookieValue('sid=', 'sid'), undefined);
    assert.equal(cookieValue('other=1', 'sid'), undefined);
    assert.equal(cookieValue(undefined, 'sid'), undefined);
  });

  test('accepts uWSGI and Switchyard balancer names and refuses anything else', () => {
    for (const name of ['wrr', 'lrc', 'wlrc', 'iphash', 'least-requests', 'p2c-ewma', 'hash-ip']) {
      assert.equal(parseBalancerName(name)?.name, name);
    }
    assert.equal(parseBalancerName('hash-header:X-User')?.name, 'hash-header:x-user');
    assert.equal(parseBalancerName('hash-cookie:Session')?.name, 'hash-cookie:Session');
    for (const bad of ['WRR', 'random', 'hash-header:', 'hash-header:a b', 'hash-query:x', '']) {
      assert.equal(parseBalancerName(bad), undefined, bad);
    }
  });
});
