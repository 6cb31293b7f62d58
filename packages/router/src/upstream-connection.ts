/**
 * One TCP or unix-socket connection to a node, carrying one exchange at a time: the request is written
 * by the exchange (through `write`), the response is parsed by a strict ResponseParser and delivered to
 * the exchange's sink. Used for both node protocols: HTTP/1.1 nodes (reused through UpstreamPool) and
 * uwsgi nodes (one connection per request; the node answers raw HTTP and closes).
 *
 * Failures are reported once per exchange through `onUpstreamError(error, phase, reused)`:
 *  - phase 'connect': nothing reached the node (SY_UPSTREAM_CONNECT, or SY_UPSTREAM_TIMEOUT after
 *    `connectMs`); the error is retryable on another node;
 *  - phase 'request': connected, no response byte yet (SY_UPSTREAM_RESET / _TIMEOUT / _BAD_RESPONSE);
 *  - phase 'response': response bytes arrived; the exchange can only abort the client.
 * `idleMs` bounds every wait after connect (response head and body gaps), like uWSGI's --http-timeout.
 *
 * Timeouts are deadlines checked by a shared sweeper (upstream-deadlines.ts), not socket timers: read and
 * write activity moves the idle deadline (a field write), and each fires within its slack (a quarter of
 * the timeout, at most 250 ms) after it passes. No Timeout object is created per connection or request.
 *
 * Sockets are reused: a connection destroyed from a clean state (connected, nothing unread or unwritten,
 * not paused) parks its net.Socket once 'close' was emitted, and the next `open` reconnects it
 * (socket-recycler.ts). The socket's listeners are installed once and dispatch to its current owner, so
 * a stale UpstreamConnection (closed, its socket now serving another) reports `destroyed` and its
 * write/pause/resume/destroy do nothing.
 */
import net from 'node:net';
import { UpstreamError } from './errors.js';
import { type ResponseHead, ResponseParser, type ResponseParserHandler } from './response-parser.js';
import { type ListenerSignature, SocketRecycler } from './socket-recycler.js';
import { type DeadlineTarget, sharedUpstreamDeadlines, type UpstreamDeadlines } from './upstream-deadlines.js';
import type { UpstreamTarget } from './vhost-table.js';

export type UpstreamPhase = 'connect' | 'request' | 'response';

export interface UpstreamSink {
  /** The connection is open: write the request now. */
  onUpstreamReady(connection: UpstreamConnection): void;
  onUpstreamHead(head: ResponseHead): void;
  /** Body bytes, valid during the call only. */
  onUpstreamBody(chunk: Buffer): void;
  onUpstreamComplete(): void;
  onUpstreamError(error: UpstreamError, phase: UpstreamPhase, reused: boolean): void;
  /** The socket's write buffer drained (after `write` returned false). */
  onUpstreamDrain(): void;
  /**
   * A sink that implements this takes over the connection after a `101` head (instead of
   * onUpstreamComplete): the socket, with every listener of this class removed and no timeout, and the
   * bytes that followed the head. It must attach its own 'error' listener at once.
   */
  onUpstreamUpgrade?(socket: net.Socket, rest: Buffer): void;
}

export interface UpstreamTimeouts {
  /** Connect timeout, ms. */
  readonly connectMs: number;
  /** Longest silence from the node once connected, ms. */
  readonly idleMs: number;
  /** Time for the node to send its response head once the request is fully written, ms; absent or 0 = none. */
  readonly responseHeaderMs?: number;
  /** The sweeper checking these deadlines; default the process-wide one (performance.now clock). */
  readonly deadlines?: UpstreamDeadlines;
}

/** The connection a socket currently serves; the socket's listeners (installed once) dispatch to it. */
const OWNER = Symbol('switchyard.upstreamConnection');
type OwnedSocket = net.Socket & { [OWNER]?: UpstreamConnection | undefined };

/** Events a socket's listeners are installed for, once per net.Socket (recycled sockets keep them). */
const LISTENED = ['connect', 'data', 'end', 'error', 'close', 'drain'] as const;
let recycler: SocketRecycler | undefined;

/** Called when an exchange ends with the connection still usable (HTTP keep-alive). */
export interface ConnectionOwner {
  onIdleClosed(connection: UpstreamConnection): void;
}

