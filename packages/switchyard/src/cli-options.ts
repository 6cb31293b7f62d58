/**
 * The `switchyard` command line: uWSGI's option names where uWSGI has one. Parsed with node:util
 * parseArgs (strict: unknown options are errors), then validated once with a strict zod schema into a
 * frozen SwitchyardConfig. Every error is a CliError (SY_BAD_OPTION) naming the option and the fix.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { parseListenAddress } from '@switchyard/router';
import { parseNodeAddress } from '@switchyard/subscription-server';
import { z } from 'zod';
import {
  BALANCING_ALIASES,
  BALANCING_OPTIONS,
  BALANCING_SCHEMA,
  type BalancingConfig,
  balancingConfig,
} from './balancing-options.js';
import { CliError } from './errors.js';
import { HARDENING_OPTIONS, HARDENING_SCHEMA, type HardeningConfig, hardeningConfig } from './hardening-options.js';
import { OPERATOR_OPTIONS, OPERATOR_SCHEMA, type OperatorConfig, operatorConfig } from './operator-options.js';
import { PRIVILEGE_OPTIONS, PRIVILEGE_SCHEMA, type PrivilegeConfig, resolvePrivileges } from './privilege-drop.js';
import {
  SECURITY_OPTIONS,
  SECURITY_SCHEMA,
  type SubscriptionSecurityConfig,
  securityConfig,
} from './subscription-security-options.js';
import { TLS_OPTIONS, TLS_SCHEMA, type TlsConfig, tlsConfig } from './tls-options.js';
import {
  COMPAT_ALIASES,
  COMPAT_OPTIONS,
  COMPAT_SCHEMA,
  compatConfig,
  type UwsgiCompatConfig,
} from './uwsgi-compat-options.js';
import { dropUwsgiOnlyArgs, expandIniArgs } from './uwsgi-ini.js';

export interface StaticNodeConfig {
  readonly address: string;
  readonly protocol: 'http' | 'uwsgi';
}

export interface SwitchyardConfig {
  readonly http: readonly string[];
  /** UDP subscription binds; empty for `--subscription-server off` (no socket, no intake). */
  readonly subscriptionServer: readonly string[];
  readonly httpTo: readonly StaticNodeConfig[];
  /** Seconds of silence after which a subscribed node expires. */
  readonly subscriptionTolerance: number;
  /** Admin API listener (it also serves /metrics); undefined for `--admin off` (no admin listener). */
  readonly admin: string | undefined;
  /** Upstream idle timeout, seconds (uWSGI --http-timeout). */
  readonly httpTimeout: number;
  readonly httpConnectTimeout: number;
  readonly httpVars: readonly (readonly [string, string])[];
  readonly maxNodesPerHost: number;
  readonly maxHosts: number;
  readonly shutdownTimeout: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** uWSGI compatibility (see uwsgi-compat-options.ts). */
  readonly compat: UwsgiCompatConfig;
  /** Subscription channel security (see subscription-security-options.ts). */
  readonly security: SubscriptionSecurityConfig;
  /** HTTPS listeners, SNI certificates, WebSocket timeouts (see tls-options.ts). */
  readonly tls: TlsConfig;
  /** Client limits, timeouts, forwarded-header trust (see hardening-options.ts). */
  readonly hardening: HardeningConfig;
  /** Balancer, slow start, retry budget, outlier ejection (see balancing-options.ts). */
  readonly balancing: BalancingConfig;
  /** Admin API tokens, metrics, access log, event log (see operator-options.ts). */
  readonly operator: OperatorConfig;
  /** HTTP acceptor processes (worker-cluster.ts); 1 = this process serves HTTP itself. */
  readonly workers: number;
  /** `--uid`/`--gid` resolved to ids, switched to once everything is bound; undefined = keep (privilege-drop.ts). */
  readonly privileges: PrivilegeConfig | undefined;
}

interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  readonly help: string;
  readonly defaultText?: string;
  readonly value?: string;
}

/** Every option, in the order `--help` lists them. Aliases map to their canonical name. */
export const OPTIONS: Readonly<Record<string, OptionSpec>> = {
  http: {
    type: 'string',
    multiple: true,
    value: 'ADDR',
    help: 'HTTP listener, repeatable',
    defaultText: '0.0.0.0:8080',
  },
  'subscription-server': {
    type: 'string',
    multiple: true,
    value: 'ADDR|off',
    help: 'subscription server: UDP address or UNIX datagram socket (/path, @name), repeatable; off (or none): none (alias --http-subscription-server)',
    defaultText: '127.0.0.1:2626',
  },
  'http-to': {
    type: 'string',
    multiple: true,
    value: 'ADDR',
    help: 'static node serving every Host: host:port or a unix socket path (uwsgi protocol), http://host:port (HTTP); repeatable',
  },
  'subscription-tolerance': {
    type: 'string',
    value: 'SECS',
    help: 'silence after which a subscribed node expires',
    defaultText: '17',
  },
  admin: {
    type: 'string',
    value: 'ADDR|off',
    help: 'admin API listener, also serving /metrics; off (or none): no admin listener',
    defaultText: '127.0.0.1:9090',
  },
  'http-timeout': {
    type: 'string',
    value: 'SECS',
    help: 'longest upstream silence (response head, body gaps)',
    defaultText: '60',
  },
  'http-connect-timeout': { type: 'string', value: 'SECS', help: 'upstream connect timeout', defaultText: '5' },
  'http-var': {
    type: 'string',
    multiple: true,
    value: 'KEY=VALUE',
    help: 'extra uwsgi var sent to uwsgi nodes, repeatable',
  },
  'max-nodes-per-host': { type: 'string', value: 'N', help: 'most nodes one host may have', defaultText: '64' },
  'max-hosts': { type: 'string', value: 'N', help: 'most virtual hosts in the table', defaultText: '1000000' },
  'shutdown-timeout': {
    type: 'string',
    value: 'SECS',
    help: 'grace for in-flight requests on SIGINT/SIGTERM',
    defaultText: '10',
  },
  workers: {
    type: 'string',
    value: 'N',
    help: 'HTTP worker processes sharing one table; 1 serves HTTP in this process (alias --http-processes)',
    defaultText: 'the number of CPUs, at most 8',
  },
  'log-level': {
    type: 'string',
    value: 'LEVEL',
    help: 'fatal|error|warn|info|debug|trace|silent',
    defaultText: 'info',
  },
  ...COMPAT_OPTIONS,
  ...SECURITY_OPTIONS,
  ...TLS_OPTIONS,
  ...HARDENING_OPTIONS,
  ...BALANCING_OPTIONS,
  ...OPERATOR_OPTIONS,
  ...PRIVILEGE_OPTIONS,
  help: { type: 'boolean', help: 'show this help' },
  version: { type: 'boolean', help: 'print the version' },
};

const ALIASES: Readonly<Record<string, string>> = {
  'http-subscription-server': 'subscription-server',
  'http-processes': 'workers',
  'http-workers': 'workers',
  ...COMPAT_ALIASES,
  ...BALANCING_ALIASES,
};

function listenAddress(option: string) {
  return z.string().refine((v) => parseListenAddress(v) !== undefined, {
    message: `${option} takes host:port, :port or [ipv6]:port`,
  });
}

/** The values that turn an optional listener (`--subscription-server`, `--admin`) off. */
const OFF_VALUES: readonly string[] = ['off', 'none'];

function isOff(value: string): boolean {
  return OFF_VALUES.includes(value);
}

/**
 * A listen address (default `fallback`) or `off`/`none` (→ undefined: the listener is not opened). The
 * default sits before the transform: zod would otherwise put it back in place of the undefined output.
 */
