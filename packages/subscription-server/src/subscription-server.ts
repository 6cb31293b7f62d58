/**
 * SubscriptionServer: the UDP intake. Per datagram, cheapest checks first:
 *   header (size, modifier1, datasize) → admission (source CIDR, per-source rate limit; before any
 *   parsing) → decode (framing) → parseAnnouncement (field syntax) → verifier (authorisation:
 *   key/source rules, node address policy, signatures) → registry → acknowledger (notify acks).
 * The whole datagram is applied or dropped; every drop is counted by DropReason and logged at most once
 * per reason per second (with the number of drops the limiter suppressed), so a flood cannot flood the
 * log. The server never sends anything on its sockets and never answers the UDP source (no reflection,
 * no amplification); acks go only to a packet's `notify` target, through the acknowledger.
 *
 * Binds: `host:port`, `[ipv6]:port` or `:port` (all IPv4 interfaces); port 0 picks a free port (see
 * `addresses()`). An IPv6 literal binds a udp6 socket with `ipv6Only` set, so `0.0.0.0:P` and `[::]:P`
 * can be listed together; anything else binds udp4 (a host name is resolved by dgram).
 *
 * The server does not own the registry: the composition starts and closes it.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { decodeSubscription, SUBSCRIPTION_MODIFIER1, type SubscriptionPacket } from '@switchyard/protocol';
import { type Logger, pino } from 'pino';
import { z } from 'zod';
import { type Announcement, type AnnouncementOptions, parseAnnouncement } from './announcement.js';
import { readCommonAnnouncement } from './announcement-reader.js';
import type { CheckResult } from './check-result.js';
import { BindFailedError, ClosedError, type DropReason, emptyDropCounters, InvalidOptionsError } from './errors.js';
import { type AckOutcome, loadUnixDgram, type SubscriptionAcknowledger } from './notify-sender.js';
import type { ApplyResult, SubscriptionRegistry } from './registry.js';
import { isUnixBind, UnixSubscriptionSocket } from './unix-subscription-socket.js';

/** Where a datagram came from (UDP source; unauthenticated, spoofable). */
export interface DatagramSource {
  readonly address: string;
  readonly port: number;
}

/**
 * Authorises a decoded, validated announcement (signatures, allowlists...). Called for subscribes and
 * unsubscribes. Must not throw; a throw counts as a refusal. `detail` goes to the drop log; `reason`
 * (default 'rejected-by-verifier') is the counted DropReason; `acknowledge: true` allows a nack to the
 * packet's notify target (only when the refusal does not depend on an unverified signature).
 */
export interface SubscriptionVerifier {
  verify(
    packet: SubscriptionPacket,
    announcement: Announcement,
    source: DatagramSource,
  ):
    | { readonly ok: true }
    | {
        readonly ok: false;
        readonly detail: string;
        readonly reason?: DropReason;
        readonly acknowledge?: boolean;
      };
}

/** Admits or refuses a datagram by its source alone, before it is decoded (CIDR lists, rate limits). */
export interface SubscriptionAdmission {
  admit(source: DatagramSource): CheckResult;
}

/** The default verifier: uWSGI's trusted-network model, every well-formed announcement is accepted. */
export const acceptAllVerifier: SubscriptionVerifier = Object.freeze({
  verify: () => ({ ok: true }) as const,
});

