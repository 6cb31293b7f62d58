/**
 * `switchyard agent`: announces one backend to one or more subscription servers until SIGINT/SIGTERM,
 * then unsubscribes. Exit codes: 0 after a clean stop or `--help`, 2 for a bad option (one line on stderr
 * naming the option and the fix).
 *
 *   switchyard agent --subscribe-to SERVER:KEY[,MODIFIER1] --address ADDR
 *                    [--weight N] [--proto http|uwsgi] [--interval SECS]
 *                    [--sign-key ed25519|hmac-sha256:FILE --kid ID] [--help]
 *
 * SERVER:KEY follows uWSGI's `--subscribe-to`: SERVER is `host:port` or `[ipv6]:port`, and the key starts
 * after the first ':' that follows the server's port, so the key may carry its own port
 * (`127.0.0.1:2626:api.example.com:8080` → server `127.0.0.1:2626`, key `api.example.com:8080`).
 * uWSGI's RSA signatures (its third field `DIGEST:PRIVKEY`) are not supported and rejected; Switchyard's
 * own Ed25519 / HMAC-SHA256 signatures are (`--sign-key ALG:FILE --kid ID`, see subscription-signer.ts).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import {
  type AgentHandle,
  type AnnounceOptions,
  announce,
  DEFAULT_INTERVAL_MS,
  DEFAULT_WEIGHT,
  resolveAnnounceOptions,
} from './announcer.js';
import { type AgentError, BadOptionError } from './errors.js';
import { KID, type SigningOptions } from './subscription-signer.js';

export interface AgentCliIo {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
  /** Stops the agent like SIGINT does (for embedding and tests). */
  readonly signal?: AbortSignal;
}

/** One `--subscribe-to` value, split. */
export interface SubscribeTarget {
  readonly server: string;
  readonly key: string;
  readonly modifier1: number | undefined;
}

const PROG = 'switchyard agent';

const EXAMPLES: Readonly<Record<string, string>> = {
  'subscribe-to': '127.0.0.1:2626:app.example.com',
  address: '127.0.0.1:3000',
  weight: '2',
  proto: 'http',
  interval: '10',
  'sign-key': 'ed25519:/etc/switchyard/agent.key',
  kid: 'tenant-2024',
};

export const AGENT_HELP = `Usage: ${PROG} --subscribe-to SERVER:KEY --address HOST:PORT [options]

Announces a backend to Switchyard (or uWSGI) subscription servers over UDP, refreshes the announcement
every interval and unsubscribes on SIGINT/SIGTERM.

Options:
  --subscribe-to SERVER:KEY[,MODIFIER1]
                        subscription server (host:port or [ipv6]:port) and the virtual host key to join;
                        the key may carry a port: 127.0.0.1:2626:api.example.com:8080. Repeatable.
                        Required. MODIFIER1 (0..255) defaults to 0.
  --address HOST:PORT   where the router connects to this backend (ipv4:port, [ipv6]:port or
                        hostname:port; uWSGI routers need a numeric IPv4). Required.
  --weight N            balancing weight, 0..65535 (0 counts as 1). Default: ${DEFAULT_WEIGHT}
  --proto http|uwsgi    protocol the router speaks to this backend; uwsgi sends no proto key, like
                        uWSGI nodes. Default: uwsgi
  --interval SECS       seconds between refreshes (uWSGI --subscribe-freq), 0.01..86400.
                        Default: ${DEFAULT_INTERVAL_MS / 1000}
  --sign-key ALG:FILE   sign every datagram for a router started with --subscription-key: ALG is
                        ed25519 (FILE = PEM private key) or hmac-sha256 (FILE = shared secret,
                        at least 16 bytes). Needs --kid. Default: unsigned
  --kid ID              key id the router knows the key by (its key file's base name). Default: none
  -h, --help            print this help and exit. Default: off
`;

