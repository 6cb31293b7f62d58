/**
 * The operator-surface options of the `switchyard` command line (admin API auth, metrics, access log,
 * event log), kept apart from cli-options.ts, which spreads them into its option table and schema:
 *
 *  --admin-token TOKEN / --admin-token-file FILE          bearer token with admin scope (writes)
 *  --admin-read-token TOKEN / --admin-read-token-file FILE bearer token with read-only scope
 *  --metrics-top-hosts N       hosts with their own metric series (others: host="other"); 0 = none
 *  --access-log FILE|stdout|off  one JSON line per request (default off)
 *  --access-log-sample RATE    fraction of successful requests logged, 0..1 (errors always are)
 *  --events-buffer N           events kept for `GET /v1/events?since=` replay
 *
 * Rules (SY_BAD_OPTION, exit 2): tokens are at least 16 characters; a token file must be readable and
 * hold the token on its first line; the admin API may listen on a non-loopback address only with a token.
 */
import { readFileSync } from 'node:fs';
import { MIN_TOKEN_LENGTH, parseListenAddress } from '@switchyard/router';
import { z } from 'zod';
import { CliError } from './errors.js';

export interface OperatorConfig {
  readonly adminToken: string | undefined;
  readonly adminReadToken: string | undefined;
  readonly metricsTopHosts: number;
  /** `off`, `stdout` or a file path. */
  readonly accessLog: string;
  readonly accessLogSample: number;
  readonly eventsBuffer: number;
}

interface OperatorOptionSpec {
  readonly type: 'string';
  readonly help: string;
  readonly defaultText?: string;
  readonly value?: string;
}

export const OPERATOR_OPTIONS: Readonly<Record<string, OperatorOptionSpec>> = {
  'admin-token': { type: 'string', value: 'TOKEN', help: 'admin API bearer token, admin scope (reads and writes)' },
  'admin-token-file': { type: 'string', value: 'FILE', help: 'read --admin-token from FILE (first line)' },
  'admin-read-token': { type: 'string', value: 'TOKEN', help: 'admin API bearer token, read-only scope' },
  'admin-read-token-file': { type: 'string', value: 'FILE', help: 'read --admin-read-token from FILE (first line)' },
  'metrics-top-hosts': {
    type: 'string',
    value: 'N',
    help: 'hosts with their own /metrics series (the rest under host="other"); 0 = none',
    defaultText: '20',
  },
  'access-log': {
    type: 'string',
    value: 'FILE|stdout|off',
    help: 'one JSON line per request, written without blocking',
    defaultText: 'off',
  },
  'access-log-sample': {
    type: 'string',
    value: 'RATE',
    help: 'fraction 0..1 of successful requests logged (errors are always logged)',
    defaultText: '1',
  },
  'events-buffer': {
    type: 'string',
    value: 'N',
    help: 'table events kept for GET /v1/events?since= replay',
    defaultText: '10000',
  },
};

const whole = (option: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${option} takes a whole number`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `${option} must be between ${min} and ${max}`);

export const OPERATOR_SCHEMA = {
  'admin-token': z.string().optional(),
  'admin-token-file': z.string().min(1).optional(),
  'admin-read-token': z.string().optional(),
  'admin-read-token-file': z.string().min(1).optional(),
  'metrics-top-hosts': whole('--metrics-top-hosts', 0, 1000).default(20),
  'access-log': z.string().min(1).default('off'),
  'access-log-sample': z
    .string()
    .regex(/^(0(\.\d+)?|1(\.0+)?)$/, '--access-log-sample takes a number between 0 and 1')
    .transform(Number)
    .default(1),
  'events-buffer': whole('--events-buffer', 100, 1_000_000).default(10_000),
};

type OperatorValues = z.output<z.ZodObject<typeof OPERATOR_SCHEMA>>;

/**
 * Resolves tokens (reading token files) and checks the admin exposure rule. `admin` is undefined for
 * `--admin off` (tokens are then accepted and unused). Throws CliError.
 */
export function operatorConfig(v: OperatorValues, admin: string | undefined): OperatorConfig {
  const adminToken = token(v['admin-token'], v['admin-token-file'], '--admin-token');
  const adminReadToken = token(v['admin-read-token'], v['admin-read-token-file'], '--admin-read-token');
  const bind = admin === undefined ? undefined : parseListenAddress(admin);
  if (bind !== undefined && !isLoopback(bind.host) && adminToken === undefined && adminReadToken === undefined) {
    throw new CliError(
      `--admin ${admin} is not a loopback address: set --admin-token (or --admin-token-file) so the admin API is not open to the network`,
      '--admin',
    );
  }
  return {
    adminToken,
    adminReadToken,
    metricsTopHosts: v['metrics-top-hosts'],
    accessLog: v['access-log'],
    accessLogSample: v['access-log-sample'],
    eventsBuffer: v['events-buffer'],
  };
}

function token(inline: string | undefined, file: string | undefined, option: string): string | undefined {
  if (inline !== undefined && file !== undefined) {
    throw new CliError(`${option} and ${option}-file are exclusive: use one`, option);
  }
  let value = inline;
  if (file !== undefined) {
    try {
      value = readFileSync(file, 'utf8').split(/\r?\n/)[0]!.trim();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new CliError(`${option}-file ${file}: cannot read it (${code})`, `${option}-file`);
    }
  }
  if (value === undefined) return undefined;
  if (value.length < MIN_TOKEN_LENGTH || /\s/.test(value)) {
    throw new CliError(`${option} must be at least ${MIN_TOKEN_LENGTH} characters without spaces`, option);
  }
  return value;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