export class UpstreamConnection implements ResponseParserHandler, DeadlineTarget {
  readonly socket: net.Socket;
  readonly address: string;
  private readonly parser: ResponseParser;
  private readonly timeouts: UpstreamTimeouts;
  private readonly deadlines: UpstreamDeadlines;
  private sink: UpstreamSink | undefined;
  private phase: UpstreamPhase = 'connect';
  private connected = false;
  private head: ResponseHead | undefined;
  /** The silence allowed now (connect, exchange idle or pooled idle), ms; 0 = none. */
  private idleMs = 0;
  /** Last activity + idleMs (Infinity = none), on the sweeper's clock. */
  private idleAt = Number.POSITIVE_INFINITY;
  private idleSlack = 0;
  /** Response-head deadline (Infinity = none). */
  private headerAt = Number.POSITIVE_INFINITY;
  private headerSlack = 0;
  /** destroy() left the socket in a state fit for reuse once it has closed (socket-recycler.ts). */
  private recycle = false;
  /** Set between a 101's onComplete and the hand-over at the end of the same read. */
  private upgradedSink: UpstreamSink | undefined;
  /** Set by the pool while the connection waits for reuse. */
  owner: ConnectionOwner | undefined;
  /** True when this exchange runs on a connection that already served one. */
  reused = false;
  /** The last exchange completed cleanly and the node allows another one. */
  reusable = false;

  private constructor(address: string, target: UpstreamTarget, timeouts: UpstreamTimeouts) {
    this.address = address;
    this.timeouts = timeouts;
    this.deadlines = timeouts.deadlines ?? sharedUpstreamDeadlines;
    this.parser = new ResponseParser(this);
    let socket = recycler?.take() as OwnedSocket | undefined;
    if (socket === undefined) {
      socket = new net.Socket() as OwnedSocket;
      const on = UpstreamConnection.socketListeners;
      for (const event of LISTENED) socket.on(event, on[event] as (...args: unknown[]) => void);
      recycler ??= new SocketRecycler(
        LISTENED.map((event): ListenerSignature[number] => [event, socket!.listenerCount(event)]),
      );
    }
    socket[OWNER] = this;
    this.socket = socket;
    // Before connect: recorded, and applied to each new handle when it connects.
    socket.setNoDelay(true);
    if (target.kind === 'tcp') socket.connect({ host: target.host, port: target.port });
    else socket.connect({ path: target.path });
    this.setIdle(timeouts.connectMs);
  }

  /**
   * Socket listeners, installed once per net.Socket (no closure per connection), dispatching to the
   * connection the socket serves now. 'close' is a connection's last event: the socket leaves its owner
   * and, if destroy() found it clean, is parked for reuse.
   */
  private static readonly socketListeners: Readonly<Record<(typeof LISTENED)[number], (...args: never[]) => void>> = {
    connect(this: OwnedSocket): void {
      this[OWNER]?.handleConnect();
    },
    data(this: OwnedSocket, chunk: Buffer): void {
      this[OWNER]?.handleData(chunk);
    },
    end(this: OwnedSocket): void {
      this[OWNER]?.handleEnd();
    },
    error(this: OwnedSocket, error: NodeJS.ErrnoException): void {
      this[OWNER]?.handleError(error);
    },
    drain(this: OwnedSocket): void {
      this[OWNER]?.handleDrain();
    },
    close(this: OwnedSocket, hadError: boolean): void {
      const owner = this[OWNER];
      this[OWNER] = undefined;
      if (owner === undefined) return;
      owner.handleClose();
      if (owner.recycle && !hadError) recycler?.park(this);
    },
  };

  /** Sockets reused and kept (stats, tests). */
  static recycleStats(): { reused: number; parked: number; refused: number } {
    return { reused: recycler?.reused ?? 0, parked: recycler?.size ?? 0, refused: recycler?.refused ?? 0 };
  }

  /** Opens a new connection (I/O starts now), on a recycled socket when one is parked (socket-recycler.ts). */
  static open(address: string, target: UpstreamTarget, timeouts: UpstreamTimeouts): UpstreamConnection {
    return new UpstreamConnection(address, target, timeouts);
  }

  /** Destroyed, or closed (its socket may already serve another connection: a stale holder must not touch it). */
  get destroyed(): boolean {
    return this.socket.destroyed || !this.owns();
  }