/** Splits `SERVER:KEY[,MODIFIER1]`; throws SY_BAD_OPTION (option `--subscribe-to`) when malformed. */
export function splitSubscribeTo(spec: string): SubscribeTarget {
  const bad = (why: string): never => {
    throw new BadOptionError(
      '--subscribe-to',
      `--subscribe-to "${spec}": ${why}; expected SERVER:KEY such as ${EXAMPLES['subscribe-to']} or [::1]:2626:app.example.com`,
    );
  };
  const fields = spec.split(',');
  if (fields.length > 2) bad('signed subscriptions (a third field) are not supported');
  let modifier1: number | undefined;
  if (fields.length === 2) {
    const m = fields[1]!;
    if (!/^\d{1,3}$/.test(m) || Number(m) > 255) bad(`MODIFIER1 "${m}" must be a whole number 0..255`);
    modifier1 = Number(m);
  }
  const head = fields[0]!;
  let portStart: number;
  if (head.startsWith('[')) {
    const close = head.indexOf(']');
    if (close < 0 || head[close + 1] !== ':') bad('an IPv6 server needs brackets and a port, e.g. [::1]:2626');
    portStart = close + 2;
  } else {
    const colon = head.indexOf(':');
    if (colon <= 0) bad('the server needs a host and a port');
    portStart = colon + 1;
  }
  const keyColon = head.indexOf(':', portStart);
  if (keyColon < 0) bad('the key is missing after the server port');
  const port = head.slice(portStart, keyColon);
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) bad(`server port "${port}" is not 1..65535`);
  const key = head.slice(keyColon + 1);
  if (key.length === 0) bad('the key is empty');
  return Object.freeze({ server: head.slice(0, keyColon), key, modifier1 });
}

const wholeNumber = (max: number) =>
  z
    .string()
    .regex(/^\d{1,9}$/, `must be a whole number 0..${max}`)
    .transform(Number)
    .refine((n) => n <= max, `must be a whole number 0..${max}`);

const cliSchema = z.strictObject({
  'subscribe-to': z.array(z.string(), { error: 'is required' }).min(1, 'is required'),
  address: z.string({ error: 'is required' }),
  weight: wholeNumber(65535).optional(),
  proto: z.enum(['http', 'uwsgi'], { error: 'must be http or uwsgi' }).optional(),
  interval: z
    .string()
    .regex(/^\d{1,5}(\.\d{1,3})?$/, 'must be a number of seconds 0.01..86400')
    .transform(Number)
    .refine((n) => n >= 0.01 && n <= 86400, 'must be a number of seconds 0.01..86400')
    .optional(),
  'sign-key': z
    .string()
    .regex(/^(ed25519|hmac-sha256):.+$/, 'must be ed25519:FILE or hmac-sha256:FILE')
    .optional(),
  kid: z.string().regex(KID, 'must be 1..64 of A-Z a-z 0-9 . _ -').optional(),
  help: z.boolean().optional(),
});

type CliValues = z.infer<typeof cliSchema>;

/** Parses argv (the words after `switchyard agent`; a leading `agent` is ignored). Throws SY_BAD_OPTION. */
export function parseAgentArgs(argv: readonly string[]): CliValues {
  const args = argv[0] === 'agent' ? argv.slice(1) : [...argv];
  let values: Record<string, unknown>;
  try {
    values = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        'subscribe-to': { type: 'string', multiple: true },
        address: { type: 'string' },
        weight: { type: 'string' },
        proto: { type: 'string' },
        interval: { type: 'string' },
        'sign-key': { type: 'string' },
        kid: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (error) {
    throw parseArgsError(error);
  }
  if (values['help'] === true) return { 'subscribe-to': [], address: '', help: true };
  const result = cliSchema.safeParse(values);
  if (!result.success) {
    const issue = result.error.issues[0];
    const name = String(issue?.path[0] ?? 'subscribe-to');
    const given = values[name];
    const shown = typeof given === 'string' ? ` "${given}"` : '';
    throw new BadOptionError(
      `--${name}`,
      `--${name}${shown} ${issue?.message ?? 'is invalid'} (e.g. --${name} ${EXAMPLES[name] ?? ''})`,
    );
  }
  return result.data;
}

function parseArgsError(error: unknown): BadOptionError {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  const quoted = /'([^']+)'/.exec(message)?.[1] ?? '';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    return new BadOptionError(quoted, `unknown option ${quoted}; run "${PROG} --help" for the list`);
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const flag = /--[a-z-]+/.exec(quoted)?.[0] ?? quoted;
    const name = flag.slice(2);
    if (name === 'help') return new BadOptionError(flag, `${flag} takes no value; use ${flag} alone`);
    return new BadOptionError(flag, `${flag} needs a value (e.g. ${flag} ${EXAMPLES[name] ?? 'VALUE'})`);
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    return new BadOptionError(quoted, `unexpected argument "${quoted}"; options take the form --name value`);
  }
  return new BadOptionError('argv', message);
}

/** CLI field names used by the announcer's SY_BAD_OPTION errors, mapped back to flags. */
const FLAG_FOR_OPTION: Readonly<Record<string, string>> = {
  server: '--subscribe-to',
  key: '--subscribe-to',
  modifier1: '--subscribe-to',
  address: '--address',
  weight: '--weight',
  proto: '--proto',
  intervalMs: '--interval',
};

