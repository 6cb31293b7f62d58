import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { type LookupOptions, STATIC_KEY, type VhostNode, VhostTable } from '../src/index.js';
import { dotsplitLevels, KeyShapes, mountPrefixes } from '../src/lookup-rules.js';
import { httpNode, request, startBackend, startRouter } from './helpers.js';

function tableWith(options: LookupOptions, keys: readonly string[], withStatic = false): VhostTable {
  const table = new VhostTable(options);
  keys.forEach((key, i) => {
    table.upsert(httpNode(key, `127.0.0.1:${10_000 + i}`));
  });
  if (withStatic) table.upsert({ ...httpNode(STATIC_KEY, '127.0.0.1:9999'), source: 'static' } satisfies VhostNode);
  return table;
}

/** Looks `host[:port]` + target up and returns "key rule", or "none". */
function route(table: VhostTable, hostHeader: string, target = '/'): string {
  const colon = hostHeader.lastIndexOf(':');
  const host = colon < 0 ? hostHeader : hostHeader.slice(0, colon);
  const found = table.lookup(host, colon < 0 ? undefined : hostHeader, target);
  return found === undefined ? 'none' : `${found.entry.key} ${found.rule}`;
}

describe('dotsplit lookup (--subscription-dotsplit)', () => {
  const keys = ['.example.org', 'exact.example.org', 'example.org:18081', '.example.org:8443'];
  const table = tableWith({ dotsplit: true }, keys);

  test('matches uWSGI: a subdomain falls back to the leading-dot key of its parent', () => {
    assert.equal(route(table, 'foo.bar.example.org'), '.example.org wildcard');
    assert.equal(route(table, 'x.exact.example.org'), '.example.org wildcard');
  });

  test('tries five levels in all, so a host nested six labels deep is not found', () => {
    assert.equal(route(table, 'a.b.c.d.example.org'), '.example.org wildcard');
    assert.equal(route(table, 'a.b.c.d.e.f.example.org'), 'none');
  });

  test('never matches the bare domain against its leading-dot key', () => {
    assert.equal(route(table, 'example.org'), 'none');
  });

  test('prefers an exact key over any wildcard', () => {
    assert.equal(route(table, 'exact.example.org'), 'exact.example.org host');
  });

  test('tries the port-qualified wildcard before the port-less one at each level', () => {
    assert.equal(route(table, 'www.example.org:8443'), '.example.org:8443 wildcard');
    assert.equal(route(table, 'www.example.org:18081'), '.example.org wildcard');
    assert.equal(route(table, 'example.org:18081'), 'example.org:18081 port');
  });

  test('ignores leading-dot keys when dotsplit is off', () => {
    const off = tableWith({}, keys);
    assert.equal(route(off, 'foo.example.org'), 'none');
  });

  test('lists at most five levels, the full host first, and none below an IPv6 literal', () => {
    assert.deepEqual(dotsplitLevels('a.b.c.d.e.f.org'), [
      'a.b.c.d.e.f.org',
      '.b.c.d.e.f.org',
      '.c.d.e.f.org',
      '.d.e.f.org',
      '.e.f.org',
    ]);
    assert.deepEqual(dotsplitLevels('[::1]'), ['[::1]']);
    assert.deepEqual(dotsplitLevels('localhost'), ['localhost']);
  });
});