export interface SubscriptionServerOptions {
  /**
   * Bind addresses: `host:port`, `[ipv6]:port`, `:port` (UDP; port 0 allowed), or a UNIX datagram socket
   * `/path` / `@abstract` (unix-subscription-socket.ts; needs the optional unix-dgram addon). At least one.
   */
  binds: readonly string[];
  registry: SubscriptionRegistry;
  logger?: Logger;
  /**
   * SO_RCVBUF request in bytes. Default 32 MiB: room for a burst of ~40 000 announcements queued in the
   * kernel (each small datagram is charged ~800 bytes). The kernel caps it at net.core.rmem_max (often
   * 208 KiB); the memory is only used while datagrams wait. README: "Subscription bursts".
   */
  recvBufferSize?: number;
  /** Largest accepted datagram including the 4-byte header. Default 4096 (uWSGI's buffer). */
  maxPacketSize?: number;
  /** Default acceptAllVerifier. */
  verifier?: SubscriptionVerifier;
  /** Source gate run before decoding; default: admit everything. */
  admission?: SubscriptionAdmission;
  /** Receives outcomes of packets carrying `notify` (see notify-sender.ts); default: no acks. */
  acknowledger?: SubscriptionAcknowledger;
  /** ms, for the drop-log rate limiter; default Date.now. */
  clock?: () => number;
  /** Accept mountpoint keys `host/segment` (uWSGI `--subscription-mountpoints`). Default false. */
  mountpoints?: boolean;
  /** Gets every accepted datagram, as received (router chaining: resubscriber.ts). Default none. */
  forwarder?: SubscriptionForwarder;
}

/** Receives the bytes of every accepted subscription packet. */
export interface SubscriptionForwarder {
  forward(datagram: Buffer): void;
}

export interface SubscriptionServerStats {
  /** Datagrams received (handled), accepted or not. */
  readonly received: number;
  /** Datagrams applied to the registry (subscribes + unsubscribes). */
  readonly accepted: number;
  readonly subscribes: number;
  readonly unsubscribes: number;
  /** Dropped datagrams by reason; every DropReason is present. */
  readonly dropped: Readonly<Record<DropReason, number>>;
}

export interface BoundAddress {
  readonly address: string;
  readonly port: number;
  readonly family: string;
}

/** A parsed bind address: the original text, host, port and socket type. */
export interface BindSpec {
  readonly text: string;
  readonly host: string;
  readonly port: number;
  readonly type: 'udp4' | 'udp6';
}

const BIND = /^(?:\[([^\]]+)\]|([^:[\]]*)):([0-9]{1,5})$/;

/** Parses a bind address; undefined when it is not `host:port`, `[ipv6]:port` or `:port`. */
export function parseBindAddress(text: string): BindSpec | undefined {
  const m = BIND.exec(text);
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  if (m[1] !== undefined) {
    return isIPv6(m[1]) ? { text, host: m[1], port, type: 'udp6' } : undefined;
  }
  const host = m[2] ?? '';
  return { text, host: host.length === 0 ? '0.0.0.0' : host, port, type: 'udp4' };
}

const OptionsSchema = z.strictObject({
  binds: z
    .array(
      z
        .string()
        .refine(
          (b) => isUnixBind(b) || parseBindAddress(b) !== undefined,
          'not host:port, [ipv6]:port, :port, /path or @name',
        ),
    )
    .min(1),
  registry: z.custom<SubscriptionRegistry>((v) => typeof v === 'object' && v !== null, 'registry is required'),
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null, 'logger must be a pino logger').optional(),
  recvBufferSize: z.number().int().positive().max(0x7fff_ffff).optional(),
  maxPacketSize: z.number().int().min(4).max(65_539).optional(),
  verifier: z
    .custom<SubscriptionVerifier>(
      (v) => typeof v === 'object' && v !== null && typeof (v as SubscriptionVerifier).verify === 'function',
      'verifier must have a verify() method',
    )
    .optional(),
  clock: z.custom<() => number>((v) => typeof v === 'function', 'clock must be a function').optional(),
  mountpoints: z.boolean().optional(),
  forwarder: z
    .custom<SubscriptionForwarder>(
      (v) => typeof v === 'object' && v !== null && typeof (v as SubscriptionForwarder).forward === 'function',
      'forwarder must have a forward() method',
    )
    .optional(),
  admission: z
    .custom<SubscriptionAdmission>(
      (v) => typeof v === 'object' && v !== null && typeof (v as SubscriptionAdmission).admit === 'function',
      'admission must have an admit() method',
    )
    .optional(),
  acknowledger: z
    .custom<SubscriptionAcknowledger>(
      (v) => typeof v === 'object' && v !== null && typeof (v as SubscriptionAcknowledger).acknowledge === 'function',
      'acknowledger must have an acknowledge() method',
    )
    .optional(),
});