function optionalListenAddress(option: string, fallback: string) {
  return z
    .string()
    .refine((v) => isOff(v) || parseListenAddress(v) !== undefined, {
      message: `${option} takes host:port, :port, [ipv6]:port or off`,
    })
    .default(fallback)
    .transform((v) => (isOff(v) ? undefined : v));
}

/** Repeatable listen addresses, or a single `off`/`none` (→ []: nothing is bound). */
/** A UNIX datagram socket for the subscription server: an absolute path or `@abstract` (as uWSGI). */
function isUnixSocketBind(value: string): boolean {
  return value.length > 1 && (value.startsWith('/') || value.startsWith('@'));
}

function optionalListenAddresses(option: string) {
  return z
    .array(
      z.string().refine((v) => isOff(v) || isUnixSocketBind(v) || parseListenAddress(v) !== undefined, {
        message: `${option} takes host:port, :port, [ipv6]:port, a UNIX socket /path or @name, or off`,
      }),
    )
    .refine((list) => list.length === 1 || !list.some(isOff), {
      message: `${option} off cannot be combined with addresses`,
    })
    .transform((list) => (list.some(isOff) ? [] : list));
}

function seconds(option: string) {
  return z
    .string()
    .regex(/^\d+(\.\d+)?$/, `${option} takes a number of seconds`)
    .transform(Number)
    .refine((n) => n > 0 && n <= 86_400, `${option} must be between 0 and 86400 seconds`);
}

/** Default `--workers` on a machine with more CPUs than this. */
const DEFAULT_MAX_WORKERS = 8;

function count(option: string, max: number) {
  return z
    .string()
    .regex(/^\d+$/, `${option} takes a whole number`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= max, `${option} must be between 1 and ${max}`);
}

const schema = z.strictObject({
  http: z.array(listenAddress('--http')).default(['0.0.0.0:8080']),
  'subscription-server': optionalListenAddresses('--subscription-server').default(['127.0.0.1:2626']),
  'http-to': z.array(z.string()).default([]),
  'subscription-tolerance': seconds('--subscription-tolerance').default(17),
  admin: optionalListenAddress('--admin', '127.0.0.1:9090'),
  'http-timeout': seconds('--http-timeout').default(60),
  'http-connect-timeout': seconds('--http-connect-timeout').default(5),
  'http-var': z.array(z.string().regex(/^[A-Za-z0-9_.-]+=.*$/, '--http-var takes KEY=VALUE')).default([]),
  'max-nodes-per-host': count('--max-nodes-per-host', 10_000).default(64),
  'max-hosts': count('--max-hosts', 100_000_000).default(1_000_000),
  'shutdown-timeout': seconds('--shutdown-timeout').default(10),
  // One per CPU, at most DEFAULT_MAX_WORKERS: every worker holds a copy of the table (≈ 0.5 KB per host).
  workers: count('--workers', 64).default(Math.min(DEFAULT_MAX_WORKERS, availableParallelism())),
  'log-level': z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ...COMPAT_SCHEMA,
  ...SECURITY_SCHEMA,
  ...TLS_SCHEMA,
  ...HARDENING_SCHEMA,
  ...BALANCING_SCHEMA,
  ...OPERATOR_SCHEMA,
  ...PRIVILEGE_SCHEMA,
  help: z.boolean().optional(),
  version: z.boolean().optional(),
});

export type ParsedCli =
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'run'; readonly config: SwitchyardConfig; readonly warnings?: readonly string[] };