  private owns(): boolean {
    return (this.socket as OwnedSocket)[OWNER] === this;
  }

  /** Starts an exchange: the sink gets `onUpstreamReady` once the socket is connected (at once if it is). */
  attach(sink: UpstreamSink, method: string): void {
    this.sink = sink;
    this.head = undefined;
    this.reusable = false;
    this.parser.reset(method);
    if (this.connected) {
      this.phase = 'request';
      this.setIdle(this.timeouts.idleMs);
      sink.onUpstreamReady(this);
    } else {
      this.phase = 'connect';
    }
  }

  /** Writes request bytes; false means wait for `onUpstreamDrain`. */
  write(data: string | Buffer, encoding?: BufferEncoding): boolean {
    if (!this.owns()) return false;
    this.touch();
    return encoding === undefined ? this.socket.write(data) : this.socket.write(data as string, encoding);
  }

  /**
   * Keeps the connection while it waits in a pool: closed after `ms` without an exchange (0 = never).
   */
  idleFor(ms: number): void {
    this.setIdle(ms);
  }

  // --- deadlines (DeadlineTarget) ---------------------------------------------------------------

  /** The earliest of the idle (or connect) and response-head deadlines. */
  get deadline(): number {
    return Math.min(this.idleAt, this.headerAt);
  }

  get slack(): number {
    return this.idleAt < this.headerAt ? this.idleSlack : this.headerSlack;
  }

  onDeadline(now: number): void {
    if (this.destroyed) {
      this.deadlines.remove(this);
      return;
    }
    if (this.headerAt <= now) {
      this.headerAt = Number.POSITIVE_INFINITY;
      if (this.sink !== undefined && this.head === undefined) {
        const ms = this.timeouts.responseHeaderMs ?? 0;
        this.fail(
          new UpstreamError('SY_UPSTREAM_TIMEOUT', `${this.address} sent no response head within ${ms} ms`, false),
        );
        return;
      }
    }
    if (this.idleAt <= now) {
      this.idleAt = Number.POSITIVE_INFINITY;
      this.handleTimeout();
    }
  }

  /** A new silence allowance from now (connect, exchange or pool); 0 = none. */
  private setIdle(ms: number): void {
    this.idleMs = ms;
    if (ms <= 0) {
      this.idleAt = Number.POSITIVE_INFINITY;
      return;
    }
    this.idleAt = this.deadlines.now() + ms;
    this.idleSlack = this.deadlines.precisionFor(ms);
    this.deadlines.schedule(this);
  }

  /** Read or write activity: the idle deadline moves later (no timer is touched). */
  private touch(): void {
    if (this.idleMs > 0) this.idleAt = this.deadlines.now() + this.idleMs;
  }

  pause(): void {
    if (this.owns()) this.socket.pause();
  }

  resume(): void {
    if (this.owns()) this.socket.resume();
  }

  /**
   * The request is fully written: the node has `responseHeaderMs` to send its final response head,
   * else the exchange fails with SY_UPSTREAM_TIMEOUT (504 unless the response had started).
   */
  requestWritten(): void {
    const ms = this.timeouts.responseHeaderMs ?? 0;
    if (ms <= 0 || this.head !== undefined || this.sink === undefined || this.headerAt !== Number.POSITIVE_INFINITY) {
      return;
    }
    this.headerAt = this.deadlines.now() + ms;
    this.headerSlack = this.deadlines.precisionFor(ms);
    this.deadlines.schedule(this);
  }

  /** Drops the connection; the current exchange (if any) gets no further callback. */
  destroy(): void {
    this.headerAt = Number.POSITIVE_INFINITY;
    this.deadlines.remove(this);
    this.sink = undefined;
    const socket = this.socket;
    if (!this.owns()) return;
    // Reusable once closed only from a clean state: connected, nothing unread or unwritten, not paused.
    this.recycle =
      this.connected &&
      !socket.destroyed &&
      socket.readableLength === 0 &&
      socket.writableLength === 0 &&
      socket.readableFlowing === true &&
      !socket.readableEnded;
    socket.destroy();
  }

  // --- ResponseParserHandler -------------------------------------------------------------------

  onHead(head: ResponseHead): void {
    this.headerAt = Number.POSITIVE_INFINITY;
    this.head = head;
    this.sink?.onUpstreamHead(head);
  }

