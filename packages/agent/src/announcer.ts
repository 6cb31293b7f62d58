/**
 * The announcer: keeps one backend subscribed to one subscription server, the way a uWSGI node does with
 * `--subscribe-to` / `--subscribe2`.
 *
 * Contract:
 * - Options are validated once (zod, strict) by `announce()`; anything invalid throws SY_BAD_OPTION
 *   before any I/O happens.
 * - A subscribe datagram (modifier2 = 0) goes out at once, then every `intervalMs` (default 10 000 ms,
 *   uWSGI's `--subscribe-freq 10`). The timer is NOT unref'd: an open agent keeps the process alive.
 * - Pairs are emitted in uWSGI's order: key, address, modifier1, modifier2, cores ("0"), load ("0"),
 *   weight, then `proto=http` (only for HTTP backends; a uwsgi backend sends no proto key, like uWSGI
 *   nodes), then the extras in insertion order. Numbers are ASCII decimal strings.
 * - Datagrams are sent one at a time, in order: an unsubscribe can never overtake a pending subscribe.
 *   A refresh that comes due while a send is still pending (slow DNS) is skipped, not queued.
 * - Send failures (SY_SEND_FAILED) are counted in `failed` and passed to `onError`; the timer never throws.
 *   `announceNow()` rejects with the error instead (and counts it).
 * - `close()` stops the timer, sends exactly one unsubscribe (same pairs, modifier2 = 1), closes the
 *   socket(s) and resolves, even if that last send failed (reported to `onError`). Safe to call twice.
 *
 * - With `signing`, every datagram (the unsubscribe too) is signed afresh (ts, nonce, kid, sig; see
 *   subscription-signer.ts) for a router started with `--subscription-key`.
 *
 * UDP only: `server` is `ipv4:port`, `[ipv6]:port` or `hostname:port`. A hostname is resolved before every
 * send (bounded by a 2 s timeout), so a server that moves (e.g. a restarted container) is followed.
 */
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { type EncodablePair, encodeSubscription, parseHostKey } from '@switchyard/protocol';
import { z } from 'zod';
import { AgentClosedError, type AgentError, BadOptionError, SendFailedError } from './errors.js';
import {
  type ResolvedSigning,
  resolveSigning,
  SIGNING_PAIR_NAMES,
  type SigningOptions,
  signingOverhead,
  signSubscription,
} from './subscription-signer.js';

export interface AnnounceOptions {
  /** Subscription server, UDP: `ipv4:port`, `[ipv6]:port` or `hostname:port`. */
  readonly server: string;
  /** The vhost key to join (`host` or `host:port`, uWSGI compares it with the raw Host header). */
  readonly key: string;
  /** Where the router connects to this backend: `ipv4:port`, `[ipv6]:port` or `hostname:port`. */
  readonly address: string;
  /** Balancing weight 0..65535; 0 counts as 1 on the server. Default 1. */
  readonly weight?: number;
  /** Protocol the router speaks to this backend. Default 'uwsgi' (no proto key is sent). */
  readonly proto?: 'http' | 'uwsgi';
  /** modifier1 the router uses towards this node, 0..255. Default 0 (WSGI). */
  readonly modifier1?: number;
  /** modifier2 the router uses towards this node, 0..255. Default 0. */
  readonly modifier2?: number;
  /** Milliseconds between refreshes, 10..86 400 000. Default 10 000. */
  readonly intervalMs?: number;
  /** Extra pairs appended after the standard ones (e.g. `backup`, `algo`). Reserved names are rejected. */
  readonly extra?: Readonly<Record<string, string>>;
  /** Receives every failed send of the refresh timer and of `close()` (SY_SEND_FAILED). */
  readonly onError?: (error: AgentError) => void;
  /** Sign every datagram (Ed25519 or HMAC-SHA256) for a router started with `--subscription-key`. */
  readonly signing?: SigningOptions;
}

export interface AgentHandle {
  /** Stops refreshing, sends one unsubscribe, closes the socket. Resolves once done; safe twice. */
  close(): Promise<void>;
  /** Sends a subscribe now. Rejects with SY_SEND_FAILED on failure, SY_AGENT_CLOSED after close(). */
  announceNow(): Promise<void>;
  /** Datagrams (subscribes and the unsubscribe) handed to the kernel successfully. */
  readonly sent: number;
  /** Datagrams that could not be sent. */
  readonly failed: number;
}

/** A UDP endpoint; family 0 means `host` is a DNS name resolved at send time. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly family: 0 | 4 | 6;
}

export const DEFAULT_INTERVAL_MS = 10_000;
export const DEFAULT_WEIGHT = 1;
/** Largest datagram a uWSGI subscription server reads (its receive buffer); longer ones are truncated. */
export const MAX_SUBSCRIPTION_DATAGRAM = 4096;
const LOOKUP_TIMEOUT_MS = 2_000;
const RESERVED_KEYS = new Set(['key', 'address', 'modifier1', 'modifier2', 'cores', 'load', 'weight', 'proto']);
/** Names that must stay last or need signing support the agent does not have. */
const FORBIDDEN_EXTRA_KEYS = new Set(['sign', 'unix', ...SIGNING_PAIR_NAMES]);

