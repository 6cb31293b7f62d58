/**
 * The admin listener (fastify; default 127.0.0.1:9090): `GET /healthz` (the process answers),
 * `GET /readyz` (200 once every listener is bound, 503 before and while shutting down), the /v1 REST
 * API (admin-api.ts), `GET /v1/events` (admin-events.ts), `GET /metrics` (metrics-exporter.ts),
 * `GET /openapi.json` (admin-openapi.ts) and the dashboard at `/` (admin-dashboard.ts).
 * Long-lived: `start()` binds, `close()` is safe twice.
 *
 * Every error is `{ error: { code: "SY_...", message } }` with `statusForError(code)`: schema failures
 * SY_INVALID_BODY, malformed JSON and other malformed requests SY_BAD_REQUEST, an oversized body
 * SY_BODY_TOO_LARGE, an unknown route SY_NOT_FOUND. Auth (admin-auth.ts) runs first on every route but
 * /healthz, /readyz, /openapi.json and the dashboard files. With no token configured, writes are also
 * refused (403 SY_FORBIDDEN) unless the Host header is a loopback name, so a web page cannot drive a
 * tokenless admin API through DNS rebinding.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { registerAdminApi } from './admin-api.js';
import { AdminAuth, type AdminScope, type AdminTokens } from './admin-auth.js';
import { registerDashboard } from './admin-dashboard.js';
import { EVENTS_SUBPROTOCOL, registerEventsRoute } from './admin-events.js';
import { collectRoutes, openApiDocument } from './admin-openapi.js';
import { routeDoc, zodValidatorCompiler } from './admin-schemas.js';
import type { LastAnnounce } from './admin-views.js';
import { codeOfError, RouterError, statusForError } from './errors.js';
import { formatAddress, parseListenAddress } from './listen-address.js';
import { type MetricFamily, MetricsExporter, type RemoteFamilies } from './metrics-exporter.js';
import type { Router } from './router.js';

export interface AdminServerOptions {
  /** Listen address. Default 127.0.0.1:9090. */
  readonly listen?: string;
  readonly router: Router;
  /** Readiness of the whole process (every listener bound and not shutting down). */
  readonly ready: () => boolean;
  /** Extra stats sections (e.g. the subscription server's counters). */
  readonly stats?: () => Record<string, unknown>;
  readonly logger?: Logger;
  /** Bearer tokens (admin and read-only scopes); none = open API. */
  readonly tokens?: AdminTokens;
  /** When a subscribed node last announced itself (the registry), for `lastAnnounceAgeMs`. */
  readonly lastAnnounce?: LastAnnounce;
  /** Extra Prometheus families (the subscription server's counters). */
  readonly metrics?: () => readonly MetricFamily[];
  /** Router families of the worker processes serving traffic (`--workers`), summed into /metrics. */
  readonly remoteMetrics?: RemoteFamilies;
  /** Version in /openapi.json. */
  readonly version?: string;
}

const OPEN_ROUTES = new Set(['/healthz', '/readyz', '/openapi.json', '/', '/ui/:file']);
const LOOPBACK_HOST = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d{1,5})?$/i;

export class AdminServer {
  private readonly options: AdminServerOptions;
  private app: FastifyInstance | undefined;
  private closed: Promise<void> | undefined;

  constructor(options: AdminServerOptions) {
    this.options = options;
  }

  async start(): Promise<void> {
    const text = this.options.listen ?? '127.0.0.1:9090';
    const bind = parseListenAddress(text);
    if (bind === undefined) throw new RouterError('SY_BAD_CONFIG', `invalid admin address "${text}" (--admin)`);
    const app = Fastify({ logger: false, bodyLimit: 256 * 1024 });
    this.app = app;
    await this.configure(app);
    try {
      await app.listen({ host: bind.host, port: bind.port });
    } catch (error) {
      await app.close();
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new RouterError(
        'SY_BIND_FAILED',
        `cannot listen on ${formatAddress(bind.host, bind.port)} (--admin): ${code}`,
        {
          cause: error,
        },
      );
    }
  }