/** Parses the router's argv (without the node and script paths). Throws CliError. */
export function parseCli(argv: readonly string[]): ParsedCli {
  const expanded = expandIniArgs(argv, {
    optionKind: (name) =>
      name === 'ini' || name === 'help' || name === 'version' ? undefined : OPTIONS[ALIASES[name] ?? name]?.type,
  });
  const known = (name: string): boolean =>
    name === 'ini' || name === 'help' || name === 'version' || OPTIONS[ALIASES[name] ?? name] !== undefined;
  const uwsgiOnly = dropUwsgiOnlyArgs(expanded.args, known);
  const warnings = [...expanded.warnings.map((w) => w.message), ...uwsgiOnly.warnings];
  const normalised = uwsgiOnly.args.map((arg) => {
    const m = /^--([^=]+)(=.*)?$/.exec(arg);
    if (m === null) return arg;
    const canonical = ALIASES[m[1]!];
    return canonical === undefined ? arg : `--${canonical}${m[2] ?? ''}`;
  });
  let values: Record<string, unknown>;
  try {
    const options = Object.fromEntries(
      Object.entries(OPTIONS).map(([name, spec]) => [name, { type: spec.type, multiple: spec.multiple ?? false }]),
    );
    values = parseArgs({ args: normalised, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new CliError(`${(error as Error).message.split('\n')[0]} (see switchyard --help)`);
  }
  const result = schema.safeParse(values);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const option = `--${String(issue.path[0] ?? '')}`;
    const message = issue.message.startsWith('--') ? issue.message : `${option}: ${issue.message}`;
    throw new CliError(`${message} (see switchyard --help)`, option);
  }
  const v = result.data;
  if (v.help === true) return { kind: 'help' };
  if (v.version === true) return { kind: 'version' };
  const tls = tlsConfig(v);
  if ('error' in tls) throw new CliError(`${tls.error} (see switchyard --help)`, tls.option);
  const config: SwitchyardConfig = {
    http: v.http,
    subscriptionServer: v['subscription-server'],
    httpTo: v['http-to'].map(parseStaticNode),
    subscriptionTolerance: v['subscription-tolerance'],
    admin: v.admin,
    httpTimeout: v['http-timeout'],
    httpConnectTimeout: v['http-connect-timeout'],
    httpVars: v['http-var'].map((kv) => {
      const eq = kv.indexOf('=');
      return [kv.slice(0, eq), kv.slice(eq + 1)] as const;
    }),
    maxNodesPerHost: v['max-nodes-per-host'],
    maxHosts: v['max-hosts'],
    shutdownTimeout: v['shutdown-timeout'],
    logLevel: v['log-level'],
    compat: compatConfig(v, warnings),
    security: securityConfig(v),
    tls,
    hardening: hardeningConfig(v),
    balancing: balancingConfig(v),
    operator: operatorConfig(v, v.admin),
    workers: v.workers,
    privileges: resolvePrivileges(v),
  };
  return { kind: 'run', config: deepFreeze(config), warnings };
}

/** `http://host:port` → HTTP node; `host:port` or a unix socket path → uwsgi node. */
export function parseStaticNode(text: string): StaticNodeConfig {
  const http = /^http:\/\/(.+?)\/?$/i.exec(text);
  const address = http === null ? text : http[1]!;
  const parsed = parseNodeAddress(address);
  if (!parsed.ok) {
    throw new CliError(
      `--http-to ${text}: ${parsed.detail}; use host:port, a socket path or http://host:port`,
      '--http-to',
    );
  }
  return { address: parsed.value.address, protocol: http === null ? 'uwsgi' : 'http' };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/** The `--help` text: every option with its default. */
export function helpText(): string {
  const lines = [
    'Usage: switchyard [options]            run the router, subscription server and admin API',
    '       switchyard agent [options]      announce a backend (switchyard agent --help)',
    '       switchyard demo                 router + two demo backends on demo.localhost',
    '',
    'Options:',
  ];
  for (const [name, spec] of Object.entries(OPTIONS)) {
    const flag = `--${name}${spec.value === undefined ? '' : ` ${spec.value}`}`;
    const def = spec.defaultText === undefined ? '' : ` (default: ${spec.defaultText})`;
    lines.push(`  ${flag.padEnd(34)} ${spec.help}${def}`);
  }
  return `${lines.join('\n')}\n`;
}
