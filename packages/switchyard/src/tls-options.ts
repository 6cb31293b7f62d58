/**
 * The HTTPS and WebSocket options of the `switchyard` command line, kept apart from cli-options.ts
 * (which spreads them into its option table and zod schema):
 *
 *  --https ADDR[,CRT,KEY]               HTTPS listener, repeatable; the uWSGI form names its default cert
 *  --https-cert-default CRT,KEY         default certificate of listeners given without one
 *  --https-cert HOST=CRT,KEY            certificate for HOST (or *.domain) chosen by SNI, repeatable
 *  --https-cert-dir DIR                 <host>.crt/<host>.key pairs, reloaded when the directory changes
 *  --websocket-idle-timeout SECS        close a WebSocket tunnel idle this long (1001), 0 = never
 *  --websocket-drain-deadline [HOST=]SECS  how long a draining node's WebSockets live before 1001
 *
 * Every value is validated here once (zod), errors name the option (SY_BAD_OPTION). Files are read by
 * the router at start (SY_BAD_CERTIFICATE names a bad file).
 */
import { parseHostKey } from '@switchyard/protocol';
import { parseListenAddress } from '@switchyard/router';
import { z } from 'zod';

export interface CertificatePathsConfig {
  readonly cert: string;
  readonly key: string;
}

export interface HttpsListenerConfig {
  readonly address: string;
  /** From the uWSGI form `ADDR,CRT,KEY`. */
  readonly certificate: CertificatePathsConfig | undefined;
}

export interface TlsConfig {
  readonly https: readonly HttpsListenerConfig[];
  readonly defaultCertificate: CertificatePathsConfig | undefined;
  /** Lowercase host or `*.domain` → files. */
  readonly hostCertificates: readonly (readonly [string, CertificatePathsConfig])[];
  readonly certificateDir: string | undefined;
  /** Seconds; 0 = never. */
  readonly websocketIdleTimeout: number;
  /** Seconds. */
  readonly websocketDrainDeadline: number;
  /** Host key → seconds. */
  readonly websocketDrainDeadlines: readonly (readonly [string, number])[];
}

interface TlsOptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  readonly help: string;
  readonly defaultText?: string;
  readonly value?: string;
}

export const TLS_OPTIONS: Readonly<Record<string, TlsOptionSpec>> = {
  https: {
    type: 'string',
    multiple: true,
    value: 'ADDR[,CRT,KEY]',
    help: 'HTTPS listener (HTTP/1.1, TLS 1.2+), repeatable; ADDR,CRT,KEY (uWSGI form) sets its default certificate',
    defaultText: 'none',
  },
  'https-cert-default': {
    type: 'string',
    value: 'CRT,KEY',
    help: 'default certificate for HTTPS listeners given without one (served when SNI matches no host)',
  },
  'https-cert': {
    type: 'string',
    multiple: true,
    value: 'HOST=CRT,KEY',
    help: 'certificate chosen by SNI for HOST (or *.domain), repeatable',
  },
  'https-cert-dir': {
    type: 'string',
    value: 'DIR',
    help: 'SNI certificates as DIR/<host>.crt + DIR/<host>.key (_wildcard.<domain> for *.<domain>), reloaded on change',
  },
  'websocket-idle-timeout': {
    type: 'string',
    value: 'SECS',
    help: 'close a WebSocket tunnel with 1001 after this long without traffic; 0 = never',
    defaultText: '300',
  },
  'websocket-drain-deadline': {
    type: 'string',
    multiple: true,
    value: '[HOST=]SECS',
    help: 'WebSockets of a draining node get 1001 Going Away after SECS (HOST=SECS: for that host), repeatable',
    defaultText: '30',
  },
};

function pair(option: string, text: string): CertificatePathsConfig | string {
  const parts = text.split(',');
  if (parts.length !== 2 || parts[0]!.length === 0 || parts[1]!.length === 0) {
    return `${option} takes CRT,KEY (two file paths separated by a comma)`;
  }
  return { cert: parts[0]!, key: parts[1]! };
}

const certPair = (option: string) =>
  z.string().transform((text, ctx) => {
    const parsed = pair(option, text);
    if (typeof parsed === 'string') {
      ctx.addIssue({ code: 'custom', message: parsed });
      return z.NEVER;
    }
    return parsed;
  });

const httpsListener = z.string().transform((text, ctx): HttpsListenerConfig => {
  const comma = text.indexOf(',');
  const address = comma < 0 ? text : text.slice(0, comma);
  if (parseListenAddress(address) === undefined) {
    ctx.addIssue({ code: 'custom', message: '--https takes host:port, :port or [ipv6]:port, optionally ,CRT,KEY' });
    return z.NEVER;
  }
  if (comma < 0) return { address, certificate: undefined };
  const parsed = pair('--https', text.slice(comma + 1));
  if (typeof parsed === 'string') {
    ctx.addIssue({ code: 'custom', message: '--https takes ADDR or ADDR,CRT,KEY' });
    return z.NEVER;
  }
  return { address, certificate: parsed };
});

