/**
 * One proxied request: picks candidates, dispatches to a node, streams the request body up and the
 * response down with backpressure both ways, retries on another node when that is safe, and answers
 * with a coded error when nothing worked. One object per request with prototype methods as the
 * upstream sink (no per-request closures beyond the stream listeners).
 *
 * Retry rules (never the same node twice; at most `maxAttempts` nodes):
 *  - connect failures (refused, unreachable, connect timeout) are retried for any method: nothing
 *    reached the node; they do not draw on the retry budget either (the failed attempt cost no node any
 *    work, so the retry is failover, not added load: with 2 of 3 nodes dead and one not yet ejected,
 *    every request still finds the live one, as uWSGI's router does);
 *  - a node that closed or reset the connection before any response byte is retried only for a
 *    bodyless idempotent request (nginx's rule: a non-idempotent request may have been processed);
 *  - a reused keep-alive connection that dies before any response byte is retried once on a fresh
 *    connection to the same node (the keep-alive race), for bodyless requests; it is not a node failure;
 *  - once a response byte was received nothing is retried; once the response head went to the client
 *    a failure destroys the client connection (a truncated response must never look complete).
 * Outcomes: all candidates failed → 502 SY_UPSTREAM_CONNECT / SY_UPSTREAM_RESET, or 504
 * SY_UPSTREAM_TIMEOUT when the last failure was a timeout.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { VarsTooLargeError } from '@switchyard/protocol';
import type { BalancerContext } from './balancer.js';
import { RouterError, type UpstreamError } from './errors.js';
import type { ExchangeEnvironment } from './exchange-environment.js';
import { forwardRequestHeaders, forwardResponseHeaders, headerCount } from './header-policy.js';
import type { HostRecord } from './host-policy.js';
import type { RequestRecord } from './request-record.js';
import type { ResponseHead } from './response-parser.js';
import { UpstreamConnection, type UpstreamPhase, type UpstreamSink } from './upstream-connection.js';
import { buildUwsgiVars } from './uwsgi-vars.js';
import type { HostEntry, VhostNode } from './vhost-table.js';

export type BodyMode = 'none' | 'length' | 'chunked' | 'buffered';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export interface ExchangeRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly entry: HostEntry;
  /** Origin-form target to send upstream. */
  readonly target: string;
  /** Host header value as received (undefined for HTTP/1.0 without Host). */
  readonly host: string | undefined;
  readonly clientAddress: string;
  readonly bodyMode: 'none' | 'length' | 'chunked';
  readonly contentLength: number;
  /** performance.now() when the request head arrived. */
  readonly startedAt: number;
  /** The host's policy and counters (host-policy.ts). */
  readonly hostRecord: HostRecord;
}

export class ProxyExchange implements UpstreamSink, BalancerContext, RequestRecord {
  private readonly env: ExchangeEnvironment;
  private readonly req: IncomingMessage;
  private readonly res: ServerResponse;
  private readonly entry: HostEntry;
  private readonly target: string;
  private readonly host: string | undefined;
  readonly clientAddress: string;
  private bodyMode: BodyMode;
  private contentLength: number;
  private buffered: Buffer[] | undefined;
  private candidates: readonly VhostNode[] = [];
  private index = 0;
  private node: VhostNode | undefined;
  private connection: UpstreamConnection | undefined;
  private bodyListening = false;
  private requestEnded = false;
  private responseStarted = false;
  private raceRetried = false;
  private done = false;
  private lastError: UpstreamError | undefined;
  /** Socket of the current attempt and its byte counters when the attempt began (node tx/rx stats). */
  private attemptSocket: Socket | undefined;
  private writtenBase = 0;
  private readBase = 0;
  /** Attempts made (nodes tried), for logs. */
  attempts = 0;
  /** env.now() when the current attempt was dispatched (response-head latency). */
  private attemptStartedAt = 0;
  // RequestRecord (request-record.ts): metrics and access log read these once the exchange ended.
  readonly startedAt: number;
  readonly hostRecord: HostRecord;
  /** Request body bytes read from the client. */
  bytesIn = 0;
  /** Response body bytes written to the client. */
  bytesOut = 0;
  /** Node of the latest attempt. */
  nodeAddress: string | undefined;
  /** The host policy's body limit, bytes (Infinity = none; chunked bodies are counted as they stream). */
  private readonly bodyLimit: number;

