/**
 * The admin listener (fastify; default 127.0.0.1:9090): `GET /healthz` (the process answers),
 * `GET /readyz` (200 once every listener is bound, 503 before and while shutting down) and
 * `GET /v1/vhosts` (hosts and their nodes with runtime counters). Long-lived: `start()` binds,
 * `close()` is safe twice.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { RouterError } from './errors.js';
import { formatAddress, parseListenAddress } from './listen-address.js';
import type { Router } from './router.js';
import { type HostEntry, STATIC_KEY } from './vhost-table.js';

export interface AdminServerOptions {
  /** Listen address. Default 127.0.0.1:9090. */
  readonly listen?: string;
  readonly router: Router;
  /** Readiness of the whole process (every listener bound and not shutting down). */
  readonly ready: () => boolean;
  /** Extra stats sections (e.g. the subscription server's counters). */
  readonly stats?: () => Record<string, unknown>;
  readonly logger?: Logger;
}

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
    const app = Fastify({ logger: false });
    this.app = app;
    const router = this.options.router;
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_req, reply) => {
      const ready = this.options.ready();
      reply.code(ready ? 200 : 503);
      return { status: ready ? 'ready' : 'not-ready' };
    });
    app.get('/v1/vhosts', async () => {
      const hosts = [...router.table.entries()].map((entry) => this.describe(entry));
      const staticEntry = router.table.get(STATIC_KEY);
      return {
        version: router.table.version,
        hosts,
        static: staticEntry === undefined ? [] : this.describe(staticEntry).nodes,
      };
    });
    app.get('/v1/stats', async () => ({ router: router.stats(), ...(this.options.stats?.() ?? {}) }));
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

  private describe(entry: HostEntry) {
    const router = this.options.router;
    return {
      host: entry.key,
      nodes: entry.nodes.map((node) => {
        const stats = router.runtime.stats(node.address);
        return {
          address: node.address,
          protocol: node.protocol,
          weight: node.weight,
          state: node.state,
          source: node.source,
          backup: node.backup,
          modifier1: node.modifier1,
          modifier2: node.modifier2,
          inFlight: router.runtime.inFlightFor(entry.key, node.address),
          requests: stats?.requests ?? 0,
          failures: stats?.failures ?? 0,
        };
      }),
    };
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
