/**
 * Client limits, timeouts and forwarded-header trust of the `switchyard` command line, kept apart from
 * cli-options.ts (which spreads them into its option table and zod schema). Defaults are the router's
 * (client-limits.ts); `0` turns off the limits that say so.
 *
 *  --client-header-timeout SECS     whole request head, from its first byte (408)             30
 *  --client-body-timeout SECS       longest silence while a request body is read (408); 0 off  60
 *  --client-keepalive-timeout SECS  idle keep-alive client connection                          75
 *  --client-request-timeout SECS    whole request, head and body (408); 0 off                  0
 *  --http-response-timeout SECS     a node's response head after the request was sent (504)    --http-timeout
 *  --max-connections N              open client connections (503 beyond); 0 off                10000
 *  --max-header-count N             header fields per request (431 beyond)                     100
 *  --max-header-size BYTES          request head (431 beyond)                                  16k
 *  --max-uri-length BYTES           request target (414 beyond)                                8k
 *  --max-body-size BYTES            request body (413 beyond); 0 off; per-host via the admin   1g
 *  --trusted-proxies CIDR,...       peers whose X-Forwarded-* / Forwarded are kept (repeatable) none
 *  --forwarded-header               also send RFC 7239 Forwarded                               off
 * BYTES takes a k, m or g suffix (powers of 1024).
 */
import { CLIENT_LIMIT_DEFAULTS, parseCidrBlock, type RouterOptions } from '@switchyard/router';
import { z } from 'zod';

export interface HardeningConfig {
  readonly clientHeaderTimeout: number;
  readonly clientBodyTimeout: number;
  readonly clientKeepaliveTimeout: number;
  readonly clientRequestTimeout: number;
  /** Seconds; undefined = the `--http-timeout` value (a uWSGI ini raising http-timeout allows slow answers). */
  readonly httpResponseTimeout: number | undefined;
  readonly maxConnections: number;
  readonly maxHeaderCount: number;
  readonly maxHeaderSize: number;
  readonly maxUriLength: number;
  readonly maxBodySize: number;
  readonly trustedProxies: readonly string[];
  readonly forwardedHeader: boolean;
}

interface HardeningOptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  readonly help: string;
  readonly defaultText?: string;
  readonly value?: string;
}

const D = CLIENT_LIMIT_DEFAULTS;

export const HARDENING_OPTIONS: Readonly<Record<string, HardeningOptionSpec>> = {
  'client-header-timeout': {
    type: 'string',
    value: 'SECS',
    help: 'time for a client to send the whole request head (408 SY_CLIENT_TIMEOUT)',
    defaultText: String(D.headersTimeoutMs / 1000),
  },
  'client-body-timeout': {
    type: 'string',
    value: 'SECS',
    help: 'longest silence while a request body is read (408); 0 = none',
    defaultText: String(D.bodyTimeoutMs / 1000),
  },
  'client-keepalive-timeout': {
    type: 'string',
    value: 'SECS',
    help: 'idle keep-alive client connections are closed after SECS',
    defaultText: String(D.keepAliveTimeoutMs / 1000),
  },
  'client-request-timeout': {
    type: 'string',
    value: 'SECS',
    help: 'time for a whole request, head and body (408); 0 = none',
    defaultText: String(D.requestTimeoutMs / 1000),
  },
  'http-response-timeout': {
    type: 'string',
    value: 'SECS',
    help: 'time for a node to send its response head once the request is sent (504); 0 = none',
    defaultText: 'the --http-timeout value',
  },
  'max-connections': {
    type: 'string',
    value: 'N',
    help: 'open client connections over all listeners (503 SY_TOO_MANY_CONNECTIONS beyond); 0 = no limit',
    defaultText: String(D.maxConnections),
  },
  'max-header-count': {
    type: 'string',
    value: 'N',
    help: 'header fields per request (431 beyond)',
    defaultText: String(D.maxHeaderCount),
  },
  'max-header-size': { type: 'string', value: 'BYTES', help: 'request head size (431 beyond)', defaultText: '16k' },
  'max-uri-length': {
    type: 'string',
    value: 'BYTES',
    help: 'request target length (414 SY_URI_TOO_LONG beyond)',
    defaultText: '8k',
  },
  'max-body-size': {
    type: 'string',
    value: 'BYTES',
    help: 'request body size (413 SY_BODY_TOO_LARGE beyond); 0 = no limit; hosts may override (admin API)',
    defaultText: '1g',
  },
  'trusted-proxies': {
    type: 'string',
    multiple: true,
    value: 'CIDR,...',
    help: 'peers whose X-Forwarded-For chain (appended to), -Proto and -Host are kept; repeatable',
  },
  'forwarded-header': { type: 'boolean', help: 'also send an RFC 7239 Forwarded header to nodes' },
};