  constructor(env: ExchangeEnvironment, request: ExchangeRequest) {
    this.env = env;
    this.req = request.req;
    this.res = request.res;
    this.entry = request.entry;
    this.target = request.target;
    this.host = request.host;
    this.clientAddress = request.clientAddress;
    this.bodyMode = request.bodyMode;
    this.contentLength = request.contentLength;
    this.requestEnded = request.bodyMode === 'none';
    this.startedAt = request.startedAt;
    this.hostRecord = request.hostRecord;
    this.bodyLimit = request.hostRecord.policy?.maxBodyBytes ?? Number.POSITIVE_INFINITY;
  }

  start(): void {
    this.res.on('close', () => this.handleClientClose());
    this.res.on('drain', () => this.connection?.resume());
    // Per-host balancer choice (admin PATCH or subscription algo) lives in balancing.ts.
    this.candidates = this.env.balancerFor(this.entry.key).candidates(this.entry, this);
    if (this.candidates.length === 0) {
      this.fail(new RouterError('SY_NO_LIVE_NODE', `no live node for ${this.entry.key}`));
      return;
    }
    if (this.bodyMode === 'chunked' && this.candidates.some((n) => n.protocol === 'uwsgi')) {
      this.bufferChunkedBody();
      return;
    }
    this.dispatch(false);
  }