  /** Routes, hooks and error mapping. */
  private async configure(app: FastifyInstance): Promise<void> {
    const o = this.options;
    const router = o.router;
    const auth = new AdminAuth(o.tokens);
    const metrics = new MetricsExporter(router, o.metrics, o.remoteMetrics);
    app.setValidatorCompiler(zodValidatorCompiler);
    // fastify's JSON parser (prototype-poisoning checks kept), but an empty body (DELETE sent with a
    // JSON content type) is "no body" rather than a 400; the route's schema decides whether it needs one.
    const json = app.getDefaultJsonParser('error', 'error');
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      if (body === '') done(null, undefined);
      else json(request, body as string, done);
    });
    app.setErrorHandler((error, _request, reply) => {
      const coded = toAdminError(error);
      const code = codeOfError(coded);
      if (code === 'SY_UNAUTHORIZED') reply.header('www-authenticate', 'Bearer');
      reply.code(statusForError(coded)).type('application/json');
      return { error: { code, message: coded.message } };
    });
    app.setNotFoundHandler((request, reply) => {
      reply.code(404).type('application/json');
      return {
        error: { code: 'SY_NOT_FOUND', message: `no admin route ${request.method} ${request.url.split('?')[0]}` },
      };
    });
    // Registered before the auth hook so that `request.ws` is set when the hook runs.
    await app.register(websocket, {
      options: {
        maxPayload: 4096,
        handleProtocols: (protocols: Set<string>) => (protocols.has(EVENTS_SUBPROTOCOL) ? EVENTS_SUBPROTOCOL : false),
        verifyClient: (
          info: { req: IncomingMessage },
          next: (ok: boolean, status?: number, message?: string, headers?: Record<string, string>) => void,
        ) => {
          try {
            auth.require(authorizationOf(info.req.headers), 'read');
            next(true);
          } catch (error) {
            next(false, statusForError(error), codeOfError(error), { 'WWW-Authenticate': 'Bearer' });
          }
        },
      },
    });
    app.addHook('onRequest', async (request) => {
      const url = request.routeOptions.url;
      if (url !== undefined && OPEN_ROUTES.has(url)) return;
      // WebSocket upgrades are checked by `verifyClient` below: ws then answers 401 and closes the socket.
      if (request.ws && url === '/v1/events') return;
      const write = request.method !== 'GET' && request.method !== 'HEAD';
      const needed: AdminScope = write ? 'admin' : 'read';
      auth.require(authorization(request), needed);
      if (write && !auth.enabled && !LOOPBACK_HOST.test(request.headers.host ?? '')) {
        throw new RouterError('SY_FORBIDDEN', 'without an admin token, writes need a loopback Host', {
          source: 'admin',
        });
      }
    });
    const routes = collectRoutes(app);
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_req, reply) => {
      const ready = o.ready();
      reply.code(ready ? 200 : 503);
      return { status: ready ? 'ready' : 'not-ready' };
    });
    registerAdminApi(app, {
      router,
      lastAnnounce: o.lastAnnounce ?? (() => undefined),
      stats: () => ({
        ...(o.stats?.() ?? {}),
        accessLog:
          router.ops.accessLog === undefined
            ? null
            : { written: router.ops.accessLog.written, dropped: router.ops.accessLog.dropped },
      }),
    });
    registerEventsRoute(app, { events: router.ops.events });
    app.get('/metrics', { schema: routeDoc('Prometheus metrics', {}, ['metrics']) }, async (_req, reply) => {
      reply.type(metrics.contentType);
      return metrics.scrape();
    });
    app.get('/openapi.json', async () => openApiDocument(routes, o.version ?? '0.0.0'));
    await registerDashboard(app);
  }

  /** Bound address (after start). */
  address(): { address: string; port: number } | undefined {
    const info = this.app?.server.address();
    return info !== null && typeof info === 'object' ? { address: info.address, port: info.port } : undefined;
  }

  close(): Promise<void> {
    this.closed ??= this.app === undefined ? Promise.resolve() : this.app.close().then(() => undefined);
    return this.closed;
  }
}

/** The bearer token of a request: the Authorization header, or a `bearer.<base64url>` WS subprotocol. */
function authorization(request: FastifyRequest): string | undefined {
  return authorizationOf(request.headers);
}

function authorizationOf(headers: IncomingHttpHeaders): string | undefined {
  const header = headers.authorization;
  if (header !== undefined) return header;
  const protocols = headers['sec-websocket-protocol'];
  if (typeof protocols !== 'string') return undefined;
  for (const offered of protocols.split(',')) {
    const p = offered.trim();
    if (p.startsWith('bearer.')) return `Bearer ${Buffer.from(p.slice(7), 'base64url').toString('utf8')}`;
  }
  return undefined;
}

/** Any error thrown in a route or by fastify, as a coded error. */
function toAdminError(error: unknown): Error {
  if (error instanceof RouterError || codeOfError(error) !== 'SY_INTERNAL') return error as Error;
  const status = (error as { statusCode?: unknown }).statusCode;
  const message = error instanceof Error ? error.message : 'error';
  if (status === 413) return new RouterError('SY_BODY_TOO_LARGE', message, { source: 'admin' });
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new RouterError('SY_BAD_REQUEST', message, { source: 'admin' });
  }
  return new Error('internal error');
}