/** One log line per reason per interval, carrying how many drops were not logged in between. */
class DropLog {
  readonly #last = new Map<DropReason, { at: number; suppressed: number }>();
  constructor(
    private readonly logger: Logger,
    private readonly clock: () => number,
    private readonly intervalMs: number,
  ) {}

  drop(reason: DropReason, detail: string, source: DatagramSource): void {
    const now = this.clock();
    const state = this.#last.get(reason);
    if (state !== undefined && now - state.at < this.intervalMs) {
      state.suppressed++;
      return;
    }
    const suppressed = state?.suppressed ?? 0;
    this.#last.set(reason, { at: now, suppressed: 0 });
    this.logger.warn(
      { reason, detail, source: `${source.address}:${source.port}`, suppressed },
      'subscription dropped',
    );
  }
}

/** Told about a dropped datagram: why, the detail, who sent it and, when known, the key it named. */
export type DropListener = (
  reason: DropReason,
  detail: string,
  source: DatagramSource,
  key: string | undefined,
) => void;

export class SubscriptionServer {
  readonly #binds: readonly BindSpec[];
  readonly #unixBinds: readonly string[];
  readonly #registry: SubscriptionRegistry;
  readonly #logger: Logger;
  readonly #recvBufferSize: number;
  readonly #maxPacketSize: number;
  readonly #verifier: SubscriptionVerifier;
  readonly #admission: SubscriptionAdmission | undefined;
  readonly #acknowledger: SubscriptionAcknowledger | undefined;
  readonly #forwarder: SubscriptionForwarder | undefined;
  readonly #dropLog: DropLog;
  readonly #dropped = emptyDropCounters();
  #dropListeners: readonly DropListener[] = [];
  readonly #announcementOptions: AnnouncementOptions;
  #received = 0;
  #subscribes = 0;
  #unsubscribes = 0;
  #sockets: Socket[] = [];
  #unixSockets: UnixSubscriptionSocket[] = [];
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  /** Does no I/O. Throws InvalidOptionsError (SY_BAD_OPTIONS) for invalid options. */
  constructor(options: SubscriptionServerOptions) {
    const parsed = OptionsSchema.safeParse(options);
    if (!parsed.success) throw InvalidOptionsError.fromZod('subscription server', parsed.error);
    const o = parsed.data;
    this.#binds = o.binds.filter((b) => !isUnixBind(b)).map((b) => parseBindAddress(b)!);
    this.#unixBinds = o.binds.filter(isUnixBind);
    this.#registry = o.registry;
    this.#logger = (o.logger ?? pino({ level: 'silent' })).child({ component: 'subscription-server' });
    this.#recvBufferSize = o.recvBufferSize ?? 32 * 1024 * 1024;
    this.#maxPacketSize = o.maxPacketSize ?? 4096;
    this.#verifier = o.verifier ?? acceptAllVerifier;
    this.#admission = o.admission;
    this.#acknowledger = o.acknowledger;
    this.#forwarder = o.forwarder;
    this.#dropLog = new DropLog(this.#logger, o.clock ?? Date.now, 1_000);
    this.#announcementOptions = Object.freeze({ mountpoints: o.mountpoints ?? false });
  }

