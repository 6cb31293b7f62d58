/**
 * The admin REST API under /v1 (fastify routes; JSON; errors `{ error: { code, message } }` with the
 * status `statusForError` gives the code):
 *   GET    /v1/vhosts?prefix=&limit=&cursor=      page of hosts in key order (sorted index: O(log n + limit))
 *   GET    /v1/vhosts/:host                       one host: policy, traffic, nodes (404 SY_NO_VHOST)
 *   PATCH  /v1/vhosts/:host                       {balancer?, maxBodyBytes?, maintenance?}
 *   DELETE /v1/vhosts/:host                       drain and remove every node, clear the policy
 *   POST   /v1/vhosts/:host/nodes                 {address, protocol, weight, ttlSeconds?} → 201
 *   PATCH  /v1/vhosts/:host/nodes/:address        {state?: active|draining, weight?: n|null}
 *   DELETE /v1/vhosts/:host/nodes/:address        drain, then remove → 202
 *   GET    /v1/route?host=&path=&client=&header=  explain (route-explainer.ts)
 *   GET    /v1/stats                              global counters
 * Reads carry `ETag: "<version>"`; writes accept `If-Match` with a host ETag (or the list's, or `*`) and
 * answer 412 SY_VERSION_MISMATCH when it is stale. Scopes: GET = read, anything else = admin
 * (admin-auth.ts). Write semantics and precedence over subscriptions: operator-control.ts.
 */
import { parseHostKey, parseMountpointKey } from '@switchyard/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import {
  HostParams,
  NewNodeBody,
  NodeParams,
  NodePatchBody,
  type RouteParts,
  RouteQuery,
  routeDoc,
  VhostListQuery,
} from './admin-schemas.js';
import { describeHost, describeNode, hostVersion, type LastAnnounce, tableVersion } from './admin-views.js';
import { RouterError } from './errors.js';
import { HostPolicyPatch } from './host-policy.js';
import { explainRoute } from './route-explainer.js';
import type { Router } from './router.js';
import { STATIC_KEY } from './vhost-table.js';

export interface AdminApiOptions {
  readonly router: Router;
  readonly lastAnnounce: LastAnnounce;
  /** Extra sections of GET /v1/stats (subscription server, registry, access log...). */
  readonly stats: () => Record<string, unknown>;
}