  onBody(chunk: Buffer): void {
    this.sink?.onUpstreamBody(chunk);
  }

  onComplete(): void {
    const sink = this.sink;
    this.sink = undefined;
    this.reusable = this.head?.keepAlive === true && !this.head.upgrade;
    if (this.head?.upgrade === true && sink?.onUpstreamUpgrade !== undefined) {
      this.upgradedSink = sink;
      return;
    }
    sink?.onUpstreamComplete();
  }

  // --- socket events ----------------------------------------------------------------------------

  private handleConnect(): void {
    this.connected = true;
    this.setIdle(this.timeouts.idleMs);
    const sink = this.sink;
    if (sink === undefined) return;
    this.phase = 'request';
    sink.onUpstreamReady(this);
  }

  private handleData(chunk: Buffer): void {
    this.touch();
    if (this.sink === undefined) {
      // Bytes while idle in the pool (or after the exchange ended): the stream is out of sync.
      this.reusable = false;
      this.socket.destroy();
      return;
    }
    this.phase = 'response';
    let consumed: number;
    try {
      consumed = this.parser.execute(chunk);
    } catch (error) {
      this.fail(new UpstreamError('SY_UPSTREAM_BAD_RESPONSE', `malformed response from ${this.address}`, false, error));
      return;
    }
    const upgraded = this.upgradedSink;
    if (upgraded !== undefined) {
      this.upgradedSink = undefined;
      for (const event of LISTENED) this.socket.removeAllListeners(event);
      (this.socket as OwnedSocket)[OWNER] = undefined;
      this.deadlines.remove(this);
      this.idleMs = 0;
      this.idleAt = Number.POSITIVE_INFINITY;
      this.headerAt = Number.POSITIVE_INFINITY;
      upgraded.onUpstreamUpgrade!(this.socket, chunk.subarray(consumed));
      return;
    }
    if (consumed < chunk.length) {
      // Bytes past the end of the response: never reuse this connection.
      this.reusable = false;
      if (this.sink === undefined && this.owner !== undefined) this.socket.destroy();
    }
  }

  private handleEnd(): void {
    this.reusable = false;
    if (this.sink === undefined) return;
    if (this.phase === 'response') {
      try {
        this.parser.finish();
      } catch (error) {
        this.fail(new UpstreamError('SY_UPSTREAM_RESET', `${this.address} closed mid-response`, false, error));
        return;
      }
    }
    if (this.sink !== undefined) {
      this.fail(
        new UpstreamError('SY_UPSTREAM_RESET', `${this.address} closed the connection without a response`, false),
      );
    }
  }

  private handleError(error: NodeJS.ErrnoException): void {
    if (this.sink === undefined) return;
    if (this.phase === 'connect') {
      this.fail(
        new UpstreamError(
          'SY_UPSTREAM_CONNECT',
          `cannot connect to ${this.address}: ${error.code ?? error.message}`,
          true,
          error,
        ),
      );
    } else {
      this.fail(
        new UpstreamError(
          'SY_UPSTREAM_RESET',
          `connection to ${this.address} failed: ${error.code ?? error.message}`,
          false,
          error,
        ),
      );
    }
  }

  private handleTimeout(): void {
    if (this.sink === undefined) {
      this.socket.destroy();
      return;
    }
    const connecting = this.phase === 'connect';
    this.fail(
      new UpstreamError(
        'SY_UPSTREAM_TIMEOUT',
        connecting ? `connect to ${this.address} timed out` : `${this.address} did not answer in time`,
        connecting,
      ),
    );
  }

  private handleDrain(): void {
    this.touch();
    this.sink?.onUpstreamDrain();
  }

  private handleClose(): void {
    this.deadlines.remove(this);
    this.reusable = false;
    if (this.sink !== undefined) {
      this.fail(
        new UpstreamError('SY_UPSTREAM_RESET', `connection to ${this.address} closed`, this.phase === 'connect'),
      );
    }
    this.owner?.onIdleClosed(this);
  }

  private fail(error: UpstreamError): void {
    this.headerAt = Number.POSITIVE_INFINITY;
    this.deadlines.remove(this);
    const sink = this.sink;
    this.sink = undefined;
    this.reusable = false;
    this.socket.destroy();
    sink?.onUpstreamError(error, this.phase, this.reused);
  }
}
