/**
 * Resubscriber: uWSGI's `--http-resubscribe ADDR` (router chaining). Every subscription packet this
 * router accepted is sent on, byte for byte, to each configured subscription server, so routers behind
 * this one learn the same nodes (a signed packet stays verifiable: nothing is re-encoded).
 *
 * Contract:
 *  - only accepted packets are forwarded (subscribes and unsubscribes; never a dropped or rejected one,
 *    so the chain cannot be used to relay what this router refused);
 *  - loop guard: the same bytes are forwarded at most once per `dedupeMs` (default 1000). Nodes refresh
 *    every few seconds, so every real refresh still goes on, but two routers resubscribing to each other
 *    stop bouncing a packet after one round instead of at network speed (a signed packet is refused as a
 *    replay by then anyway);
 *  - targets are numeric `host:port` (IPv4 or [IPv6]), resolved once; sends are fire-and-forget (UDP),
 *    a failed send is counted and logged at most once per second;
 *  - `start()` opens one UDP socket per address family needed, `close()` closes them; safe twice.
 *    The constructor does no I/O.
 */
import { createHash } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import { type Logger, pino } from 'pino';

export interface ResubscribeTarget {
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/** Parses `host:port` / `[ipv6]:port` with a numeric host; undefined otherwise. */
export function parseResubscribeTarget(text: string): ResubscribeTarget | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):([0-9]{1,5})$/.exec(text);
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined) return isIPv6(m[1]) ? { host: m[1], port, family: 6 } : undefined;
  return isIPv4(m[2]!) ? { host: m[2]!, port, family: 4 } : undefined;
}

export interface ResubscriberOptions {
  readonly targets: readonly ResubscribeTarget[];
  readonly logger?: Logger;
  /** ms clock; default Date.now. */
  readonly clock?: () => number;
  /** The same bytes are forwarded at most once per this many ms. Default 1000. */
  readonly dedupeMs?: number;
  /** Remembered packets before old ones are swept. Default 10000. */
  readonly maxRemembered?: number;
}

export interface ResubscriberStats {
  readonly forwarded: number;
  /** Packets not forwarded again within the dedupe window (loop guard). */
  readonly repeated: number;
  readonly failed: number;
}

export class Resubscriber {
  readonly #targets: readonly ResubscribeTarget[];
  readonly #logger: Logger;
  readonly #clock: () => number;
  readonly #dedupeMs: number;
  readonly #maxRemembered: number;
  /** Packet digest → ms it was last forwarded. */
  readonly #recent = new Map<string, number>();
  #sockets: { 4?: Socket; 6?: Socket } = {};
  #forwarded = 0;
  #repeated = 0;
  #failed = 0;
  #lastFailureLog = Number.NEGATIVE_INFINITY;
  #closed = false;

  constructor(options: ResubscriberOptions) {
    this.#targets = options.targets;
    this.#logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'resubscriber' });
    this.#clock = options.clock ?? Date.now;
    this.#dedupeMs = options.dedupeMs ?? 1000;
    this.#maxRemembered = options.maxRemembered ?? 10_000;
  }

  /** Opens the sending sockets (one per address family the targets use). */
  async start(): Promise<void> {
    for (const family of [4, 6] as const) {
      if (this.#closed || !this.#targets.some((t) => t.family === family)) continue;
      const socket = createSocket(family === 4 ? 'udp4' : 'udp6');
      socket.on('error', (err) => this.#failure(err));
      await new Promise<void>((resolve) => socket.bind(0, resolve));
      socket.unref();
      this.#sockets[family] = socket;
    }
  }

  /** Sends an accepted packet on to every target (unless the same bytes went out within the window). */
  forward(datagram: Buffer): void {
    if (this.#closed || this.#targets.length === 0) return;
    const now = this.#clock();
    const digest = createHash('sha1').update(datagram).digest('base64');
    const last = this.#recent.get(digest);
    if (last !== undefined && now - last < this.#dedupeMs) {
      this.#repeated++;
      return;
    }
    if (last === undefined && this.#recent.size >= this.#maxRemembered) this.#sweep(now);
    this.#recent.set(digest, now);
    for (const target of this.#targets) {
      const socket = this.#sockets[target.family];
      if (socket === undefined) continue;
      this.#forwarded++;
      socket.send(datagram, target.port, target.host, (err) => {
        if (err) this.#failure(err);
      });
    }
  }

  stats(): ResubscriberStats {
    return { forwarded: this.#forwarded, repeated: this.#repeated, failed: this.#failed };
  }

  close(): Promise<void> {
    this.#closed = true;
    const sockets = [this.#sockets[4], this.#sockets[6]].filter((s): s is Socket => s !== undefined);
    this.#sockets = {};
    return Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(
      () => undefined,
    );
  }

  #sweep(now: number): void {
    for (const [digest, at] of this.#recent) if (now - at >= this.#dedupeMs) this.#recent.delete(digest);
    // Still full (a flood of distinct packets within one window): start over rather than grow.
    if (this.#recent.size >= this.#maxRemembered) this.#recent.clear();
  }

  #failure(err: Error): void {
    this.#failed++;
    const now = this.#clock();
    if (now - this.#lastFailureLog < 1000) return;
    this.#lastFailureLog = now;
    this.#logger.warn({ err }, 'resubscribe send failed');
  }
}