export function registerAdminApi(app: FastifyInstance, options: AdminApiOptions): void {
  const { router, lastAnnounce } = options;
  const table = router.table;

  /** The table key a path parameter names: as given when known, else normalised. */
  const keyOf = (param: string): string => {
    if (param === STATIC_KEY || table.get(param) !== undefined || router.ops.policies.peek(param) !== undefined) {
      return param;
    }
    return parseHostKey(param, { allowWildcard: true })?.key ?? param.toLowerCase();
  };
  const known = (key: string): boolean =>
    table.get(key) !== undefined || router.ops.policies.peek(key)?.policy !== undefined;
  const requireHost = (key: string): void => {
    if (!known(key)) throw new RouterError('SY_NO_VHOST', `no virtual host ${key}`, { source: 'admin' });
  };
  /** 412 unless If-Match names the host's current version, the table's, or `*` (host exists). */
  const checkIfMatch = (request: FastifyRequest, key: string): void => {
    const header = request.headers['if-match'];
    if (header === undefined) return;
    const tags = header.split(',').map((t) => t.trim().replace(/^W\//, ''));
    const current = [`"${hostVersion(router, key, table.get(key))}"`, `"${tableVersion(router)}"`];
    if (tags.includes('*') ? known(key) : tags.some((t) => current.includes(t))) return;
    throw new RouterError('SY_VERSION_MISMATCH', `If-Match ${header} is stale (now ${current[0]})`, {
      source: 'admin',
    });
  };
  const hostReply = (reply: FastifyReply, key: string, status = 200) => {
    const entry = table.get(key);
    reply.code(status).header('etag', `"${hostVersion(router, key, entry)}"`);
    return describeHost(router, key, entry, lastAnnounce);
  };
  const schema = (summary: string, parts: RouteParts, tags = ['vhosts']) => routeDoc(summary, parts, tags);

  app.get(
    '/v1/vhosts',
    { schema: schema('List virtual hosts, a page at a time, in key order', { querystring: VhostListQuery }) },
    async (request, reply) => {
      const q = request.query as z.output<typeof VhostListQuery>;
      const page = table.keys.page({ prefix: q.prefix, after: q.cursor, limit: q.limit ?? 100 });
      const staticEntry = table.get(STATIC_KEY);
      reply.header('etag', `"${tableVersion(router)}"`);
      return {
        version: tableVersion(router),
        total: table.keys.size,
        count: page.keys.length,
        next: page.next ?? null,
        hosts: page.keys.map((key) => describeHost(router, key, table.get(key), lastAnnounce)),
        static:
          staticEntry === undefined
            ? []
            : staticEntry.nodes.map((n) => describeNode(router, STATIC_KEY, n, lastAnnounce)),
      };
    },
  );

  app.get(
    '/v1/vhosts/:host',
    { schema: schema('One virtual host: policy, traffic and nodes', { params: HostParams }) },
    async (request, reply) => {
      const key = keyOf((request.params as z.output<typeof HostParams>).host);
      requireHost(key);
      return hostReply(reply, key);
    },
  );

  app.patch(
    '/v1/vhosts/:host',
    {
      schema: schema('Set host policy: balancer, body limit, maintenance page', {
        params: HostParams,
        body: HostPolicyPatch,
      }),
    },
    async (request, reply) => {
      const key = keyOf((request.params as z.output<typeof HostParams>).host);
      requireHost(key);
      checkIfMatch(request, key);
      const patch = request.body as z.output<typeof HostPolicyPatch>;
      if (patch.balancer !== undefined) {
        // Throws SY_UNKNOWN_BALANCER (400) before anything changed.
        router.balancing.setHostBalancer(key, patch.balancer ?? undefined, 'admin');
      }
      const policy = router.ops.policies.apply(key, patch);
      router.ops.events.record({
        type: 'policy',
        host: key,
        source: 'admin',
        detail: JSON.stringify({
          balancer: router.balancing.balancerFor(key).name,
          maxBodyBytes: policy.maxBodyBytes ?? null,
          maintenance: policy.maintenance !== undefined,
        }),
      });
      return hostReply(reply, key);
    },
  );

  app.delete(
    '/v1/vhosts/:host',
    { schema: schema('Drain and remove every node of a host, clear its policy', { params: HostParams }) },
    async (request, reply) => {
      const key = keyOf((request.params as z.output<typeof HostParams>).host);
      requireHost(key);
      checkIfMatch(request, key);
      const draining = router.ops.operator.deleteHost(key);
      if (router.ops.policies.clear(key)) {
        router.ops.events.record({ type: 'policy', host: key, source: 'admin', detail: 'cleared' });
      }
      router.balancing.setHostBalancer(key, undefined, 'admin');
      reply.code(202);
      return { host: key, draining };
    },
  );

  app.post(
    '/v1/vhosts/:host/nodes',
    { schema: schema('Add a node (lives until deleted or its TTL)', { params: HostParams, body: NewNodeBody }) },
    async (request, reply) => {
      const param = (request.params as z.output<typeof HostParams>).host;
      const key = keyOf(param);
      if (key !== STATIC_KEY && parseHostKey(key, { allowWildcard: true }) === undefined) {
        if (parseMountpointKey(key) === undefined) {
          throw new RouterError('SY_INVALID_BODY', `"${param}" is not a host key`, { source: 'admin' });
        }
      }
      if (known(key)) checkIfMatch(request, key);
      const body = request.body as z.output<typeof NewNodeBody>;
      const node = router.ops.operator.addNode(key, body);
      reply
        .code(201)
        .header('location', `/v1/vhosts/${encodeURIComponent(key)}/nodes/${encodeURIComponent(node.address)}`)
        .header('etag', `"${hostVersion(router, key, table.get(key))}"`);
      return describeNode(router, key, node, lastAnnounce);
    },
  );

  app.patch(
    '/v1/vhosts/:host/nodes/:address',
    { schema: schema('Drain/undrain a node or override its weight', { params: NodeParams, body: NodePatchBody }) },
    async (request, reply) => {
      const params = request.params as z.output<typeof NodeParams>;
      const key = keyOf(params.host);
      requireHost(key);
      checkIfMatch(request, key);
      const node = router.ops.operator.patchNode(key, params.address, request.body as z.output<typeof NodePatchBody>);
      reply.header('etag', `"${hostVersion(router, key, table.get(key))}"`);
      return describeNode(router, key, node, lastAnnounce);
    },
  );

  app.delete(
    '/v1/vhosts/:host/nodes/:address',
    { schema: schema('Drain a node, then remove it', { params: NodeParams }) },
    async (request, reply) => {
      const params = request.params as z.output<typeof NodeParams>;
      const key = keyOf(params.host);
      requireHost(key);
      checkIfMatch(request, key);
      router.ops.operator.deleteNode(key, params.address);
      reply.code(202);
      return { host: key, address: params.address, draining: true };
    },
  );

  app.get(
    '/v1/route',
    {
      schema: schema('Explain how a request would be routed, without sending it', { querystring: RouteQuery }, [
        'explain',
      ]),
    },
    async (request) => {
      const q = request.query as z.output<typeof RouteQuery>;
      const headers: Record<string, string> = {};
      for (const line of q.header === undefined ? [] : Array.isArray(q.header) ? q.header : [q.header]) {
        const colon = line.indexOf(':');
        if (colon <= 0) throw new RouterError('SY_INVALID_BODY', 'header takes "Name: value"', { source: 'admin' });
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      return explainRoute(router, { host: q.host, path: q.path, client: q.client, headers });
    },
  );

  app.get('/v1/stats', { schema: schema('Global counters', {}, ['stats']) }, async () => {
    const m = router.ops.metrics;
    return {
      router: router.stats(),
      balancing: router.balancing.stats(),
      requests: {
        total: m.total,
        ok: m.ok,
        outcomes: Object.fromEntries(m.outcomes),
        bytesIn: m.bytesIn,
        bytesOut: m.bytesOut,
      },
      events: { last: router.ops.events.last, listeners: router.ops.events.listenerCount },
      websockets: router.tunnels.stats(),
      certificates: { loaded: router.certificates.all().length, loadFailures: router.certificates.loadFailures },
      ...options.stats(),
    };
  });
}