  /**
   * Binds every address. Rejects with BindFailedError (SY_BIND_FAILED, `address` = the bind text) on the
   * first failure, after closing whatever was already bound. Calling it again returns the same promise;
   * after close() it rejects with ClosedError (SY_CLOSED).
   */
  start(): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new ClosedError('subscription server'));
    this.#starting ??= this.#bindAll();
    return this.#starting;
  }

  /** The bound addresses, in bind order (empty before start() resolves and after close()). */
  addresses(): BoundAddress[] {
    return this.#sockets.map((s) => {
      const a = s.address();
      return { address: a.address, port: a.port, family: a.family };
    });
  }

  stats(): SubscriptionServerStats {
    const dropped = emptyDropCounters();
    Object.assign(dropped, this.#dropped);
    return Object.freeze({
      received: this.#received,
      accepted: this.#subscribes + this.#unsubscribes,
      subscribes: this.#subscribes,
      unsubscribes: this.#unsubscribes,
      dropped: Object.freeze(dropped),
    });
  }

  /**
   * Runs one datagram through the pipeline (what every socket does per message; public so that other
   * transports, e.g. a UNIX datagram socket, can feed the same pipeline). Never throws.
   */
  handleDatagram(datagram: Buffer, source: DatagramSource): ApplyResult {
    this.#received++;
    const header = headerProblem(datagram, this.#maxPacketSize);
    if (header !== undefined) return this.#drop(header, 'bad header', source);
    if (this.#admission !== undefined) {
      const admitted = this.#admission.admit(source);
      if (!admitted.ok) return this.#drop(admitted.reason, admitted.detail, source);
    }
    let packet: SubscriptionPacket;
    let announcement: Announcement;
    const common = readCommonAnnouncement(datagram);
    if (common !== undefined) {
      packet = common.packet;
      announcement = common.announcement;
    } else {
      const decoded = decodeSubscription(datagram, { maxPacketSize: this.#maxPacketSize });
      if (!decoded.ok) return this.#drop(decoded.error.reason, decoded.error.message, source);
      packet = decoded.value;
      const parsed = parseAnnouncement(packet, this.#announcementOptions);
      if (!parsed.ok) return this.#drop(parsed.reason, parsed.detail, source);
      announcement = parsed.value;
    }
    let verdict: ReturnType<SubscriptionVerifier['verify']>;
    try {
      verdict = this.#verifier.verify(packet, announcement, source);
    } catch (err) {
      verdict = { ok: false, detail: `verifier threw: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (!verdict.ok) {
      const reason = verdict.reason ?? 'rejected-by-verifier';
      if (verdict.acknowledge === true) this.#acknowledge(announcement, { kind: 'rejected', reason });
      return this.#drop(reason, verdict.detail, source, announcement.key);
    }
    const applied = this.#registry.apply(announcement);
    if (!applied.accepted) {
      this.#acknowledge(announcement, { kind: 'rejected', reason: applied.reason });
      return this.#drop(applied.reason, applied.detail, source, announcement.key);
    }
    if (announcement.command === 'subscribe') this.#subscribes++;
    else this.#unsubscribes++;
    this.#acknowledge(announcement, { kind: applied.change });
    this.#forwarder?.forward(datagram);
    return applied;
  }

  #acknowledge(announcement: Announcement, outcome: AckOutcome): void {
    if (this.#acknowledger === undefined || announcement.notify === undefined) return;
    try {
      this.#acknowledger.acknowledge(announcement, outcome);
    } catch (err) {
      this.#logger.error({ err }, 'subscription acknowledger failed');
    }
  }

  /** Closes every socket. Safe to call twice (and during start()). */
  close(): Promise<void> {
    this.#closing ??= this.#closeAll();
    return this.#closing;
  }

  async #closeAll(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    const sockets = this.#sockets;
    this.#sockets = [];
    for (const socket of this.#unixSockets) socket.close();
    this.#unixSockets = [];
    await Promise.all(sockets.map(closeSocket));
  }

  async #bindAll(): Promise<void> {
    const bound: Socket[] = [];
    for (const spec of this.#binds) {
      try {
        bound.push(await this.#bindOne(spec));
      } catch (err) {
        await Promise.all(bound.map(closeSocket));
        throw new BindFailedError(spec.text, err);
      }
    }
    const unixBound: UnixSubscriptionSocket[] = [];
    for (const text of this.#unixBinds) {
      try {
        unixBound.push(await this.#bindUnix(text));
      } catch (err) {
        await Promise.all(bound.map(closeSocket));
        for (const socket of unixBound) socket.close();
        throw new BindFailedError(text, err);
      }
    }
    this.#sockets = bound;
    this.#unixSockets = unixBound;
  }

  async #bindUnix(text: string): Promise<UnixSubscriptionSocket> {
    const addon = loadUnixDgram();
    if ('error' in addon) {
      throw new Error(`UNIX datagram sockets need the optional unix-dgram addon, which did not load (${addon.error})`);
    }
    const socket = await UnixSubscriptionSocket.bind(
      // The same addon; notify-sender.ts types only the send side of it.
      addon.module as unknown as Parameters<typeof UnixSubscriptionSocket.bind>[0],
      text,
      (msg, source) => this.handleDatagram(msg, source),
      (err) => this.#logger.error({ err, bind: text }, 'subscription socket error'),
    );
    this.#logger.info({ bind: text }, 'subscription socket bound');
    return socket;
  }

  /** Bound UNIX datagram socket paths (`@name` for abstract ones), in bind order. */
  unixPaths(): string[] {
    return this.#unixSockets.map((s) => s.bind);
  }

  async #bindOne(spec: BindSpec): Promise<Socket> {
    const socket = createSocket({
      type: spec.type,
      recvBufferSize: this.#recvBufferSize,
      ...(spec.type === 'udp6' ? { ipv6Only: true } : {}),
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error) => {
          socket.off('listening', onListening);
          reject(err);
        };
        const onListening = () => {
          socket.off('error', onError);
          resolve();
        };
        socket.once('error', onError);
        socket.once('listening', onListening);
        socket.bind({ port: spec.port, address: spec.host, exclusive: true });
      });
    } catch (err) {
      await closeSocket(socket);
      throw err;
    }
    socket.on('message', (msg, rinfo) => this.handleDatagram(msg, rinfo));
    socket.on('error', (err) => this.#logger.error({ err, bind: spec.text }, 'subscription socket error'));
    this.#logBufferSize(socket, spec);
    return socket;
  }

  #logBufferSize(socket: Socket, spec: BindSpec): void {
    const { address, port } = socket.address();
    let effective: number;
    try {
      effective = socket.getRecvBufferSize();
    } catch {
      effective = 0;
    }
    // Linux reports twice the value it granted (bookkeeping overhead): granted in full ⇔ ≥ 2 × requested.
    const wanted = process.platform === 'linux' ? 2 * this.#recvBufferSize : this.#recvBufferSize;
    const fields = { bind: spec.text, address, port, requested: this.#recvBufferSize, effective };
    this.#logger.info(fields, 'subscription socket bound');
    if (effective < wanted) {
      this.#logger.warn(
        fields,
        'kernel capped the UDP receive buffer: raise net.core.rmem_max to absorb announcement bursts',
      );
    }
  }

  /**
   * Adds a listener told about every dropped datagram (after counting and rate-limited logging; `key`
   * when the packet was read far enough to have one). Listeners must be cheap: a flood calls them per
   * packet. Returns the function that removes it.
   */
  onDrop(listener: DropListener): () => void {
    this.#dropListeners = [...this.#dropListeners, listener];
    return () => {
      this.#dropListeners = this.#dropListeners.filter((l) => l !== listener);
    };
  }

  #drop(reason: DropReason, detail: string, source: DatagramSource, key?: string): ApplyResult {
    this.#dropped[reason]++;
    this.#dropLog.drop(reason, detail, source);
    for (const listener of this.#dropListeners) {
      try {
        listener(reason, detail, source, key);
      } catch {
        // a listener failure never affects intake
      }
    }
    return { accepted: false, reason, detail };
  }
}

/**
 * The cheapest framing checks, run before the source gate: the same reasons decodeSubscription gives,
 * so counters do not depend on which stage caught a packet. Undefined when the header is sound.
 */
function headerProblem(datagram: Buffer, maxPacketSize: number): DropReason | undefined {
  if (datagram.length < 4) return 'truncated-header';
  if (datagram.length > maxPacketSize) return 'oversized-packet';
  if (datagram.readUInt16LE(1) !== datagram.length - 4) return 'size-mismatch';
  if (datagram[0] !== SUBSCRIPTION_MODIFIER1) return 'wrong-modifier1';
  return undefined;
}

function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // never bound or already closed
    }
  });
}
