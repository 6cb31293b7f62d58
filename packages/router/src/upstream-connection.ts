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
 */
import net from 'node:net';
import { UpstreamError } from './errors.js';
import { type ResponseHead, ResponseParser, type ResponseParserHandler } from './response-parser.js';
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
}

/** Called when an exchange ends with the connection still usable (HTTP keep-alive). */
export interface ConnectionOwner {
  onIdleClosed(connection: UpstreamConnection): void;
}

export class UpstreamConnection implements ResponseParserHandler {
  readonly socket: net.Socket;
  readonly address: string;
  private readonly parser: ResponseParser;
  private readonly timeouts: UpstreamTimeouts;
  private sink: UpstreamSink | undefined;
  private phase: UpstreamPhase = 'connect';
  private connected = false;
  private head: ResponseHead | undefined;
  private headerTimer: NodeJS.Timeout | undefined;
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
    this.parser = new ResponseParser(this);
    this.socket =
      target.kind === 'tcp'
        ? net.connect({ host: target.host, port: target.port })
        : net.connect({ path: target.path });
    this.socket.setNoDelay(true);
    this.socket.setTimeout(timeouts.connectMs);
    this.socket.on('connect', () => this.handleConnect());
    this.socket.on('data', (chunk: Buffer) => this.handleData(chunk));
    this.socket.on('end', () => this.handleEnd());
    this.socket.on('error', (error: NodeJS.ErrnoException) => this.handleError(error));
    this.socket.on('timeout', () => this.handleTimeout());
    this.socket.on('close', () => this.handleClose());
    this.socket.on('drain', () => this.sink?.onUpstreamDrain());
  }

  /** Opens a new connection (I/O starts now). */
  static open(address: string, target: UpstreamTarget, timeouts: UpstreamTimeouts): UpstreamConnection {
    return new UpstreamConnection(address, target, timeouts);
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  /** Starts an exchange: the sink gets `onUpstreamReady` once the socket is connected (at once if it is). */
  attach(sink: UpstreamSink, method: string): void {
    this.sink = sink;
    this.head = undefined;
    this.reusable = false;
    this.parser.reset(method);
    if (this.connected) {
      this.phase = 'request';
      this.socket.setTimeout(this.timeouts.idleMs);
      sink.onUpstreamReady(this);
    } else {
      this.phase = 'connect';
    }
  }

  /** Writes request bytes; false means wait for `onUpstreamDrain`. */
  write(data: string | Buffer, encoding?: BufferEncoding): boolean {
    return encoding === undefined ? this.socket.write(data) : this.socket.write(data as string, encoding);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /**
   * The request is fully written: the node has `responseHeaderMs` to send its final response head,
   * else the exchange fails with SY_UPSTREAM_TIMEOUT (504 unless the response had started).
   */
  requestWritten(): void {
    const ms = this.timeouts.responseHeaderMs ?? 0;
    if (ms <= 0 || this.head !== undefined || this.sink === undefined || this.headerTimer !== undefined) return;
    this.headerTimer = setTimeout(() => {
      this.headerTimer = undefined;
      if (this.sink === undefined || this.head !== undefined) return;
      this.fail(
        new UpstreamError('SY_UPSTREAM_TIMEOUT', `${this.address} sent no response head within ${ms} ms`, false),
      );
    }, ms);
    this.headerTimer.unref();
  }

  private clearHeaderTimer(): void {
    if (this.headerTimer === undefined) return;
    clearTimeout(this.headerTimer);
    this.headerTimer = undefined;
  }

  /** Drops the connection; the current exchange (if any) gets no further callback. */
  destroy(): void {
    this.clearHeaderTimer();
    this.sink = undefined;
    this.socket.destroy();
  }

  // --- ResponseParserHandler -------------------------------------------------------------------

  onHead(head: ResponseHead): void {
    this.clearHeaderTimer();
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
    this.socket.setTimeout(this.timeouts.idleMs);
    const sink = this.sink;
    if (sink === undefined) return;
    this.phase = 'request';
    sink.onUpstreamReady(this);
  }

  private handleData(chunk: Buffer): void {
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
      for (const event of ['data', 'end', 'error', 'timeout', 'close', 'drain']) this.socket.removeAllListeners(event);
      this.socket.setTimeout(0);
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

  private handleClose(): void {
    this.reusable = false;
    if (this.sink !== undefined) {
      this.fail(
        new UpstreamError('SY_UPSTREAM_RESET', `connection to ${this.address} closed`, this.phase === 'connect'),
      );
    }
    this.owner?.onIdleClosed(this);
  }

  private fail(error: UpstreamError): void {
    this.clearHeaderTimer();
    const sink = this.sink;
    this.sink = undefined;
    this.reusable = false;
    this.socket.destroy();
    sink?.onUpstreamError(error, this.phase, this.reused);
  }
}
