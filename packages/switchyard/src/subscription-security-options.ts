/**
 * The subscription-channel security options of the `switchyard` command line, kept apart from
 * cli-options.ts (which spreads them into its option table and zod schema):
 *
 *  --subscriptions-sign-check ALGO:DIR         uWSGI RSA signatures: every packet signed, key DIR/<key>.pem
 *  --subscriptions-sign-check-tolerance SECS   |now − unix| allowed (default 30; uWSGI's is 86400)
 *  --subscription-key PATTERN=ALG:FILE         Ed25519 / HMAC-SHA256 key for hosts matching PATTERN
 *  --subscription-key-window SECS              |now − ts| allowed for those (default 30)
 *  --subscription-allow CIDR[=PATTERN,...]     source allowlist, optionally per key pattern
 *  --subscription-rate N[:BURST]               packets/s per source IP (default 1000, burst 2 × N)
 *  --subscription-node-allow CIDR|/PATH/       node address allowlist (SSRF defence)
 *
 * Values are validated here once (zod); errors name the option (SY_BAD_OPTION). Files are not read
 * here: the composition loads keys at start-up (SY_BAD_KEY names a bad file).
 */
import {
  isSupportedDigest,
  parseCidr,
  parseSourceAllowEntry,
  parseSubscriptionKeySpec,
  type SubscriptionKeySpec,
} from '@switchyard/subscription-server';
import { z } from 'zod';

export interface SubscriptionSecurityConfig {
  /** uWSGI `--subscriptions-sign-check`: digest name and key directory. */
  readonly signCheck: { readonly algorithm: string; readonly dir: string } | undefined;
  /** Seconds. */
  readonly signCheckTolerance: number;
  readonly keys: readonly SubscriptionKeySpec[];
  /** Seconds. */
  readonly keyWindow: number;
  /** `CIDR[=PATTERN,...]` entries as given (validated). */
  readonly allow: readonly string[];
  /** Packets per second per source IP, and the bucket size. */
  readonly rate: number;
  readonly burst: number;
  /** Node address allowlist: CIDR blocks, and UNIX socket path prefixes (entries starting with `/`). */
  readonly nodeAllow: readonly string[];
  readonly nodeAllowUnix: readonly string[];
}

interface SecurityOptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  readonly help: string;
  readonly defaultText?: string;
  readonly value?: string;
}

export const SECURITY_OPTIONS: Readonly<Record<string, SecurityOptionSpec>> = {
  'subscriptions-sign-check': {
    type: 'string',
    value: 'ALGO:DIR',
    help: 'require uWSGI RSA-signed subscriptions (ALGO e.g. SHA1, SHA256); public key for KEY in DIR/KEY.pem',
    defaultText: 'off',
  },
  'subscriptions-sign-check-tolerance': {
    type: 'string',
    value: 'SECS',
    help: "largest |now - unix| of a signed packet; unix must also grow per node (uWSGI's default is 86400)",
    defaultText: '30',
  },
  'subscription-key': {
    type: 'string',
    multiple: true,
    value: 'PATTERN=ALG:FILE',
    help: 'signing key for hosts matching PATTERN (*, *.tenant.example, app.example); ALG ed25519 (FILE = PEM public key) or hmac-sha256 (FILE = secret); kid = FILE base name; repeatable (two keys for one pattern = rotation)',
    defaultText: 'none',
  },
  'subscription-key-window': {
    type: 'string',
    value: 'SECS',
    help: 'largest |now - ts| of a --subscription-key signed packet',
    defaultText: '30',
  },
  'subscription-allow': {
    type: 'string',
    multiple: true,
    value: 'CIDR[=PATTERN,...]',
    help: 'accept subscriptions only from these networks, optionally only for keys matching PATTERNs; repeatable',
    defaultText: 'any source',
  },
  'subscription-rate': {
    type: 'string',
    value: 'N[:BURST]',
    help: 'packets per second per source IP before rate-limited drops',
    defaultText: '1000:2000',
  },
  'subscription-node-allow': {
    type: 'string',
    multiple: true,
    value: 'CIDR|/PATH/',
    help: "node addresses subscriptions may point to (CIDR, or a unix socket path prefix); the router's own listeners are always refused; repeatable",
    defaultText: 'any but own listeners',
  },
};

