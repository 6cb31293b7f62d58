/**
 * The Router's configuration (every field optional but `http`; defaults in the field comments) and its
 * request counters. Validated by the caller (the CLI's zod schemas); the Router resolves defaults once.
 */
import type { Logger } from 'pino';
import type { Balancer } from './balancer.js';
import type { BalancingOptions } from './balancing.js';
import type { CertificateFiles, CertificateStoreOptions } from './certificate-store.js';
import type { ClientLimitOptions } from './client-limits.js';
import type { ForwardingOptions } from './forwarding-policy.js';
import type { HttpsListenerSpec } from './https-listener.js';
import type { LookupOptions } from './lookup-rules.js';
import type { NodeRuntime } from './node-runtime.js';
import type { RouterOperationsOptions } from './router-operations.js';

/** Client limits and timeouts: client-limits.ts (defaults table); forwarded headers: forwarding-policy.ts. */
export interface RouterOptions extends ClientLimitOptions, ForwardingOptions {
  /** Time for a node to send its response head once the request is fully written, ms; 0 = none. Default 60000. */
  readonly responseHeaderTimeoutMs?: number;
  /** Listen addresses (`host:port`, `:port`, `[::1]:port`). */
  readonly http: readonly string[];
  readonly logger?: Logger;
  /** ms clock, injected for tests. Default Date.now. */
  readonly clock?: () => number;
  /** Upstream connect timeout, ms. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** Longest upstream silence once connected (waiting for the response or between body bytes), ms. Default 60000. */
  readonly upstreamTimeoutMs?: number;
  /** Most nodes one request may try. Default 3 (as uWSGI). */
  readonly maxAttempts?: number;
  /** Largest chunked body buffered for a uwsgi node, bytes. Default 16 MiB. */
  readonly maxBufferedBody?: number;
  /** SERVER_NAME for uwsgi nodes. Default: this machine's hostname (as uWSGI). */
  readonly serverName?: string;
  /** Extra uwsgi vars. */
  readonly extraVars?: readonly (readonly [string, string])[];
  /** Grace period for in-flight requests on close, ms. Default 10000. */
  readonly shutdownGraceMs?: number;
  /** Retry-After seconds on 503. Default 1. */
  readonly retryAfterSeconds?: number;
  /** Default balancer instance; prefer `balancing.balancer` (a name). Default smooth weighted round-robin. */
  readonly balancer?: Balancer;
  /** Balancer choice, retry budget, outlier ejection, slow start (balancing.ts). */
  readonly balancing?: BalancingOptions;
  /** Runtime node state (cluster-runtime.ts in a `--workers` primary). Default: a new NodeRuntime. */
  readonly runtime?: NodeRuntime;
  /** HTTPS listeners (HTTP/1.1 over TLS 1.2+, https-listener.ts). Default none. */
  readonly https?: readonly HttpsListenerSpec[];
  /** Default certificate of HTTPS listeners that have none of their own. */
  readonly defaultCertificate?: CertificateFiles;
  /** Per-host SNI certificates (options, directory); subscriptions add theirs via `router.certificates`. */
  readonly certificates?: CertificateStoreOptions;
  /** Ask every HTTPS client for a certificate (needed when subscriptions may bring an `sni_ca`). Default false. */
  readonly requestClientCertificates?: boolean;
  /** WebSocket tunnel idle timeout (no byte either way), ms; 0 = none. Default 300000. */
  readonly tunnelIdleTimeoutMs?: number;
  /** How long a draining node's WebSocket tunnels keep running before 1001 Going Away, ms. Default 30000. */
  readonly drainDeadlineMs?: number;
  /** Per-host-key `drainDeadlineMs` overrides, ms. */
  readonly hostDrainDeadlines?: ReadonlyMap<string, number>;
  /** uWSGI lookup extensions: dotsplit, mountpoints, fallback key (lookup-rules.ts). Default none. */
  readonly lookup?: LookupOptions;
  /** `--http-modifier1/2`: when non-zero, replaces every uwsgi node's modifier (uWSGI semantics). Default 0. */
  readonly modifier1?: number;
  readonly modifier2?: number;
  /**
   * `--http-enable-proxy-protocol`: every client connection (HTTP and HTTPS listeners) must start with a
   * PROXY protocol v1/v2 header, whose source becomes the client address (proxy-protocol.ts). Default off.
   */
  readonly proxyProtocol?: boolean;
  /** Operator surface: per-host policies, event log, metrics top-N, balancer catalog (router-operations.ts). */
  readonly operations?: RouterOperationsOptions;
}

export interface RouterStats {
  requests: number;
  responses: number;
  errors: Record<string, number>;
  retries: number;
  upstreamFailures: number;
}
