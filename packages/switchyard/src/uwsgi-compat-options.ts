/**
 * The uWSGI-compatibility options of the `switchyard` command line, kept apart from cli-options.ts
 * (which spreads them into its option table, alias map and zod schema):
 *
 *  --subscription-dotsplit            leading-dot wildcard keys (lookup-rules.ts)
 *  --subscription-mountpoints         `host/segment` keys (alias --subscription-mountpoint)
 *  --http-fallback-key KEY            pool for unmatched hosts (alias --http-subscription-fallback-key)
 *  --http-modifier1 N / -2 N          override every uwsgi node's modifiers when non-zero
 *  --http-stats ADDR                  uWSGI-format stats server (aliases --http-stats-server, --http-ss)
 *  --http-enable-proxy-protocol       every client connection starts with a PROXY v1/v2 header (required)
 *  --http-resubscribe ADDR            send accepted subscriptions on to another router (repeatable)
 *  --ini FILE[:section]               uWSGI ini file (expanded before parsing: uwsgi-ini.ts)
 *  --spawn CMD --processes N          embedded mode: run N workers and route to them (worker-spawner.ts)
 *  --spawn-key HOST --spawn-protocol P
 *
 * Every value is validated here once (zod), errors name the option (SY_BAD_OPTION).
 */
import { parseHostKey, parseMountpointKey } from '@switchyard/protocol';
import { parseListenAddress } from '@switchyard/router';
import { parseResubscribeTarget, type ResubscribeTarget } from '@switchyard/subscription-server';
import { z } from 'zod';

export interface SpawnConfig {
  /** Shell command (run with /bin/sh -c); `{port}` and `{socket}` are replaced per worker. */
  readonly command: string;
  readonly processes: number;
  /** Host key the workers serve; undefined = static nodes serving every Host. */
  readonly key: string | undefined;
  /** uwsgi when the command uses `{socket}` or --spawn-protocol uwsgi; http otherwise. */
  readonly protocol: 'http' | 'uwsgi';
  /** Each worker listens on a unix socket (`{socket}` used), else on a TCP port of 127.0.0.1. */
  readonly transport: 'unix' | 'tcp';
}

export interface UwsgiCompatConfig {
  readonly dotsplit: boolean;
  readonly mountpoints: boolean;
  /** Normalised fallback key. */
  readonly fallbackKey: string | undefined;
  /** 0 = keep the node's modifier. */
  readonly modifier1: number;
  readonly modifier2: number;
  /** Stats server listen address. */
  readonly statsServer: string | undefined;
  /** Client connections carry a PROXY protocol header (router proxy-protocol.ts). */
  readonly proxyProtocol: boolean;
  /** Subscription servers accepted packets are forwarded to (resubscriber.ts). */
  readonly resubscribe: readonly ResubscribeTarget[];
  readonly spawn: SpawnConfig | undefined;
}

interface CompatOptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  readonly help: string;
  readonly defaultText?: string;
  readonly value?: string;
}

export const COMPAT_OPTIONS: Readonly<Record<string, CompatOptionSpec>> = {
  'subscription-dotsplit': {
    type: 'boolean',
    help: 'unmatched a.b.example.com tries .b.example.com, .example.com, ... (5 levels)',
    defaultText: 'off',
  },
  'subscription-mountpoints': {
    type: 'boolean',
    help: 'accept host/segment keys; a request tries Host + its first path segments first',
    defaultText: 'off',
  },
  'http-fallback-key': {
    type: 'string',
    value: 'KEY',
    help: 'pool serving hosts that match nothing (alias --http-subscription-fallback-key)',
    defaultText: 'none',
  },
  'http-modifier1': {
    type: 'string',
    value: 'N',
    help: 'uwsgi modifier1 sent to every uwsgi node instead of its own (0 = keep)',
    defaultText: '0',
  },
  'http-modifier2': {
    type: 'string',
    value: 'N',
    help: 'uwsgi modifier2 sent to every uwsgi node instead of its own (0 = keep)',
    defaultText: '0',
  },
  'http-enable-proxy-protocol': {
    type: 'boolean',
    help: 'every client connection must start with a PROXY protocol v1/v2 header (from a TCP load balancer); its source is the client address',
    defaultText: 'off',
  },
  'http-resubscribe': {
    type: 'string',
    multiple: true,
    value: 'ADDR',
    help: 'send every accepted subscription packet on to this subscription server (router chaining), repeatable',
    defaultText: 'none',
  },
  'http-stats': {
    type: 'string',
    value: 'ADDR',
    help: 'uWSGI-format stats server: one JSON document per TCP connection (aliases --http-stats-server, --http-ss)',
    defaultText: 'off',
  },
  ini: {
    type: 'string',
    multiple: true,
    value: 'FILE[:SECTION]',
    help: 'read options from a uWSGI ini file ([uwsgi] section by default), in place; repeatable',
    defaultText: 'none',
  },
  spawn: {
    type: 'string',
    value: 'CMD',
    help: 'embedded mode: run CMD (sh -c) --processes times, with {port}/{socket} and $PORT/$SWITCHYARD_SOCKET per worker, and route to them',
    defaultText: 'off',
  },
  processes: { type: 'string', value: 'N', help: 'workers started by --spawn', defaultText: '1' },
  'spawn-key': {
    type: 'string',
    value: 'HOST',
    help: 'host the --spawn workers serve',
    defaultText: 'every Host (static nodes)',
  },
  'spawn-protocol': {
    type: 'string',
    value: 'http|uwsgi',
    help: 'protocol the --spawn workers speak',
    defaultText: 'uwsgi when CMD uses {socket}, else http',
  },
};