const hostCertificate = z.string().transform((text, ctx): readonly [string, CertificatePathsConfig] => {
  const eq = text.indexOf('=');
  const name = eq < 0 ? '' : text.slice(0, eq);
  const wildcard = name.startsWith('*.');
  const host = eq < 0 ? undefined : parseHostKey(wildcard ? name.slice(2) : name);
  const parsed = eq < 0 ? undefined : pair('--https-cert', text.slice(eq + 1));
  if (host === undefined || host.port !== undefined || parsed === undefined || typeof parsed === 'string') {
    ctx.addIssue({ code: 'custom', message: '--https-cert takes HOST=CRT,KEY (HOST a name or *.domain, no port)' });
    return z.NEVER;
  }
  return [wildcard ? `*.${host.key}` : host.key, parsed] as const;
});

const SECS = /^\d+(\.\d+)?$/;

const drainDeadline = z.string().transform((text, ctx): readonly [string | undefined, number] => {
  const eq = text.lastIndexOf('=');
  const host = eq < 0 ? undefined : parseHostKey(text.slice(0, eq), { allowWildcard: true })?.key;
  const secs = eq < 0 ? text : text.slice(eq + 1);
  if ((eq >= 0 && host === undefined) || !SECS.test(secs) || Number(secs) > 86_400) {
    ctx.addIssue({ code: 'custom', message: '--websocket-drain-deadline takes SECS or HOST=SECS (0..86400)' });
    return z.NEVER;
  }
  return [host, Number(secs)] as const;
});

export const TLS_SCHEMA = {
  https: z.array(httpsListener).default([]),
  'https-cert-default': certPair('--https-cert-default').optional(),
  'https-cert': z.array(hostCertificate).default([]),
  'https-cert-dir': z.string().min(1).optional(),
  'websocket-idle-timeout': z
    .string()
    .regex(SECS, '--websocket-idle-timeout takes a number of seconds')
    .transform(Number)
    .refine((n) => n <= 86_400, '--websocket-idle-timeout must be at most 86400 seconds')
    .default(300),
  'websocket-drain-deadline': z.array(drainDeadline).default([]),
};

/** Values as the zod schema above produces them. */
export interface TlsValues {
  readonly https: readonly HttpsListenerConfig[];
  readonly 'https-cert-default'?: CertificatePathsConfig | undefined;
  readonly 'https-cert': readonly (readonly [string, CertificatePathsConfig])[];
  readonly 'https-cert-dir'?: string | undefined;
  readonly 'websocket-idle-timeout': number;
  readonly 'websocket-drain-deadline': readonly (readonly [string | undefined, number])[];
}

/** Builds the TlsConfig; returns an error message (naming the option) when the options contradict. */
export function tlsConfig(v: TlsValues): TlsConfig | { readonly error: string; readonly option: string } {
  const defaultCertificate = v['https-cert-default'];
  const bare = v.https.find((l) => l.certificate === undefined);
  if (bare !== undefined && defaultCertificate === undefined) {
    return {
      error: `--https ${bare.address} needs a certificate: ADDR,CRT,KEY or --https-cert-default CRT,KEY`,
      option: '--https',
    };
  }
  if (v.https.length === 0) {
    for (const option of ['https-cert-default', 'https-cert', 'https-cert-dir'] as const) {
      const value = v[option];
      if (value !== undefined && !(Array.isArray(value) && value.length === 0)) {
        return { error: `--${option} needs an --https listener`, option: `--${option}` };
      }
    }
  }
  let websocketDrainDeadline = 30;
  const websocketDrainDeadlines: (readonly [string, number])[] = [];
  for (const [host, secs] of v['websocket-drain-deadline']) {
    if (host === undefined) websocketDrainDeadline = secs;
    else websocketDrainDeadlines.push([host, secs]);
  }
  return {
    https: v.https,
    defaultCertificate,
    hostCertificates: v['https-cert'],
    certificateDir: v['https-cert-dir'],
    websocketIdleTimeout: v['websocket-idle-timeout'],
    websocketDrainDeadline,
    websocketDrainDeadlines,
  };
}

/** The router options for a TlsConfig (ms, maps). */
export function routerTlsOptions(config: TlsConfig) {
  return {
    https: config.https.map((l) => (l.certificate === undefined ? { address: l.address } : l)),
    ...(config.defaultCertificate === undefined ? {} : { defaultCertificate: config.defaultCertificate }),
    certificates: { hosts: config.hostCertificates, dir: config.certificateDir },
    tunnelIdleTimeoutMs: Math.round(config.websocketIdleTimeout * 1000),
    drainDeadlineMs: Math.round(config.websocketDrainDeadline * 1000),
    hostDrainDeadlines: new Map(config.websocketDrainDeadlines.map(([host, secs]) => [host, Math.round(secs * 1000)])),
  };
}
