/**
 * NotifySender: subscription acknowledgements to the `notify` target a packet names.
 *
 * uWSGI sends `[subscription ack] <key> => new node: <address>` to the packet's `notify` UNIX datagram
 * socket when a node is created. Switchyard sends that exact line on creation, and beyond uWSGI one line
 * for every change of state and every rejected packet that carries `notify`:
 *   [subscription ack] <key> => new node: <address>        node added
 *   [subscription ack] <key> => updated node: <address>    a refresh changed a routing field (weight...)
 *   [subscription ack] <key> => draining node: <address>   unsubscribe accepted
 *   [subscription nack] <key> => rejected: <reason>         dropped after parsing (reason = DropReason)
 * A plain refresh (nothing changed) is not acknowledged, as with uWSGI: uWSGI nodes log every line they
 * receive, and a line every refresh interval per node would drown their logs. Silence after `new node`
 * means still accepted; a rejection is always answered (rate-limited per destination).
 *
 * Targets: a UNIX datagram socket path (absolute `/path`, or `@abstract`; as uWSGI, fewer than 102 bytes),
 * sent with the `unix-dgram` addon (an optional dependency: when it did not build, UNIX targets are
 * counted as `unsupported` and logged once); or, as a Switchyard extension, a UDP `ipv4:port` /
 * `[ipv6]:port`. DNS names are refused (no lookups on attacker-chosen names).
 *
 * Safety (an ack is a datagram aimed where the packet says, so it must not become a reflection or SSRF
 * tool): acks never go to the packet's UDP source address (only to the notify target); the target must
 * pass the same NodeAddressPolicy as node addresses (never the router's own listeners; inside the node
 * allowlist when one is set); each destination has a token bucket (default 5/s, burst 10) and all acks
 * together one more (default 500/s); the caller sends acks only for packets whose signature verified
 * when signing is on. Ack lines are short (< 600 bytes) and contain only validated fields.
 */
import { createSocket, type Socket } from 'node:dgram';
import { createRequire } from 'node:module';
import { isIPv4, isIPv6 } from 'node:net';
import { type Logger, pino } from 'pino';
import type { Announcement } from './announcement.js';
import type { DropReason } from './errors.js';
import type { NodeAddressPolicy } from './node-address-policy.js';
import { RateLimiter } from './rate-limiter.js';

export type AckOutcome =
  | { readonly kind: 'added' | 'refreshed' | 'updated' | 'draining' }
  | { readonly kind: 'rejected'; readonly reason: DropReason };

/** Receives the outcome of every decoded, parsed packet that carries `notify`. */
export interface SubscriptionAcknowledger {
  acknowledge(announcement: Announcement, outcome: AckOutcome): void;
}

export type NotifyTarget =
  | { readonly kind: 'udp'; readonly host: string; readonly port: number; readonly family: 4 | 6 }
  | { readonly kind: 'unix'; readonly path: string };

export interface NotifySenderOptions {
  /** Checks targets against the node-address rules; default: only syntax checks. */
  readonly policy?: NodeAddressPolicy;
  /** Acks per second per destination. Default 5 (burst 2 ×). */
  readonly perTargetRate?: number;
  /** Acks per second in all. Default 500. */
  readonly globalRate?: number;
  readonly logger?: Logger;
  /** ms; default Date.now. */
  readonly clock?: () => number;
}

export interface NotifyStats {
  readonly sent: number;
  /** Dropped by the per-destination or global rate limit. */
  readonly rateLimited: number;
  /** Target malformed, a DNS name, or refused by the address policy. */
  readonly refused: number;
  /** UNIX targets while the unix-dgram addon is unavailable. */
  readonly unsupported: number;
  /** The kernel refused the send (no such socket, congestion...). */
  readonly failed: number;
}

/** Parses a notify value; undefined for anything but `/path`, `@name`, `ipv4:port`, `[ipv6]:port`. */
export function parseNotifyTarget(text: string): NotifyTarget | undefined {
  if (text.length === 0 || Buffer.byteLength(text) >= 102) return undefined;
  if (text.startsWith('/')) return { kind: 'unix', path: text };
  if (text.startsWith('@') && text.length > 1) return { kind: 'unix', path: `\0${text.slice(1)}` };
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):([0-9]{1,5})$/.exec(text);
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined) return isIPv6(m[1]) ? { kind: 'udp', host: m[1], port, family: 6 } : undefined;
  return isIPv4(m[2]!) ? { kind: 'udp', host: m[2]!, port, family: 4 } : undefined;
}

/** The ack line for an outcome (uWSGI's wording for a new node). */
export function ackMessage(announcement: Announcement, outcome: AckOutcome): string {
  const { key, address } = announcement;
  switch (outcome.kind) {
    case 'added':
      return `[subscription ack] ${key} => new node: ${address}`;
    case 'refreshed':
      return `[subscription ack] ${key} => refreshed node: ${address}`;
    case 'updated':
      return `[subscription ack] ${key} => updated node: ${address}`;
    case 'draining':
      return `[subscription ack] ${key} => draining node: ${address}`;
    case 'rejected':
      return `[subscription nack] ${key} => rejected: ${outcome.reason}`;
  }
}