  /**
   * uwsgi workers read exactly CONTENT_LENGTH bytes, so a chunked request body is de-chunked and
   * buffered (bounded by `maxBufferedBody`, else 413 SY_BODY_TOO_LARGE) and sent with its length.
   */
  private bufferChunkedBody(): void {
    const chunks: Buffer[] = [];
    let size = 0;
    const limit = Math.min(this.env.maxBufferedBody, this.bodyLimit);
    this.req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      this.bytesIn = size;
      if (size > limit) {
        this.req.removeAllListeners('data');
        this.req.resume();
        this.fail(new RouterError('SY_BODY_TOO_LARGE', `chunked body over ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    this.req.on('end', () => {
      if (this.done) return;
      this.buffered = chunks;
      this.bodyMode = 'buffered';
      this.contentLength = size;
      this.requestEnded = true;
      this.dispatch(false);
    });
  }

  private dispatch(sameNodeFresh: boolean): void {
    const node = this.candidates[this.index]!;
    this.node = node;
    this.nodeAddress = node.address;
    this.attempts++;
    this.attemptStartedAt = this.env.now();
    this.env.runtime.begin(this.entry.key, node.address);
    const connection =
      node.protocol === 'http' && !sameNodeFresh
        ? this.env.pool.acquire(node.address, node.target)
        : UpstreamConnection.open(node.address, node.target, this.env.timeouts);
    this.connection = connection;
    this.attemptSocket = connection.socket;
    this.writtenBase = connection.socket.bytesWritten;
    this.readBase = connection.socket.bytesRead;
    connection.attach(this, this.req.method ?? 'GET');
  }

  // --- UpstreamSink -----------------------------------------------------------------------------

  onUpstreamReady(connection: UpstreamConnection): void {
    const node = this.node!;
    if (node.protocol === 'http') {
      connection.write(this.httpHead(node), 'latin1');
    } else {
      let head: Buffer;
      try {
        head = buildUwsgiVars(
          {
            method: this.req.method ?? 'GET',
            target: this.target,
            httpVersion: this.req.httpVersion,
            rawHeaders: this.req.rawHeaders,
            serverName: this.env.serverName,
            serverPort: this.req.socket.localPort ?? 0,
            remoteAddress: this.clientAddress,
            remotePort: this.req.socket.remotePort ?? 0,
            tls: (this.req.socket as TLSSocket).encrypted === true,
            contentLength: this.bodyMode === 'none' ? undefined : this.contentLength,
            extraVars: this.env.forwarding.uwsgiVars(this.env.extraVars, this.req, this.clientAddress, this.host),
          },
          this.env.modifier1 || node.modifier1,
          this.env.modifier2 || node.modifier2,
        );
      } catch (error) {
        const tooLarge = error instanceof VarsTooLargeError;
        this.abortUpstream();
        this.fail(
          new RouterError(
            tooLarge ? 'SY_UPSTREAM_REQUEST_TOO_LARGE' : 'SY_BAD_REQUEST',
            'request does not fit a uwsgi packet',
            { cause: error },
          ),
        );
        return;
      }
      connection.write(head);
    }
    this.writeBody(connection);
    if (this.requestEnded) connection.requestWritten();
  }

  private httpHead(node: VhostNode): string {
    let head = `${this.req.method} ${this.target} HTTP/1.1\r\n`;
    // No Host field: HTTP/1.0, or the authority of an absolute-form target stands for it.
    if (headerCount(this.req.rawHeaders, 'host') === 0) head += `Host: ${this.host ?? node.address}\r\n`;
    head += forwardRequestHeaders(this.req.rawHeaders);
    head += this.env.forwarding.headerLines(this.req, this.clientAddress, this.host);
    if (this.bodyMode === 'chunked') head += 'Transfer-Encoding: chunked\r\n';
    else if (this.bodyMode !== 'none') head += `Content-Length: ${this.contentLength}\r\n`;
    return `${head}\r\n`;
  }

  private writeBody(connection: UpstreamConnection): void {
    if (this.bodyMode === 'none') return;
    if (this.bodyMode === 'buffered') {
      for (const chunk of this.buffered!) connection.write(chunk);
      return;
    }
    if (this.bodyListening) return;
    this.bodyListening = true;
    const chunked = this.bodyMode === 'chunked';
    this.req.on('data', (chunk: Buffer) => {
      if ((this.bytesIn += chunk.length) > this.bodyLimit) {
        this.bodyTooLarge();
        return;
      }
      const upstream = this.connection;
      if (upstream === undefined || upstream.destroyed) return;
      let ok: boolean;
      if (chunked) {
        upstream.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        upstream.write(chunk);
        ok = upstream.write('\r\n', 'latin1');
      } else {
        ok = upstream.write(chunk);
      }
      if (!ok) this.req.pause();
    });
    this.req.on('end', () => {
      this.requestEnded = true;
      if (chunked) this.connection?.write('0\r\n\r\n', 'latin1');
      this.connection?.requestWritten();
    });
  }

  onUpstreamDrain(): void {
    if (!this.requestEnded) this.req.resume();
  }

  onUpstreamHead(head: ResponseHead): void {
    if (this.done) return;
    if (this.node !== undefined) {
      this.env.nodeResponded(this.entry.key, this.node, head.statusCode, this.env.now() - this.attemptStartedAt);
    }
    this.responseStarted = true;
    const headers = forwardResponseHeaders(head.rawHeaders, head.framing === 'length' || head.framing === 'none');
    if (this.env.draining) headers.push('Connection', 'close');
    try {
      this.res.writeHead(head.statusCode, head.reason, headers);
    } catch (error) {
      this.responseStarted = false;
      this.abortUpstream();
      this.fail(
        new RouterError('SY_UPSTREAM_BAD_RESPONSE', 'node sent headers that cannot be forwarded', { cause: error }),
      );
    }
  }

  onUpstreamBody(chunk: Buffer): void {
    if (this.done) return;
    this.bytesOut += chunk.length;
    if (!this.res.write(chunk)) this.connection?.pause();
  }

  onUpstreamComplete(): void {
    if (this.done) return;
    const connection = this.connection!;
    const node = this.node!;
    this.connection = undefined;
    this.done = true;
    if (!this.requestEnded) connection.reusable = false;
    this.res.end();
    if (node.protocol === 'http') this.env.pool.release(connection);
    else connection.destroy();
    this.endAttempt();
    this.env.exchangeEnded(this, undefined);
  }

  onUpstreamError(error: UpstreamError, phase: UpstreamPhase, reused: boolean): void {
    if (this.done) return;
    this.connection = undefined;
    const node = this.node!;
    const bodyless = this.bodyMode === 'none';
    const raceRetry = reused && phase === 'request' && bodyless && !this.raceRetried;
    this.endAttempt();
    this.lastError = error;
    if (raceRetry) {
      this.raceRetried = true;
      this.dispatch(true);
      return;
    }
    this.env.nodeFailed(this.entry.key, node, error);
    const canRetry =
      !this.responseStarted &&
      (phase === 'connect' || (phase === 'request' && bodyless && IDEMPOTENT.has(this.req.method ?? ''))) &&
      (this.bodyMode === 'none' || this.bodyMode === 'buffered' || !this.bodyListening);
    if (
      canRetry &&
      this.index + 1 < this.candidates.length &&
      this.attempts < this.env.maxAttempts &&
      this.env.retryAllowed(this.entry.key, phase)
    ) {
      this.index++;
      this.env.retried(this.entry.key, node);
      this.dispatch(false);
      return;
    }
    if (this.responseStarted) {
      this.done = true;
      this.res.destroy();
      this.env.exchangeEnded(this, error);
      return;
    }
    this.fail(error);
  }

  // --- endings ----------------------------------------------------------------------------------

  /** Ends the accounting of the current attempt (once per dispatch). */
  private endAttempt(): void {
    const node = this.node;
    if (node === undefined) return;
    this.node = undefined;
    const socket = this.attemptSocket;
    if (socket !== undefined) {
      this.attemptSocket = undefined;
      // Bytes of this attempt only: a pooled connection carries several exchanges.
      this.env.runtime.traffic(node.address, socket.bytesWritten - this.writtenBase, socket.bytesRead - this.readBase);
    }
    this.env.nodeEnded(this.entry.key, node.address);
  }

  private abortUpstream(): void {
    const connection = this.connection;
    this.connection = undefined;
    connection?.destroy();
    this.endAttempt();
  }

  private handleClientClose(): void {
    if (this.done) return;
    // The client went away before the response finished.
    this.done = true;
    this.abortUpstream();
    this.env.exchangeEnded(this, new RouterError('SY_CLIENT_CLOSED', 'client closed the connection'));
  }

  /**
   * Ends the exchange from the client side (a body over its limit, a silent or malformed body): a coded
   * answer if the response head was not sent yet, else the client connection is destroyed.
   */
  abort(error: RouterError): void {
    this.fail(error);
  }

  private fail(error: RouterError): void {
    if (this.done) return;
    this.done = true;
    this.abortUpstream();
    this.bytesOut += this.env.respondError(this.req, this.res, error, this.entry.key);
    this.env.exchangeEnded(this, error);
  }

  /** A streamed body went over the host's limit: 413 if nothing was answered yet, else cut. */
  private bodyTooLarge(): void {
    this.req.removeAllListeners('data');
    this.req.resume();
    const error = new RouterError('SY_BODY_TOO_LARGE', `body over ${this.bodyLimit} bytes for ${this.entry.key}`);
    if (!this.responseStarted) {
      this.fail(error);
      return;
    }
    if (this.done) return;
    this.done = true;
    this.abortUpstream();
    this.res.destroy();
    this.env.exchangeEnded(this, error);
  }

  // --- RequestRecord ------------------------------------------------------------------------------

  get method(): string {
    return this.req.method ?? '';
  }

  get path(): string {
    return this.target;
  }

  /** Status sent to the client; 499 when the client left before any response. */
  get status(): number {
    return this.res.headersSent ? this.res.statusCode : 499;
  }

  /** Host key this exchange routes to. */
  get hostKey(): string {
    return this.entry.key;
  }

  /** BalancerContext: a request header by lower-case name (hash-header / hash-cookie balancers). */
  header(name: string): string | undefined {
    const value = this.req.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  }

  /** The last upstream failure, for logs. */
  get lastUpstreamError(): UpstreamError | undefined {
    return this.lastError;
  }
}
