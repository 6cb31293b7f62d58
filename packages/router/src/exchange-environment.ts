/**
 * What a ProxyExchange needs from the router that runs it: the shared balancer, runtime state and pool,
 * settings, and callbacks for accounting. The Router implements it; tests can supply their own.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Balancer } from './balancer.js';
import type { RouterError, UpstreamError } from './errors.js';
import type { ForwardingPolicy } from './forwarding-policy.js';
import type { NodeRuntime } from './node-runtime.js';
import type { ProxyExchange } from './proxy-exchange.js';
import type { UpstreamPhase, UpstreamTimeouts } from './upstream-connection.js';
import type { UpstreamPool } from './upstream-pool.js';
import type { VhostNode } from './vhost-table.js';

export interface ExchangeEnvironment {
  readonly balancer: Balancer;
  readonly runtime: NodeRuntime;
  readonly pool: UpstreamPool;
  readonly timeouts: UpstreamTimeouts;
  /** Most nodes one request may try. */
  readonly maxAttempts: number;
  /** Largest chunked request body buffered for a uwsgi node, bytes. */
  readonly maxBufferedBody: number;
  /** SERVER_NAME sent to uwsgi nodes. */
  readonly serverName: string;
  /** True while the router shuts down: responses carry `Connection: close`. */
  readonly draining: boolean;
  /** Extra uwsgi vars (`--http-var`). */
  readonly extraVars: readonly (readonly [string, string])[];
  /** Forwarded headers for nodes (X-Forwarded-*, Forwarded; trusted proxies). */
  readonly forwarding: ForwardingPolicy;
  /** `--http-modifier1/2`: a non-zero value replaces the node's modifier (uWSGI). Absent = 0. */
  readonly modifier1?: number;
  readonly modifier2?: number;
  /** The balancer of host `key` (per-host choice or the default). */
  balancerFor(key: string): Balancer;
  /** ms clock (attempt latency). */
  now(): number;
  /** A node answered an attempt with a response head, `latencyMs` after dispatch (latency, ejection). */
  nodeResponded(key: string, node: VhostNode, status: number, latencyMs: number): void;
  /**
   * May the exchange retry on another node after a failure in `phase`? A connect failure always may (it
   * is failover: nothing reached the node); otherwise the retry budget decides, and is withdrawn from.
   */
  retryAllowed(key: string, phase: UpstreamPhase): boolean;
  /** An attempt on (key, address) ended, whatever the outcome. */
  nodeEnded(key: string, address: string): void;
  /** A node failed an attempt. */
  nodeFailed(key: string, node: VhostNode, error: UpstreamError): void;
  /** The exchange moves on from `node` to the next candidate. */
  retried(key: string, node: VhostNode): void;
  /** Writes a coded error response (and logs it once); returns the body bytes written. */
  respondError(req: IncomingMessage, res: ServerResponse, error: RouterError, hostKey: string | undefined): number;
  /** The exchange is over (error undefined on success). */
  exchangeEnded(exchange: ProxyExchange, error: RouterError | undefined): void;
}