export const COMPAT_ALIASES: Readonly<Record<string, string>> = {
  'http-subscription-fallback-key': 'http-fallback-key',
  'subscription-mountpoint': 'subscription-mountpoints',
  'http-stats-server': 'http-stats',
  'http-ss': 'http-stats',
  // uWSGI's time to receive a request's headers: the same limit.
  'http-headers-timeout': 'client-header-timeout',
};

function modifier(option: string) {
  return z
    .string()
    .regex(/^\d{1,3}$/, `${option} takes a number 0..255`)
    .transform(Number)
    .refine((n) => n <= 255, `${option} takes a number 0..255`);
}

export const COMPAT_SCHEMA = {
  'subscription-dotsplit': z.boolean().optional(),
  'subscription-mountpoints': z.boolean().optional(),
  'http-fallback-key': z
    .string()
    .transform((v) => (v.includes('/') ? parseMountpointKey(v)?.key : parseHostKey(v, { allowWildcard: true })?.key))
    .refine((v) => v !== undefined, '--http-fallback-key takes a host key such as default.test or example.com:8080')
    .optional(),
  'http-modifier1': modifier('--http-modifier1')
    .refine((n) => n !== 123, '--http-modifier1 123 (uWSGI raw-body mode) is not supported')
    .default(0),
  'http-modifier2': modifier('--http-modifier2').default(0),
  'http-enable-proxy-protocol': z.boolean().optional(),
  'http-resubscribe': z
    .array(
      z
        .string()
        .transform((v) => parseResubscribeTarget(v))
        .refine((v) => v !== undefined, '--http-resubscribe takes a numeric ip:port or [ipv6]:port'),
    )
    .optional(),
  'http-stats': z
    .string()
    .refine((v) => parseListenAddress(v) !== undefined, '--http-stats takes host:port, :port or [ipv6]:port')
    .optional(),
  ini: z.array(z.string()).optional(),
  spawn: z.string().min(1, '--spawn takes a command').optional(),
  processes: z
    .string()
    .regex(/^\d+$/, '--processes takes a whole number')
    .transform(Number)
    .refine((n) => n >= 1 && n <= 256, '--processes must be between 1 and 256')
    .optional(),
  'spawn-key': z
    .string()
    .transform((v) => parseHostKey(v)?.key)
    .refine((v) => v !== undefined, '--spawn-key takes a host such as app.test')
    .optional(),
  'spawn-protocol': z.enum(['http', 'uwsgi']).optional(),
};

const CompatObject = z.object(COMPAT_SCHEMA);
type CompatValues = z.output<typeof CompatObject>;

/** Builds the compat part of the config; pushes notes for options that have no effect. */
export function compatConfig(v: CompatValues, warnings: string[]): UwsgiCompatConfig {
  let spawn: SpawnConfig | undefined;
  if (v.spawn !== undefined) {
    const usesSocket = v.spawn.includes('{socket}');
    spawn = {
      command: v.spawn,
      processes: v.processes ?? 1,
      key: v['spawn-key'],
      protocol: v['spawn-protocol'] ?? (usesSocket ? 'uwsgi' : 'http'),
      transport: usesSocket ? 'unix' : 'tcp',
    };
  } else {
    for (const option of ['processes', 'spawn-key', 'spawn-protocol'] as const) {
      if (v[option] !== undefined) warnings.push(`--${option} has no effect without --spawn (ignored)`);
    }
  }
  return {
    dotsplit: v['subscription-dotsplit'] === true,
    mountpoints: v['subscription-mountpoints'] === true,
    fallbackKey: v['http-fallback-key'],
    modifier1: v['http-modifier1'],
    modifier2: v['http-modifier2'],
    statsServer: v['http-stats'],
    proxyProtocol: v['http-enable-proxy-protocol'] === true,
    resubscribe: (v['http-resubscribe'] ?? []).map((t) => t!),
    spawn,
  };
}