function seconds(option: string, max: number) {
  return z
    .string()
    .regex(/^\d+(\.\d+)?$/, `${option} takes a number of seconds`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= max, `${option} must be between 1 and ${max} seconds`);
}

export const SECURITY_SCHEMA = {
  'subscriptions-sign-check': z
    .string()
    .regex(/^[A-Za-z0-9-]+:.+$/, '--subscriptions-sign-check takes ALGO:DIR, e.g. SHA256:/etc/switchyard/keys')
    .refine(
      (v) => isSupportedDigest(v.slice(0, v.indexOf(':'))),
      '--subscriptions-sign-check: unknown digest (use an OpenSSL name such as SHA1 or SHA256)',
    )
    .optional(),
  'subscriptions-sign-check-tolerance': seconds('--subscriptions-sign-check-tolerance', 86_400).default(30),
  'subscription-key': z
    .array(
      z
        .string()
        .refine(
          (v) => parseSubscriptionKeySpec(v) !== undefined,
          '--subscription-key takes PATTERN=ed25519:FILE or PATTERN=hmac-sha256:FILE, e.g. *.tenant.example=ed25519:/etc/switchyard/tenant.pub',
        ),
    )
    .default([]),
  'subscription-key-window': seconds('--subscription-key-window', 3_600).default(30),
  'subscription-allow': z
    .array(
      z
        .string()
        .refine(
          (v) => parseSourceAllowEntry(v) !== undefined,
          '--subscription-allow takes CIDR[=PATTERN,...], e.g. 10.0.0.0/8 or 10.1.0.0/16=*.tenant.example',
        ),
    )
    .default([]),
  'subscription-rate': z
    .string()
    .regex(/^\d{1,9}(:\d{1,9})?$/, '--subscription-rate takes N or N:BURST packets per second')
    .transform((v) => {
      const [rate, burst] = v.split(':').map(Number) as [number, number | undefined];
      return { rate, burst: burst ?? 2 * rate };
    })
    .refine((r) => r.rate >= 1 && r.burst >= 1, '--subscription-rate must be at least 1')
    .default({ rate: 1_000, burst: 2_000 }),
  'subscription-node-allow': z
    .array(
      z
        .string()
        .refine(
          (v) => (v.startsWith('/') && v.length > 1) || parseCidr(v) !== undefined,
          '--subscription-node-allow takes a CIDR (10.0.0.0/8, 2001:db8::/32) or a unix socket path prefix (/run/apps/)',
        ),
    )
    .default([]),
};

const SecurityObject = z.object(SECURITY_SCHEMA);
type SecurityValues = z.output<typeof SecurityObject>;

/** Builds the security part of the config from validated values. */
export function securityConfig(v: SecurityValues): SubscriptionSecurityConfig {
  const sign = v['subscriptions-sign-check'];
  const colon = sign?.indexOf(':') ?? -1;
  return {
    signCheck: sign === undefined ? undefined : { algorithm: sign.slice(0, colon), dir: sign.slice(colon + 1) },
    signCheckTolerance: v['subscriptions-sign-check-tolerance'],
    keys: v['subscription-key'].map((k) => parseSubscriptionKeySpec(k)!),
    keyWindow: v['subscription-key-window'],
    allow: v['subscription-allow'],
    rate: v['subscription-rate'].rate,
    burst: v['subscription-rate'].burst,
    nodeAllow: v['subscription-node-allow'].filter((n) => !n.startsWith('/')),
    nodeAllowUnix: v['subscription-node-allow'].filter((n) => n.startsWith('/')),
  };
}