describe('mountpoint lookup (--subscription-mountpoints)', () => {
  const keys = ['app.test', 'app.test/api', 'app.test/api/v2', 'app.test:8080/admin', '.wild.test/api', 'other.test'];
  const table = tableWith({ mountpoints: true, dotsplit: true }, keys);

  test('routes the first path segment to its mountpoint key and the rest to the plain host', () => {
    assert.equal(route(table, 'app.test', '/api/users?x=1'), 'app.test/api mountpoint');
    assert.equal(route(table, 'app.test', '/api'), 'app.test/api mountpoint');
    assert.equal(route(table, 'app.test', '/web/api'), 'app.test host');
    assert.equal(route(table, 'app.test', '/'), 'app.test host');
  });

  test('picks the longest mounted prefix', () => {
    assert.equal(route(table, 'app.test', '/api/v2/users'), 'app.test/api/v2 mountpoint');
    assert.equal(route(table, 'app.test', '/api/v3/users'), 'app.test/api mountpoint');
  });

  test('ignores the query string and stops at an empty segment', () => {
    assert.equal(route(table, 'app.test', '/apix?/api'), 'app.test host');
    assert.equal(route(table, 'app.test', '//api'), 'app.test host');
  });

  test('tries the port-qualified mountpoint first and a path before a port', () => {
    assert.equal(route(table, 'app.test:8080', '/admin/x'), 'app.test:8080/admin mountpoint');
    assert.equal(route(table, 'app.test:8080', '/api'), 'app.test/api mountpoint');
    assert.equal(route(table, 'app.test:9090', '/admin'), 'app.test host');
  });

  test('combines with dotsplit: a subdomain reaches a wildcard mountpoint', () => {
    assert.equal(route(table, 'a.wild.test', '/api/x'), '.wild.test/api mountpoint');
    assert.equal(route(table, 'a.wild.test', '/other'), 'none');
  });

  test('lists path prefixes deepest first and none for "*" or "/"', () => {
    assert.deepEqual(mountPrefixes('/a/b/c?q', 2), ['/a/b', '/a']);
    assert.deepEqual(mountPrefixes('/a/', 4), ['/a']);
    assert.deepEqual(mountPrefixes('*', 4), []);
    assert.deepEqual(mountPrefixes('/', 4), []);
  });

  test('skips mountpoint attempts once the last mountpoint key left the table', () => {
    const shapes = new KeyShapes();
    shapes.added('a.test/x/y');
    shapes.added('a.test/z');
    assert.equal(shapes.maxDepth, 2);
    shapes.removed('a.test/x/y');
    assert.equal(shapes.maxDepth, 1);
    shapes.removed('a.test/z');
    assert.equal(shapes.maxDepth, 0);
    const t = tableWith({ mountpoints: true }, ['m.test/api']);
    t.remove('m.test/api', '127.0.0.1:10000');
    assert.equal(route(t, 'm.test', '/api'), 'none');
  });
});

describe('fallback key (--http-fallback-key)', () => {
  test('serves unmatched hosts from the fallback pool, before the static nodes', () => {
    const table = tableWith({ fallbackKey: 'default.test' }, ['default.test', 'app.test'], true);
    assert.equal(route(table, 'app.test'), 'app.test host');
    assert.equal(route(table, 'nothere.test'), 'default.test fallback');
  });

  test('falls through to the static nodes while the fallback pool has no node', () => {
    const table = tableWith({ fallbackKey: 'default.test' }, ['app.test'], true);
    assert.equal(route(table, 'nothere.test'), '* static');
    assert.equal(route(tableWith({ fallbackKey: 'default.test' }, []), 'nothere.test'), 'none');
  });
});

describe('extended lookup through the router', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('routes a subdomain by dotsplit, a path by mountpoint and an unknown host to the fallback pool', async () => {
    const wild = await startBackend('wild');
    const api = await startBackend('api');
    const fallback = await startBackend('fallback');
    cleanups.push(
      () => wild.close(),
      () => api.close(),
      () => fallback.close(),
    );
    const { router, port } = await startRouter({
      lookup: { dotsplit: true, mountpoints: true, fallbackKey: 'default.test' },
    });
    cleanups.push(() => router.close());
    router.upsertNode(httpNode('.example.test', wild.address));
    router.upsertNode(httpNode('www.example.test/api', api.address));
    router.upsertNode(httpNode('default.test', fallback.address));
    assert.equal((await request(port, { host: 'a.b.example.test' })).text, 'wild');
    assert.equal((await request(port, { host: 'www.example.test', path: '/api/v1?q=/x' })).text, 'api');
    assert.equal((await request(port, { host: 'www.example.test', path: '/home' })).text, 'wild');
    assert.equal((await request(port, { host: 'nothere.test:8080' })).text, 'fallback');
    assert.equal(api.seen[0]!.url, '/api/v1?q=/x');
  });
});