function seconds(option: string, allowZero: boolean) {
  return z
    .string()
    .regex(/^\d+(\.\d+)?$/, `${option} takes a number of seconds`)
    .transform(Number)
    .refine(
      (n) => (allowZero ? n >= 0 : n > 0) && n <= 86_400,
      `${option} must be ${allowZero ? 'between 0' : 'over 0'} and 86400 seconds`,
    );
}

function whole(option: string, min: number, max: number) {
  return z
    .string()
    .regex(/^\d+$/, `${option} takes a whole number`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `${option} must be between ${min} and ${max}`);
}

const UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

function bytes(option: string, min: number, max: number) {
  return z
    .string()
    .regex(/^\d+[kmg]?$/i, `${option} takes a number of bytes, with an optional k, m or g suffix`)
    .transform((text) => {
      const m = /^(\d+)([kmg]?)$/i.exec(text)!;
      return Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
    })
    .refine(
      (n) => Number.isSafeInteger(n) && n >= min && n <= max,
      `${option} must be between ${min} and ${max} bytes`,
    );
}

const cidrList = z
  .array(z.string())
  .transform((values) =>
    values
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter((v) => v.length > 0),
  )
  .refine(
    (blocks) =>
      blocks.every((block) => {
        try {
          parseCidrBlock(block);
          return true;
        } catch {
          return false;
        }
      }),
    '--trusted-proxies takes IP addresses or CIDR blocks (10.0.0.0/8, 2001:db8::/32), comma-separated',
  );

export const HARDENING_SCHEMA = {
  'client-header-timeout': seconds('--client-header-timeout', false).default(D.headersTimeoutMs / 1000),
  'client-body-timeout': seconds('--client-body-timeout', true).default(D.bodyTimeoutMs / 1000),
  'client-keepalive-timeout': seconds('--client-keepalive-timeout', false).default(D.keepAliveTimeoutMs / 1000),
  'client-request-timeout': seconds('--client-request-timeout', true).default(D.requestTimeoutMs / 1000),
  'http-response-timeout': seconds('--http-response-timeout', true).optional(),
  'max-connections': whole('--max-connections', 0, 10_000_000).default(D.maxConnections),
  'max-header-count': whole('--max-header-count', 1, 10_000).default(D.maxHeaderCount),
  'max-header-size': bytes('--max-header-size', 1024, 1024 * 1024).default(D.maxHeaderSize),
  'max-uri-length': bytes('--max-uri-length', 16, 1024 * 1024).default(D.maxUriLength),
  'max-body-size': bytes('--max-body-size', 0, Number.MAX_SAFE_INTEGER).default(D.maxBodySize),
  'trusted-proxies': cidrList.default([]),
  'forwarded-header': z.boolean().default(false),
};

type Parsed = z.output<z.ZodObject<typeof HARDENING_SCHEMA>>;

export function hardeningConfig(v: Parsed): HardeningConfig {
  return {
    clientHeaderTimeout: v['client-header-timeout'],
    clientBodyTimeout: v['client-body-timeout'],
    clientKeepaliveTimeout: v['client-keepalive-timeout'],
    clientRequestTimeout: v['client-request-timeout'],
    httpResponseTimeout: v['http-response-timeout'],
    maxConnections: v['max-connections'],
    maxHeaderCount: v['max-header-count'],
    maxHeaderSize: v['max-header-size'],
    maxUriLength: v['max-uri-length'],
    maxBodySize: v['max-body-size'],
    trustedProxies: v['trusted-proxies'],
    forwardedHeader: v['forwarded-header'] === true,
  };
}

/**
 * The router options for a config. A whole-request timeout shorter than the head timeout is raised to it.
 * `httpTimeoutSeconds` (`--http-timeout`, default 60) is the response-head timeout unless one is given.
 */
export function hardeningRouterOptions(config: HardeningConfig, httpTimeoutSeconds = 60): Partial<RouterOptions> {
  const ms = (s: number) => Math.round(s * 1000);
  const headersTimeoutMs = ms(config.clientHeaderTimeout);
  const requestTimeoutMs =
    config.clientRequestTimeout === 0 ? 0 : Math.max(ms(config.clientRequestTimeout), headersTimeoutMs);
  return {
    headersTimeoutMs,
    bodyTimeoutMs: ms(config.clientBodyTimeout),
    keepAliveTimeoutMs: ms(config.clientKeepaliveTimeout),
    requestTimeoutMs,
    responseHeaderTimeoutMs: ms(config.httpResponseTimeout ?? httpTimeoutSeconds),
    maxConnections: config.maxConnections,
    maxHeaderCount: config.maxHeaderCount,
    maxHeaderSize: config.maxHeaderSize,
    maxUriLength: config.maxUriLength,
    maxBodySize: config.maxBodySize,
    trustedProxies: config.trustedProxies,
    forwardedHeader: config.forwardedHeader,
  };
}