/** Turns the CLI values into validated announce options (one per `--subscribe-to`). Throws SY_BAD_OPTION. */
export function buildAnnounceOptions(values: CliValues): AnnounceOptions[] {
  const signing = readSigning(values);
  const seen = new Set<string>();
  return values['subscribe-to'].map((spec) => {
    const target = splitSubscribeTo(spec);
    const id = `${target.server}\n${target.key}`;
    if (seen.has(id)) throw new BadOptionError('--subscribe-to', `--subscribe-to "${spec}" is given twice; drop one`);
    seen.add(id);
    const options: AnnounceOptions = {
      server: target.server,
      key: target.key,
      address: values.address,
      ...(values.weight !== undefined && { weight: values.weight }),
      ...(values.proto !== undefined && { proto: values.proto }),
      ...(target.modifier1 !== undefined && { modifier1: target.modifier1 }),
      ...(values.interval !== undefined && { intervalMs: Math.max(10, Math.round(values.interval * 1000)) }),
      ...(signing !== undefined && { signing }),
    };
    try {
      resolveAnnounceOptions(options);
    } catch (error) {
      if (!(error instanceof BadOptionError)) throw error;
      if (error.option === 'signing') throw new BadOptionError('--sign-key', `--sign-key: ${error.message}`);
      const flag = FLAG_FOR_OPTION[error.option] ?? `--${error.option}`;
      const given = flag === '--subscribe-to' ? spec : values.address;
      throw new BadOptionError(flag, `${flag} "${given}": ${error.message} (e.g. ${flag} ${EXAMPLES[flag.slice(2)]})`);
    }
    return options;
  });
}

/** `--sign-key ALG:FILE` + `--kid ID` → signing options (reads FILE). Throws SY_BAD_OPTION. */
function readSigning(values: CliValues): SigningOptions | undefined {
  const spec = values['sign-key'];
  if (spec === undefined) {
    if (values.kid !== undefined) throw new BadOptionError('--kid', '--kid needs --sign-key ALG:FILE');
    return undefined;
  }
  if (values.kid === undefined) {
    throw new BadOptionError('--kid', `--sign-key needs --kid ID (e.g. --kid ${EXAMPLES.kid})`);
  }
  const colon = spec.indexOf(':');
  const algorithm = spec.slice(0, colon) as SigningOptions['algorithm'];
  const file = spec.slice(colon + 1);
  let key: Buffer;
  try {
    key = readFileSync(file);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new BadOptionError('--sign-key', `--sign-key ${spec}: cannot read the key file: ${why}`);
  }
  return { kid: values.kid, algorithm, key };
}

/** Runs `switchyard agent`; resolves with the exit code once stopped by SIGINT/SIGTERM or `io.signal`. */
export async function runAgentCli(
  argv: readonly string[],
  io: AgentCliIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  let announcements: AnnounceOptions[];
  try {
    const values = parseAgentArgs(argv);
    if (values.help === true) {
      io.stdout.write(AGENT_HELP);
      return 0;
    }
    announcements = buildAnnounceOptions(values);
  } catch (error) {
    if (!(error instanceof BadOptionError)) throw error;
    io.stderr.write(`${PROG}: ${error.message}\n`);
    return 2;
  }
  if (io.signal?.aborted === true) return 0;

  const handles: AgentHandle[] = [];
  for (const options of announcements) {
    const seconds = (options.intervalMs ?? DEFAULT_INTERVAL_MS) / 1000;
    const onError = (error: AgentError) =>
      io.stderr.write(`${PROG}: ${error.code} ${error.message} (next try in ${seconds} s)\n`);
    handles.push(announce({ ...options, onError }));
    io.stdout.write(
      `${PROG}: announcing ${options.address} as ${options.key} to ${options.server} every ${seconds} s` +
        ` (proto ${options.proto ?? 'uwsgi'}, weight ${options.weight ?? DEFAULT_WEIGHT}` +
        `${options.signing === undefined ? '' : `, signed ${options.signing.algorithm} kid ${options.signing.kid}`})\n`,
    );
  }

  const reason = await waitForStop(io.signal);
  io.stdout.write(`${PROG}: ${reason}, unsubscribing\n`);
  await Promise.all(handles.map((h) => h.close()));
  io.stdout.write(`${PROG}: stopped\n`);
  return 0;
}

function waitForStop(signal: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve) => {
    const finish = (reason: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      signal?.removeEventListener('abort', onAbort);
      resolve(reason);
    };
    const onInt = () => finish('SIGINT');
    const onTerm = () => finish('SIGTERM');
    const onAbort = () => finish('stop requested');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
