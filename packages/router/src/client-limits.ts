/**
 * Limits and timeouts on the client side of the router, with their defaults (README "Limits and
 * timeouts" lists the same table and the CLI options):
 *
 * | option              | default  | on breach                                                       |
 * |---------------------|----------|-----------------------------------------------------------------|
 * | maxHeaderCount      | 100      | 431 SY_HEADERS_TOO_LARGE                                        |
 * | maxHeaderSize       | 16384 B  | 431 SY_HEADERS_TOO_LARGE (Node's name+value count, and our count of the whole head) |
 * | maxUriLength        | 8192 B   | 414 SY_URI_TOO_LONG                                             |
 * | maxBodySize         | 1 GiB    | 413 SY_BODY_TOO_LARGE (before dispatch for Content-Length)      |
 * | maxConnections      | 10000    | 503 SY_TOO_MANY_CONNECTIONS, connection closed                  |
 * | headersTimeoutMs    | 30000    | 408 SY_CLIENT_TIMEOUT (whole head, from its first byte)         |
 * | bodyTimeoutMs       | 60000    | 408 SY_CLIENT_TIMEOUT (silence while reading the body)          |
 * | keepAliveTimeoutMs  | 75000    | idle keep-alive connection closed silently                      |
 * | requestTimeoutMs    | 0 (off)  | 408 SY_CLIENT_TIMEOUT (whole request, head and body)            |
 *
 * 0 disables maxBodySize, maxConnections, bodyTimeoutMs and requestTimeoutMs. The keep-alive default
 * is above the 60 s idle timeout of common load balancers, so one in front never reuses a connection
 * we are closing. Node checks the header and request timeouts every `connectionsCheckingInterval`,
 * derived here as a fifth of the shortest of them (50 ms to 1 s), so a timeout fires at most 20 % late.
 */
import type http from 'node:http';
import { RouterError } from './errors.js';

export interface ClientLimitOptions {
  /** Most header fields per request (431 beyond). Default 100. */
  readonly maxHeaderCount?: number;
  /** Largest request head in bytes (431 beyond). Default 16384. */
  readonly maxHeaderSize?: number;
  /** Longest request target in bytes (414 beyond). Default 8192. */
  readonly maxUriLength?: number;
  /** Largest request body in bytes; 0 = no limit (413 beyond). Default 1 GiB. */
  readonly maxBodySize?: number;
  /** Most open client connections over all listeners; 0 = no limit. Default 10000. */
  readonly maxConnections?: number;
  /** Time allowed for a client to send the request head, ms. Default 30000. */
  readonly headersTimeoutMs?: number;
  /** Longest silence while a request body is read, ms; 0 = none. Default 60000. */
  readonly bodyTimeoutMs?: number;
  /** Idle keep-alive time for client connections, ms. Default 75000. */
  readonly keepAliveTimeoutMs?: number;
  /** Time allowed for a whole request (head and body), ms; 0 = none. Default 0. */
  readonly requestTimeoutMs?: number;
}

export type ClientLimits = Required<ClientLimitOptions>;

export const CLIENT_LIMIT_DEFAULTS: ClientLimits = Object.freeze({
  maxHeaderCount: 100,
  maxHeaderSize: 16 * 1024,
  maxUriLength: 8 * 1024,
  maxBodySize: 1024 * 1024 * 1024,
  maxConnections: 10_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 60_000,
  keepAliveTimeoutMs: 75_000,
  requestTimeoutMs: 0,
});

/** Which limits must be positive (the others accept 0 = off). */
const POSITIVE: readonly (keyof ClientLimits)[] = [
  'maxHeaderCount',
  'maxHeaderSize',
  'maxUriLength',
  'headersTimeoutMs',
  'keepAliveTimeoutMs',
];

/** Fills defaults and checks every value is a safe integer in range; throws SY_BAD_CONFIG. */
export function resolveClientLimits(options: ClientLimitOptions): ClientLimits {
  const limits: { -readonly [K in keyof ClientLimits]: ClientLimits[K] } = { ...CLIENT_LIMIT_DEFAULTS };
  for (const key of Object.keys(CLIENT_LIMIT_DEFAULTS) as (keyof ClientLimits)[]) {
    const value = options[key];
    if (value === undefined) continue;
    const min = POSITIVE.includes(key) ? 1 : 0;
    if (!Number.isSafeInteger(value) || value < min) {
      throw new RouterError('SY_BAD_CONFIG', `${key} must be an integer ≥ ${min}, got ${value}`);
    }
    limits[key] = value;
  }
  if (limits.requestTimeoutMs > 0 && limits.requestTimeoutMs < limits.headersTimeoutMs) {
    throw new RouterError('SY_BAD_CONFIG', 'requestTimeoutMs must not be shorter than headersTimeoutMs');
  }
  if (limits.maxUriLength > limits.maxHeaderSize) limits.maxUriLength = limits.maxHeaderSize;
  return Object.freeze(limits);
}

/** `http.createServer` options enforcing the limits Node can enforce itself. Never the lenient parser. */
export function clientServerOptions(limits: ClientLimits): http.ServerOptions {
  const timeouts = [limits.headersTimeoutMs, limits.requestTimeoutMs].filter((t) => t > 0);
  const interval = Math.min(1000, Math.max(50, Math.floor(Math.min(...timeouts) / 5)));
  return {
    insecureHTTPParser: false,
    // Missing Host is answered by the request guard with a coded 400 (Node's own 400 has no code).
    requireHostHeader: false,
    maxHeaderSize: limits.maxHeaderSize,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: interval,
    highWaterMark: 64 * 1024,
  };
}