/** Parses `ipv4:port`, `[ipv6]:port` or `hostname:port` (port required, 1..65535); undefined otherwise. */
export function parseEndpoint(text: string): Endpoint | undefined {
  const parsed = parseHostKey(text);
  if (parsed === undefined || parsed.port === undefined) return undefined;
  if (parsed.host.startsWith('[')) {
    const host = parsed.host.slice(1, -1);
    return isIP(host) === 6 ? { host, port: parsed.port, family: 6 } : undefined;
  }
  if (isIP(parsed.host) === 4) return { host: parsed.host, port: parsed.port, family: 4 };
  // All-numeric labels that are not a valid dotted quad (999.1.1.1, 10.1) are typos, not hostnames.
  if (/^[0-9.]+$/.test(parsed.host)) return undefined;
  return { host: parsed.host, port: parsed.port, family: 0 };
}

const endpointString = () =>
  z.string({ error: 'is required' }).refine((v) => parseEndpoint(v) !== undefined, {
    error: 'must be ipv4:port, [ipv6]:port or hostname:port with a port 1..65535',
  });

const wholeNumber = (min: number, max: number, unit = '') => {
  const error = `must be a whole number${unit} ${min}..${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};

const optionsSchema = z.strictObject({
  server: endpointString(),
  key: z.string({ error: 'is required' }).refine((v) => parseHostKey(v, { allowWildcard: true }) !== undefined, {
    error: 'must be a hostname or IP literal with an optional :port, at most 255 bytes',
  }),
  address: endpointString(),
  weight: wholeNumber(0, 65535).optional(),
  proto: z.enum(['http', 'uwsgi'], { error: 'must be "http" or "uwsgi"' }).optional(),
  modifier1: wholeNumber(0, 255).optional(),
  modifier2: wholeNumber(0, 255).optional(),
  intervalMs: wholeNumber(10, 86_400_000, ' of milliseconds').optional(),
  extra: z
    .record(
      z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'names must be 1..64 of A-Z a-z 0-9 _ . -' }),
      z.string({ error: 'values must be strings' }).max(1024, { error: 'values must be at most 1024 characters' }),
      { error: 'must be an object of string pairs' },
    )
    .refine((r) => Object.keys(r).every((k) => !RESERVED_KEYS.has(k) && !FORBIDDEN_EXTRA_KEYS.has(k)), {
      error: `must not redefine ${[...RESERVED_KEYS, ...FORBIDDEN_EXTRA_KEYS].join(', ')}`,
    })
    .optional(),
  onError: z
    .custom<(error: AgentError) => void>((v) => typeof v === 'function', { error: 'must be a function' })
    .optional(),
  signing: z
    .custom<SigningOptions>((v) => typeof v === 'object' && v !== null, { error: 'must be { kid, algorithm, key }' })
    .optional(),
});

/** Options after validation, defaults applied; frozen. */
export interface ResolvedAnnounceOptions {
  readonly server: Endpoint;
  readonly serverText: string;
  readonly key: string;
  readonly address: string;
  readonly intervalMs: number;
  /** The pairs of every datagram, in emission order. */
  readonly pairs: readonly EncodablePair[];
  readonly onError: ((error: AgentError) => void) | undefined;
  readonly signing: ResolvedSigning | undefined;
}

/** Validates `options` (throws SY_BAD_OPTION naming the option) and builds the pair list. No I/O. */
export function resolveAnnounceOptions(options: AnnounceOptions): ResolvedAnnounceOptions {
  const result = optionsSchema.safeParse(options);
  if (!result.success) {
    const issue = result.error.issues[0];
    if (issue?.code === 'unrecognized_keys') {
      const option = String(issue.keys[0]);
      throw new BadOptionError(option, `${option} is not an announce option`);
    }
    const option = issue !== undefined && issue.path.length > 0 ? String(issue.path[0]) : 'options';
    throw new BadOptionError(option, `${option} ${issue?.message ?? 'is invalid'}`);
  }
  const o = result.data;
  const pairs: EncodablePair[] = [
    ['key', o.key],
    ['address', o.address],
    ['modifier1', String(o.modifier1 ?? 0)],
    ['modifier2', String(o.modifier2 ?? 0)],
    ['cores', '0'],
    ['load', '0'],
    ['weight', String(o.weight ?? DEFAULT_WEIGHT)],
  ];
  if (o.proto === 'http') pairs.push(['proto', 'http']);
  for (const [k, v] of Object.entries(o.extra ?? {})) pairs.push([k, v]);
  const signing = o.signing === undefined ? undefined : resolveSigning(o.signing);
  let size: number;
  try {
    size = encodeSubscription('subscribe', pairs).length + (signing === undefined ? 0 : signingOverhead(signing));
  } catch {
    size = Number.POSITIVE_INFINITY;
  }
  if (size > MAX_SUBSCRIPTION_DATAGRAM) {
    throw new BadOptionError('extra', `extra makes the datagram exceed ${MAX_SUBSCRIPTION_DATAGRAM} bytes`);
  }
  return Object.freeze({
    server: parseEndpoint(o.server)!,
    serverText: o.server,
    key: o.key,
    address: o.address,
    intervalMs: o.intervalMs ?? DEFAULT_INTERVAL_MS,
    pairs: Object.freeze(pairs),
    onError: o.onError,
    signing,
  });
}

/** Validates the options, sends the first subscribe at once and keeps refreshing until `close()`. */
export function announce(options: AnnounceOptions): AgentHandle {
  const announcer = new Announcer(resolveAnnounceOptions(options));
  announcer.start();
  return announcer;
}

type Command = 'subscribe' | 'unsubscribe';

class Announcer implements AgentHandle {
  readonly #options: ResolvedAnnounceOptions;
  readonly #subscribePacket: Buffer;
  readonly #unsubscribePacket: Buffer;
  readonly #sockets = new Map<4 | 6, Socket>();
  #timer: NodeJS.Timeout | undefined;
  /** Tail of the send chain; never rejects. */
  #queue: Promise<void> = Promise.resolve();
  #pending = 0;
  #closing: Promise<void> | undefined;
  #sent = 0;
  #failed = 0;

  constructor(options: ResolvedAnnounceOptions) {
    this.#options = options;
    this.#subscribePacket = encodeSubscription('subscribe', options.pairs);
    this.#unsubscribePacket = encodeSubscription('unsubscribe', options.pairs);
  }

  get sent(): number {
    return this.#sent;
  }

  get failed(): number {
    return this.#failed;
  }

  start(): void {
    this.#enqueue('subscribe').catch((error: unknown) => this.#report(error));
    this.#timer = setInterval(() => {
      if (this.#pending > 0) return;
      this.#enqueue('subscribe').catch((error: unknown) => this.#report(error));
    }, this.#options.intervalMs);
  }

  announceNow(): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new AgentClosedError());
    return this.#enqueue('subscribe');
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    try {
      await this.#enqueue('unsubscribe');
    } catch (error) {
      this.#report(error);
    }
    const sockets = [...this.#sockets.values()];
    this.#sockets.clear();
    await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  #report(error: unknown): void {
    const onError = this.#options.onError;
    if (onError === undefined) return;
    try {
      onError(error as AgentError);
    } catch {
      // A throwing callback must not break the refresh timer.
    }
  }

  #enqueue(command: Command): Promise<void> {
    this.#pending++;
    const run = this.#queue.then(() => this.#sendOne(command));
    const settled = run.then(
      () => {
        this.#pending--;
        this.#sent++;
      },
      (error: unknown) => {
        this.#pending--;
        this.#failed++;
        throw error;
      },
    );
    this.#queue = settled.catch(() => undefined);
    return settled;
  }

  async #sendOne(command: Command): Promise<void> {
    const signing = this.#options.signing;
    const packet =
      signing !== undefined
        ? signSubscription(command, this.#options.pairs, signing)
        : command === 'subscribe'
          ? this.#subscribePacket
          : this.#unsubscribePacket;
    const target = this.#options.server;
    try {
      const { address, family } =
        target.family === 0 ? await resolveHost(target.host) : { address: target.host, family: target.family };
      const socket = this.#socketFor(family === 6 ? 6 : 4);
      await new Promise<void>((resolve, reject) => {
        socket.send(packet, target.port, address, (error) => (error ? reject(error) : resolve()));
      });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new SendFailedError(command, `${command} to ${this.#options.serverText} failed: ${reason}`, error);
    }
  }

  #socketFor(family: 4 | 6): Socket {
    let socket = this.#sockets.get(family);
    if (socket === undefined) {
      socket = createSocket(family === 6 ? 'udp6' : 'udp4');
      // Asynchronous socket errors (rare for unconnected UDP) are reported, never thrown.
      socket.on('error', (error) => {
        this.#failed++;
        this.#report(new SendFailedError('subscribe', `socket error: ${error.message}`, error));
      });
      this.#sockets.set(family, socket);
    }
    return socket;
  }
}

/** dns.lookup bounded by LOOKUP_TIMEOUT_MS (getaddrinfo itself has no deadline). */
async function resolveHost(host: string): Promise<{ address: string; family: number }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`lookup of ${host} timed out`)), LOOKUP_TIMEOUT_MS);
  });
  try {
    return await Promise.race([lookup(host), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
