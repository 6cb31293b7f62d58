import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ADMIN_TOKEN, type AdminRig, call, READ_TOKEN, startAdminRig } from './admin-support.js';
import { httpNode, request, startBackend, type TestBackend } from './helpers.js';

describe('admin API', () => {
  let rig: AdminRig;
  let a: TestBackend;
  let b: TestBackend;
  before(async () => {
    rig = await startAdminRig();
    a = await startBackend('a');
    b = await startBackend('b');
  });
  after(async () => {
    await rig.close();
    await a.close();
    await b.close();
  });

  test('an unknown host is 404 SY_NO_VHOST on every host route', async () => {
    const p = rig.adminPort;
    for (const [method, path, body] of [
      ['GET', '/v1/vhosts/nope.test', undefined],
      ['PATCH', '/v1/vhosts/nope.test', { maxBodyBytes: 10 }],
      ['DELETE', '/v1/vhosts/nope.test', undefined],
      ['PATCH', '/v1/vhosts/nope.test/nodes/127.0.0.1:1', { state: 'draining' }],
      ['DELETE', '/v1/vhosts/nope.test/nodes/127.0.0.1:1', undefined],
    ] as const) {
      const reply = await call(p, method, path, { body });
      assert.equal(reply.status, 404, `${method} ${path}`);
      assert.equal(reply.body.error.code, 'SY_NO_VHOST');
    }
    const unknownRoute = await call(p, 'GET', '/v1/nothing');
    assert.equal(unknownRoute.status, 404);
    assert.equal(unknownRoute.body.error.code, 'SY_NOT_FOUND');
  });

  test('bodies are strict: unknown properties and wrong types are 400 SY_INVALID_BODY, bad JSON SY_BAD_REQUEST', async () => {
    rig.router.upsertNode(httpNode('strict.test', a.address));
    const p = rig.adminPort;
    const cases: [string, string, unknown, string][] = [
      ['PATCH', '/v1/vhosts/strict.test', { maxBodyBytes: 10, extra: true }, 'SY_INVALID_BODY'],
      ['PATCH', '/v1/vhosts/strict.test', { maxBodyBytes: '10' }, 'SY_INVALID_BODY'],
      ['PATCH', '/v1/vhosts/strict.test', { maintenance: { enabled: 'yes' } }, 'SY_INVALID_BODY'],
      ['POST', '/v1/vhosts/strict.test/nodes', { address: a.address, weight: '2' }, 'SY_INVALID_BODY'],
      ['POST', '/v1/vhosts/strict.test/nodes', { address: 'not an address' }, 'SY_INVALID_BODY'],
      ['POST', '/v1/vhosts/strict.test/nodes', undefined, 'SY_INVALID_BODY'],
      ['PATCH', `/v1/vhosts/strict.test/nodes/${a.address}`, {}, 'SY_INVALID_BODY'],
      ['PATCH', `/v1/vhosts/strict.test/nodes/${a.address}`, { weight: 0 }, 'SY_INVALID_BODY'],
      ['PATCH', '/v1/vhosts/strict.test', '{"maxBodyBytes": ', 'SY_BAD_REQUEST'],
      ['PATCH', '/v1/vhosts/strict.test', '{"__proto__": {"x": 1}}', 'SY_BAD_REQUEST'],
      ['PATCH', '/v1/vhosts/strict.test', { balancer: 'no-such-balancer' }, 'SY_UNKNOWN_BALANCER'],
    ];
    for (const [method, path, body, code] of cases) {
      const reply = await call(p, method, path, { body });
      assert.equal(reply.status, 400, `${method} ${path} ${JSON.stringify(body)}`);
      assert.equal(reply.body.error.code, code, `${method} ${path} ${JSON.stringify(body)}`);
    }
    const badQuery = await call(p, 'GET', '/v1/vhosts?limit=abc');
    assert.equal(badQuery.body.error.code, 'SY_INVALID_BODY');
    const unknownQuery = await call(p, 'GET', '/v1/vhosts?limt=5');
    assert.equal(unknownQuery.body.error.code, 'SY_INVALID_BODY');
    // Nothing was applied by the refused requests.
    const host = await call(p, 'GET', '/v1/vhosts/strict.test');
    assert.equal(host.body.maxBodyBytes, null);
    assert.equal(host.body.balancer, 'wrr');
  });

  test('a node added by the API serves traffic, can be drained, undrained, re-weighted and deleted', async () => {
    const p = rig.adminPort;
    const added = await call(p, 'POST', '/v1/vhosts/api.test/nodes', { body: { address: a.address, weight: 1 } });
    assert.equal(added.status, 201);
    assert.equal(added.body.source, 'admin');
    assert.equal(added.headers.location, `/v1/vhosts/api.test/nodes/${encodeURIComponent(a.address)}`);
    await call(p, 'POST', '/v1/vhosts/api.test/nodes', { body: { address: b.address, protocol: 'http' } });
    const dup = await call(p, 'POST', '/v1/vhosts/api.test/nodes', { body: { address: b.address } });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error.code, 'SY_NODE_EXISTS');
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await request(rig.httpPort, { host: 'api.test' })).text);
    assert.deepEqual([...seen].sort(), ['a', 'b']);

    const drained = await call(p, 'PATCH', `/v1/vhosts/api.test/nodes/${a.address}`, { body: { state: 'draining' } });
    assert.equal(drained.status, 200);
    assert.equal(drained.body.state, 'draining');
    for (let i = 0; i < 4; i++) assert.equal((await request(rig.httpPort, { host: 'api.test' })).text, 'b');
    // Held: the drained node stays in the table, out of rotation.
    await new Promise((r) => setTimeout(r, 20));
    const host = await call(p, 'GET', '/v1/vhosts/api.test');
    assert.deepEqual(
      host.body.nodes.map((n: { address: string; state: string }) => [n.address, n.state]),
      [
        [a.address, 'draining'],
        [b.address, 'active'],
      ],
    );
    await call(p, 'PATCH', `/v1/vhosts/api.test/nodes/${a.address}`, { body: { state: 'active', weight: 3 } });
    const counts = { a: 0, b: 0 } as Record<string, number>;
    for (let i = 0; i < 8; i++) counts[(await request(rig.httpPort, { host: 'api.test' })).text]!++;
    assert.deepEqual(counts, { a: 6, b: 2 });

    const deleted = await call(p, 'DELETE', `/v1/vhosts/api.test/nodes/${a.address}`);
    assert.equal(deleted.status, 202);
    await new Promise((r) => setTimeout(r, 20));
    const after = await call(p, 'GET', '/v1/vhosts/api.test');
    assert.deepEqual(
      after.body.nodes.map((n: { address: string }) => n.address),
      [b.address],
    );
    const missing = await call(p, 'PATCH', `/v1/vhosts/api.test/nodes/${a.address}`, { body: { state: 'active' } });
    assert.equal(missing.body.error.code, 'SY_NO_NODE');
  });

  test('DELETE on a host drains and removes every node and clears its policy', async () => {
    const p = rig.adminPort;
    rig.router.upsertNode(httpNode('gone.test', a.address));
    await call(p, 'POST', '/v1/vhosts/gone.test/nodes', { body: { address: b.address } });
    await call(p, 'PATCH', '/v1/vhosts/gone.test', { body: { maintenance: { enabled: false }, maxBodyBytes: 10 } });
    const deleted = await call(p, 'DELETE', '/v1/vhosts/gone.test');
    assert.equal(deleted.status, 202);
    assert.equal(deleted.body.draining, 2);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal((await call(p, 'GET', '/v1/vhosts/gone.test')).body.error.code, 'SY_NO_VHOST');
    assert.equal((await request(rig.httpPort, { host: 'gone.test' })).status, 404);
  });

  test('an admin node with a TTL is drained and removed when the TTL passes', async () => {
    let now = 1_000_000;
    const timed = await startAdminRig({ router: { clock: () => now } });
    try {
      const added = await call(timed.adminPort, 'POST', '/v1/vhosts/ttl.test/nodes', {
        body: { address: a.address, ttlSeconds: 5 },
      });
      assert.equal(added.body.expiresAt, 1_005_000);
      now += 4_999;
      timed.router.ops.operator.sweep();
      assert.equal(timed.router.table.get('ttl.test')?.nodes.length, 1);
      now += 1;
      timed.router.ops.operator.sweep();
      await new Promise((r) => setTimeout(r, 10));
      assert.equal(timed.router.table.get('ttl.test'), undefined);
    } finally {
      await timed.close();
    }
  });

  test('If-Match with a stale ETag is 412 SY_VERSION_MISMATCH; the current one is accepted', async () => {
    rig.router.upsertNode(httpNode('etag.test', a.address));
    const p = rig.adminPort;
    const first = await call(p, 'GET', '/v1/vhosts/etag.test');
    const etag = first.headers.etag as string;
    assert.match(etag, /^"\d+\.\d+"$/);
    const ok = await call(p, 'PATCH', '/v1/vhosts/etag.test', {
      body: { maxBodyBytes: 100 },
      headers: { 'if-match': etag },
    });
    assert.equal(ok.status, 200);
    assert.notEqual(ok.headers.etag, etag);
    const stale = await call(p, 'PATCH', '/v1/vhosts/etag.test', {
      body: { maxBodyBytes: 5 },
      headers: { 'if-match': etag },
    });
    assert.equal(stale.status, 412);
    assert.equal(stale.body.error.code, 'SY_VERSION_MISMATCH');
    const star = await call(p, 'PATCH', '/v1/vhosts/etag.test', {
      body: { maxBodyBytes: 5 },
      headers: { 'if-match': '*' },
    });
    assert.equal(star.status, 200);
    // A change to another host does not make this host's ETag stale.
    const current = star.headers.etag as string;
    rig.router.upsertNode(httpNode('other.test', b.address));
    const still = await call(p, 'PATCH', '/v1/vhosts/etag.test', {
      body: { maxBodyBytes: 6 },
      headers: { 'if-match': current },
    });
    assert.equal(still.status, 200);
  });

  test('maintenance mode answers the custom page; the body limit answers 413 SY_BODY_TOO_LARGE', async () => {
    rig.router.upsertNode(httpNode('policy.test', a.address));
    const p = rig.adminPort;
    await call(p, 'PATCH', '/v1/vhosts/policy.test', { body: { maxBodyBytes: 8 } });
    const small = await request(rig.httpPort, { host: 'policy.test', method: 'POST', body: '12345678' });
    assert.equal(small.status, 200);
    const big = await request(rig.httpPort, { host: 'policy.test', method: 'POST', body: '123456789' });
    assert.equal(big.status, 413);
    assert.equal(big.headers['x-switchyard-error'], 'SY_BODY_TOO_LARGE');
    const chunked = await request(rig.httpPort, {
      host: 'policy.test',
      method: 'POST',
      body: 'x'.repeat(64),
      headers: { 'transfer-encoding': 'chunked' },
    });
    assert.equal(chunked.status, 413);

    await call(p, 'PATCH', '/v1/vhosts/policy.test', {
      body: { maintenance: { enabled: true, status: 503, body: 'back soon', contentType: 'text/plain' } },
    });
    const page = await request(rig.httpPort, { host: 'policy.test' });
    assert.equal(page.status, 503);
    assert.equal(page.text, 'back soon');
    assert.equal(page.headers['content-type'], 'text/plain');
    assert.equal(page.headers['x-switchyard-error'], 'SY_MAINTENANCE');
    // The page survives the host losing every node.
    rig.router.removeNode('policy.test', a.address);
    assert.equal((await request(rig.httpPort, { host: 'policy.test' })).text, 'back soon');
    await call(p, 'PATCH', '/v1/vhosts/policy.test', { body: { maintenance: { enabled: false } } });
    assert.equal((await request(rig.httpPort, { host: 'policy.test' })).status, 404);
  });

  test('the explain endpoint names the rule, the candidates in order and the pick, without advancing the balancer', async () => {
    rig.router.upsertNode(httpNode('explain.test', a.address, 1));
    rig.router.upsertNode(httpNode('explain.test', b.address, 3));
    rig.router.upsertNode({ ...httpNode('explain.test', '127.0.0.1:9', 1), state: 'draining' });
    const p = rig.adminPort;
    const first = await call(p, 'GET', '/v1/route?host=Explain.Test.&path=/x&client=10.0.0.1');
    assert.equal(first.status, 200);
    assert.equal(first.body.host.key, 'explain.test');
    assert.deepEqual(first.body.match, { rule: 'host', key: 'explain.test' });
    assert.equal(first.body.balancer.name, 'wrr');
    assert.equal(first.body.outcome.action, 'proxy');
    assert.deepEqual(
      first.body.candidates.map((c: { address: string }) => c.address),
      [first.body.outcome.node, ...first.body.outcome.fallbacks],
    );
    const draining = first.body.nodes.find((n: { address: string }) => n.address === '127.0.0.1:9');
    assert.equal(draining.excluded, 'draining');
    // Explaining twice gives the same pick (no state advanced); the real request then goes there.
    const second = await call(p, 'GET', '/v1/route?host=explain.test&path=/x');
    assert.equal(second.body.outcome.node, first.body.outcome.node);
    const served = await request(rig.httpPort, { host: 'explain.test' });
    assert.equal(`127.0.0.1:${served.text === 'a' ? a.port : b.port}`, first.body.outcome.node);

    const unknown = await call(p, 'GET', '/v1/route?host=missing.test');
    assert.deepEqual([unknown.body.outcome.status, unknown.body.outcome.code], [404, 'SY_NO_VHOST']);
    const bad = await call(p, 'GET', '/v1/route?host=bad%20host');
    assert.deepEqual([bad.body.outcome.status, bad.body.outcome.code], [400, 'SY_BAD_HOST']);
    rig.router.upsertNode({ ...httpNode('dead.test', a.address), state: 'draining' });
    const dead = await call(p, 'GET', '/v1/route?host=dead.test');
    assert.deepEqual([dead.body.outcome.status, dead.body.outcome.code], [503, 'SY_NO_LIVE_NODE']);
    const missingHost = await call(p, 'GET', '/v1/route');
    assert.equal(missingHost.body.error.code, 'SY_INVALID_BODY');
  });

  test('openapi.json is generated from the route schemas', async () => {
    const doc = (await call(rig.adminPort, 'GET', '/openapi.json')).body;
    assert.equal(doc.openapi, '3.1.0');
    for (const path of [
      '/v1/vhosts',
      '/v1/vhosts/{host}',
      '/v1/vhosts/{host}/nodes/{address}',
      '/v1/route',
      '/v1/events',
    ]) {
      assert.ok(doc.paths[path] !== undefined, path);
    }
    const patch = doc.paths['/v1/vhosts/{host}'].patch;
    assert.equal(patch.requestBody.content['application/json'].schema.additionalProperties, false);
    assert.ok('maintenance' in patch.requestBody.content['application/json'].schema.properties);
  });

  test('healthz and readyz answer without a token', async () => {
    assert.equal((await call(rig.adminPort, 'GET', '/healthz')).status, 200);
    assert.equal((await call(rig.adminPort, 'GET', '/readyz')).body.status, 'ready');
  });
});

