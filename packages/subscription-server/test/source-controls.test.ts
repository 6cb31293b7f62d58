import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  NodeAddressPolicy,
  parseCidr,
  parseHostPattern,
  parseSourceAllowEntry,
  parseUpstreamTarget,
  RateLimiter,
  rateKey,
  SourcePolicy,
} from '../src/index.js';

const verdict = (r: { ok: true } | { ok: false; reason: string }) => (r.ok ? 'ok' : r.reason);

describe('host patterns', () => {
  test('*.domain covers every depth below it and the dotsplit key, not the domain itself', () => {
    const p = parseHostPattern('*.Tenant.Example.')!;
    assert.equal(p.text, '*.tenant.example');
    assert.ok(p.matches('a.tenant.example'));
    assert.ok(p.matches('b.a.tenant.example:8080'));
    assert.ok(p.matches('.tenant.example'));
    assert.ok(!p.matches('tenant.example'));
    assert.ok(!p.matches('eviltenant.example'));
    assert.ok(p.matches('a.tenant.example/api'));
    assert.ok(!p.matches('evil.example/a.tenant.example'));
  });

  test('a pattern with a port requires that port; an exact pattern matches one host', () => {
    assert.ok(parseHostPattern('api.example:8080')!.matches('api.example:8080'));
    assert.ok(!parseHostPattern('api.example:8080')!.matches('api.example'));
    assert.ok(parseHostPattern('api.example')!.matches('api.example:9000'));
    assert.ok(parseHostPattern('*')!.matches('anything.at.all'));
    assert.equal(parseHostPattern('a b'), undefined);
  });
});

describe('source allowlist and rate limit', () => {
  test('CIDRs parse in both families; bare addresses are single hosts', () => {
    assert.equal(parseCidr('10.0.0.0/8')?.text, '10.0.0.0/8');
    assert.equal(parseCidr('192.0.2.7')?.text, '192.0.2.7/32');
    assert.equal(parseCidr('2001:db8::/32')?.family, 'ipv6');
    assert.equal(parseCidr('10.0.0.0/33'), undefined);
    assert.equal(parseCidr('example.com/8'), undefined);
  });

  test('with an allowlist, sources outside every CIDR are refused before anything else', () => {
    const policy = new SourcePolicy({ allow: [parseSourceAllowEntry('127.0.0.0/8')!, parseSourceAllowEntry('::1')!] });
    assert.equal(verdict(policy.admit('127.0.0.2')), 'ok');
    assert.equal(verdict(policy.admit('::ffff:127.0.0.1')), 'ok');
    assert.equal(verdict(policy.admit('::1')), 'ok');
    assert.equal(verdict(policy.admit('10.1.2.3')), 'source-not-allowed');
    assert.equal(verdict(new SourcePolicy().admit('10.1.2.3')), 'ok');
  });

  test('patterns restrict which keys a network may announce; overlapping entries add up', () => {
    const policy = new SourcePolicy({
      allow: [
        parseSourceAllowEntry('10.1.0.0/16=*.tenant.example,api.example')!,
        parseSourceAllowEntry('10.1.2.0/24=b.example')!,
      ],
    });
    assert.equal(verdict(policy.checkKey('10.1.9.9', 'x.tenant.example')), 'ok');
    assert.equal(verdict(policy.checkKey('10.1.9.9', 'api.example')), 'ok');
    assert.equal(verdict(policy.checkKey('10.1.9.9', 'b.example')), 'source-not-allowed');
    assert.equal(verdict(policy.checkKey('10.1.2.9', 'b.example')), 'ok');
  });

  test('the per-source token bucket allows the burst, then the rate, per source', () => {
    const clock = { now: 0 };
    const policy = new SourcePolicy({ ratePerSecond: 10, burst: 20, clock: () => clock.now });
    const admitted = (ip: string, n: number) =>
      Array.from({ length: n }, () => policy.admit(ip)).filter((r) => r.ok).length;
    assert.equal(admitted('10.0.0.1', 50), 20);
    assert.equal(verdict(policy.admit('10.0.0.1')), 'rate-limited');
    assert.equal(admitted('10.0.0.2', 5), 5);
    clock.now += 500;
    assert.equal(admitted('10.0.0.1', 50), 5);
  });

  test('IPv6 sources share one bucket per /64, so rotating addresses inside a prefix buys nothing', () => {
    assert.equal(rateKey('2001:db8:1:2::1'), '2001:db8:1:2::/64');
    assert.equal(rateKey('2001:db8:1:2:ffff:1:2:3'), '2001:db8:1:2::/64');
    assert.equal(rateKey('::1'), '0:0:0:0::/64');
    assert.equal(rateKey('10.0.0.1'), '10.0.0.1');
    const policy = new SourcePolicy({ ratePerSecond: 1, burst: 3, clock: () => 0 });
    const results = [1, 2, 3, 4, 5].map((i) => verdict(policy.admit(`2001:db8::${i}`)));
    assert.deepEqual(results, ['ok', 'ok', 'ok', 'rate-limited', 'rate-limited']);
  });

  test('the limiter tracks a bounded number of sources', () => {
    const limiter = new RateLimiter({ ratePerSecond: 1, maxKeys: 100, clock: () => 0 });
    for (let i = 0; i < 10_000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`);
    assert.equal(limiter.trackedKeys, 100);
  });
});

describe('node address allowlist (SSRF defence)', () => {
  const target = (a: string) => parseUpstreamTarget(a)!;

  test("the router's own listeners are refused even without an allowlist", () => {
    const policy = new NodeAddressPolicy({
      ownListeners: () => [
        { address: '127.0.0.1', port: 8080 },
        { address: '0.0.0.0', port: 9090 },
      ],
    });
    assert.equal(policy.check(target('127.0.0.1:8080')).ok, false);
    assert.equal(policy.check(target('0.0.0.0:8080')).ok, false);
    assert.equal(policy.check(target('localhost:8080')).ok, false);
    assert.equal(policy.check(target('127.0.0.5:9090')).ok, false);
    assert.equal(policy.check(target('[::1]:9090')).ok, false);
    assert.equal(policy.check(target('127.0.0.1:8081')).ok, true);
    assert.equal(policy.check(target('10.0.0.1:8080')).ok, true);
    assert.equal(policy.check(target('/run/app.sock')).ok, true);
  });

  test('with an allowlist, only its networks and unix path prefixes are accepted; names are refused', () => {
    const policy = new NodeAddressPolicy({ allow: [parseCidr('10.0.0.0/8')!], unixPrefixes: ['/run/apps/'] });
    assert.equal(policy.check(target('10.2.3.4:3031')).ok, true);
    assert.equal(policy.check(target('169.254.169.254:80')).ok, false);
    assert.equal(policy.check(target('127.0.0.1:22')).ok, false);
    assert.equal(policy.check(target('backend.internal:80')).ok, false);
    assert.equal(policy.check(target('/run/apps/a.sock')).ok, true);
    assert.equal(policy.check(target('/var/run/docker.sock')).ok, false);
    assert.equal(policy.check(target('@abstract')).ok, false);
  });
});