interface UnixDgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb: (err?: Error) => void): void;
  close(): void;
  on(event: 'error', listener: (err: Error) => void): void;
}

interface UnixDgramModule {
  createSocket(type: 'unix_dgram'): UnixDgramSocket;
}

/** Loads the optional unix-dgram addon; undefined (with the reason) when it is not installed or built. */
export function loadUnixDgram(): { module: UnixDgramModule } | { error: string } {
  try {
    const require = createRequire(import.meta.url);
    return { module: require('unix-dgram') as UnixDgramModule };
  } catch (err) {
    return { error: err instanceof Error ? err.message.split('\n')[0]! : String(err) };
  }
}

export class NotifySender implements SubscriptionAcknowledger {
  readonly #policy: NodeAddressPolicy | undefined;
  readonly #limiter: RateLimiter;
  readonly #logger: Logger;
  #udp4: Socket | undefined;
  #udp6: Socket | undefined;
  #unix: UnixDgramSocket | undefined;
  #unixUnavailable: string | undefined;
  #closed = false;
  #sent = 0;
  #rateLimited = 0;
  #refused = 0;
  #unsupported = 0;
  #failed = 0;

  /** Does no I/O: sockets are created on first use. */
  constructor(options: NotifySenderOptions = {}) {
    this.#policy = options.policy;
    this.#limiter = new RateLimiter({
      ratePerSecond: options.perTargetRate ?? 5,
      globalRatePerSecond: options.globalRate ?? 500,
      maxKeys: 10_000,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
    this.#logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'subscription-notify' });
  }

  stats(): NotifyStats {
    return Object.freeze({
      sent: this.#sent,
      rateLimited: this.#rateLimited,
      refused: this.#refused,
      unsupported: this.#unsupported,
      failed: this.#failed,
    });
  }

  acknowledge(announcement: Announcement, outcome: AckOutcome): void {
    const notify = announcement.notify;
    if (notify === undefined || this.#closed || outcome.kind === 'refreshed') return;
    const target = parseNotifyTarget(notify);
    if (target === undefined) {
      this.#refused++;
      return;
    }
    if (target.kind === 'udp' && this.#policy !== undefined) {
      if (!this.#policy.check({ kind: 'tcp', host: target.host, port: target.port }).ok) {
        this.#refused++;
        return;
      }
    } else if (target.kind === 'unix' && this.#policy?.restricted === true) {
      if (!this.#policy.check({ kind: 'unix', path: target.path }).ok) {
        this.#refused++;
        return;
      }
    }
    const destination = target.kind === 'udp' ? `${target.host}:${target.port}` : target.path;
    if (!this.#limiter.take(destination)) {
      this.#rateLimited++;
      return;
    }
    const message = Buffer.from(ackMessage(announcement, outcome), 'utf8');
    if (target.kind === 'udp') this.#sendUdp(message, target);
    else this.#sendUnix(message, target.path);
  }

  /** Closes the sockets; later acks are ignored. Safe twice. */
  async close(): Promise<void> {
    this.#closed = true;
    const sockets = [this.#udp4, this.#udp6].filter((s): s is Socket => s !== undefined);
    this.#udp4 = undefined;
    this.#udp6 = undefined;
    await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    try {
      this.#unix?.close();
    } catch {
      // already closed
    }
    this.#unix = undefined;
  }

  #sendUdp(message: Buffer, target: { host: string; port: number; family: 4 | 6 }): void {
    let socket = target.family === 4 ? this.#udp4 : this.#udp6;
    if (socket === undefined) {
      socket = createSocket(target.family === 4 ? 'udp4' : 'udp6');
      socket.on('error', (err) => this.#logger.debug({ err }, 'notify socket error'));
      socket.unref();
      if (target.family === 4) this.#udp4 = socket;
      else this.#udp6 = socket;
    }
    socket.send(message, target.port, target.host, (err) => {
      if (err) this.#failed++;
      else this.#sent++;
    });
  }

  #sendUnix(message: Buffer, path: string): void {
    if (this.#unix === undefined) {
      if (this.#unixUnavailable !== undefined) {
        this.#unsupported++;
        return;
      }
      const loaded = loadUnixDgram();
      if ('error' in loaded) {
        this.#unixUnavailable = loaded.error;
        this.#unsupported++;
        this.#logger.warn(
          { reason: loaded.error },
          'UNIX notify sockets unavailable: the unix-dgram addon did not load',
        );
        return;
      }
      this.#unix = loaded.module.createSocket('unix_dgram');
      this.#unix.on('error', (err) => this.#logger.debug({ err }, 'notify unix socket error'));
    }
    this.#unix.send(message, 0, message.length, path, (err) => {
      if (err) this.#failed++;
      else this.#sent++;
    });
  }
}