describe('admin API auth', () => {
  test('a missing or wrong token is 401 SY_UNAUTHORIZED, the read token cannot write (403 SY_FORBIDDEN)', async () => {
    const rig = await startAdminRig({ tokens: { admin: ADMIN_TOKEN, read: READ_TOKEN } });
    try {
      const p = rig.adminPort;
      const none = await call(p, 'GET', '/v1/vhosts');
      assert.equal(none.status, 401);
      assert.equal(none.body.error.code, 'SY_UNAUTHORIZED');
      assert.equal(none.headers['www-authenticate'], 'Bearer');
      assert.equal((await call(p, 'GET', '/v1/vhosts', { token: 'wrong-token-0123456789' })).status, 401);
      assert.equal((await call(p, 'GET', '/metrics')).status, 401);
      assert.equal((await call(p, 'GET', '/v1/vhosts', { token: READ_TOKEN })).status, 200);
      assert.equal((await call(p, 'GET', '/v1/vhosts', { token: ADMIN_TOKEN })).status, 200);
      const write = { body: { address: '127.0.0.1:9' } };
      const forbidden = await call(p, 'POST', '/v1/vhosts/auth.test/nodes', { ...write, token: READ_TOKEN });
      assert.equal(forbidden.status, 403);
      assert.equal(forbidden.body.error.code, 'SY_FORBIDDEN');
      assert.equal((await call(p, 'POST', '/v1/vhosts/auth.test/nodes', write)).status, 401);
      assert.equal((await call(p, 'POST', '/v1/vhosts/auth.test/nodes', { ...write, token: ADMIN_TOKEN })).status, 201);
      assert.equal((await call(p, 'GET', '/healthz')).status, 200);
    } finally {
      await rig.close();
    }
  });

  test('without a token, writes need a loopback Host (no DNS rebinding)', async () => {
    const rig = await startAdminRig();
    try {
      const body = { address: '127.0.0.1:9' };
      const rebound = await call(rig.adminPort, 'POST', '/v1/vhosts/x.test/nodes', {
        body,
        headers: { host: 'evil.example:9090' },
      });
      assert.equal(rebound.status, 403);
      assert.equal(rebound.body.error.code, 'SY_FORBIDDEN');
      assert.equal((await call(rig.adminPort, 'POST', '/v1/vhosts/x.test/nodes', { body })).status, 201);
    } finally {
      await rig.close();
    }
  });
});
