/**
 * One WebSocket upgrade request, from Node's 'upgrade' event to an open tunnel (or a relayed answer).
 * Routed like any request: admission (upgrade-request.ts), host lookup, TLS client-certificate policy,
 * balancer candidates; each attempt uses a fresh connection (it becomes the tunnel, so never a pooled one).
 *
 * Upstream request: HTTP nodes get the request head with `Upgrade: websocket` / `Connection: Upgrade`
 * kept (header-policy strips them for ordinary requests) plus the router's X-Forwarded-* headers; uwsgi
 * nodes get the usual vars plus HTTP_UPGRADE / HTTP_CONNECTION (HTTP_SEC_WEBSOCKET_* pass as headers),
 * which is what uWSGI's `uwsgi.websocket_handshake()` reads. Client bytes that arrived with the head are
 * sent right after it.
 *
 * Outcomes:
 *  - `101` with `Upgrade: websocket` → the 101 head is relayed and both sockets are piped raw
 *    (websocket-tunnel.ts); the attempt stays in flight on the node until the tunnel closes;
 *  - `101` for anything else → 502 SY_UPSTREAM_BAD_RESPONSE;
 *  - any other status → relayed as a normal response with `Connection: close`, then the socket closes;
 *  - retries as ProxyExchange: connect failures on the next candidate, a reset before any response byte
 *    too when no client byte was sent yet (an upgrade GET is idempotent); never the same node twice.
 */
import type { IncomingMessage } from 'node:http';
import type net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { VarsTooLargeError } from '@switchyard/protocol';
import type { BalancerContext } from './balancer.js';
import { RouterError, statusForError, type UpstreamError } from './errors.js';
import type { ExchangeEnvironment } from './exchange-environment.js';
import { forwardRequestHeaders, forwardResponseHeaders, headerValue } from './header-policy.js';
import type { HostRecord } from './host-policy.js';
import type { GuardedRequest } from './request-guard.js';
import { clientAddressOf, LocalRecord, type RequestRecord } from './request-record.js';
import type { ResponseHead } from './response-parser.js';
import type { TunnelRegistry } from './tunnel-registry.js';
import { admitUpgrade, headerLines } from './upgrade-request.js';
import { UpstreamConnection, type UpstreamPhase, type UpstreamSink } from './upstream-connection.js';
import { buildUwsgiVars } from './uwsgi-vars.js';
import type { HostEntry, VhostNode, VhostTable } from './vhost-table.js';
import { WebSocketTunnel } from './websocket-tunnel.js';

/** What an upgrade needs from the router beyond what a ProxyExchange needs. */
export interface UpgradeEnvironment extends ExchangeEnvironment {
  readonly table: VhostTable;
  readonly tunnels: TunnelRegistry;
  /** The request-guard rules (request-guard.ts) with the router's limits. */
  guard(req: IncomingMessage): GuardedRequest | RouterError;
  /** Tunnel idle timeout, ms; 0 = none. */
  readonly tunnelIdleMs: number;
  /** Host policy: an error when the host takes no upgrade now (maintenance mode → SY_MAINTENANCE). */
  hostRefusal(
    entryKey: string | undefined,
    hostPort: string | undefined,
    host: string | undefined,
  ): RouterError | undefined;
  /** TLS policy: an error when this connection may not reach `hostname` (client certificate required). */
  admitTls(req: IncomingMessage, hostname: string): RouterError | undefined;
  /** Logs and counts `error`, writes it as a coded response on the raw socket and closes it. */
  rejectUpgrade(req: IncomingMessage, socket: net.Socket, error: RouterError, hostKey: string | undefined): void;
  /**
   * The upgrade is over (its tunnel, if any, has closed): `record` is what the access log and the
   * request metrics count (status 101 for a tunnel, its lifetime as the duration, its bytes).
   */
  upgradeEnded(error: RouterError | undefined, record: RequestRecord): void;
  /** The traffic record of host `key` (a host in the table). */
  hostRecordOf(key: string): HostRecord;
}

/** Handles one 'upgrade' event end to end. */
export function startUpgrade(env: UpgradeEnvironment, req: IncomingMessage, socket: net.Socket, head: Buffer): void {
  const startedAt = performance.now();
  const reject = (error: RouterError, hostKey: string | undefined, inTable = false): void => {
    env.rejectUpgrade(req, socket, error, hostKey);
    const record = new LocalRecord(
      startedAt,
      req.method ?? '',
      req.url ?? '',
      hostKey,
      clientAddressOf(socket.remoteAddress),
      statusForError(error),
      0,
      inTable && hostKey !== undefined ? env.hostRecordOf(hostKey) : undefined,
    );
    env.upgradeEnded(error, record);
  };
  const guarded = admitUpgrade(req, env.guard(req));
  if (guarded instanceof RouterError) {
    reject(guarded, undefined);
    return;
  }
  const host = guarded.host;
  const found = env.table.lookup(host?.host, host?.port === undefined ? undefined : host.key, guarded.target);
  const closed = env.hostRefusal(found?.entry.key, host?.key, host?.host);
  if (closed !== undefined) {
    reject(closed, found?.entry.key ?? host?.key, found !== undefined);
    return;
  }
  if (found === undefined) {
    const error =
      host === undefined
        ? new RouterError('SY_BAD_HOST', 'request has no Host')
        : new RouterError('SY_NO_VHOST', `no virtual host for ${host.key}`);
    reject(error, host?.key);
    return;
  }
  const refused = host === undefined ? undefined : env.admitTls(req, host.host);
  if (refused !== undefined) {
    reject(refused, found.entry.key, true);
    return;
  }
  new UpgradeExchange(env, {
    startedAt,
    req,
    socket,
    head: head.length === 0 ? head : Buffer.from(head),
    entry: found.entry,
    target: guarded.target,
    host: guarded.rawHost,
    clientAddress: clientAddressOf(socket.remoteAddress),
  }).start();
}

interface UpgradeRequest {
  /** performance.now() when the upgrade request arrived. */
  readonly startedAt: number;
  readonly req: IncomingMessage;
  readonly socket: net.Socket;
  /** Client bytes received after the request head. */
  readonly head: Buffer;
  readonly entry: HostEntry;
  readonly target: string;
  readonly host: string | undefined;
  readonly clientAddress: string;
}

export class UpgradeExchange implements UpstreamSink, BalancerContext, RequestRecord {
  readonly startedAt: number;
  readonly method: string;
  readonly hostRecord: HostRecord;
  /** The status the client got: 101, a relayed refusal, an error's; 499 when it left first. */
  status = 499;
  /** Bytes from the client (after the head) and to it (after the head), tunnel or relayed body. */
  bytesIn = 0;
  bytesOut = 0;
  /** The node of the last attempt. */
  nodeAddress: string | undefined;
  private readonly env: UpgradeEnvironment;
  private readonly req: IncomingMessage;
  private readonly socket: net.Socket;
  private readonly head: Buffer;
  private readonly entry: HostEntry;
  private readonly target: string;
  private readonly host: string | undefined;
  private readonly tls: boolean;
  readonly clientAddress: string;
  private candidates: readonly VhostNode[] = [];
  private index = 0;
  attempts = 0;
  private node: VhostNode | undefined;
  /** env.now() when the current attempt was dispatched (response-head latency). */
  private attemptStartedAt = 0;
  private connection: UpstreamConnection | undefined;
  private responseStarted = false;
  private tunnel: WebSocketTunnel | undefined;
  private done = false;
  private readonly onClientClose = (): void => this.handleClientClose();
  private readonly onClientDrain = (): void => this.connection?.resume();
  private readonly onClientError = (): void => undefined;

  constructor(env: UpgradeEnvironment, request: UpgradeRequest) {
    this.env = env;
    this.req = request.req;
    this.socket = request.socket;
    this.head = request.head;
    this.entry = request.entry;
    this.target = request.target;
    this.host = request.host;
    this.clientAddress = request.clientAddress;
    this.tls = (request.socket as TLSSocket).encrypted === true;
    this.startedAt = request.startedAt;
    this.method = request.req.method ?? 'GET';
    this.hostRecord = this.env.hostRecordOf(request.entry.key);
    this.bytesIn = request.head.length;
  }

  get path(): string {
    return this.target;
  }

  get hostKey(): string {
    return this.entry.key;
  }

  start(): void {
    this.socket.on('close', this.onClientClose);
    this.socket.on('drain', this.onClientDrain);
    this.socket.on('error', this.onClientError);
    this.candidates = this.env.balancerFor(this.entry.key).candidates(this.entry, this);
    if (this.candidates.length === 0) {
      this.fail(new RouterError('SY_NO_LIVE_NODE', `no live node for ${this.entry.key}`));
      return;
    }
    this.dispatch();
  }

  private dispatch(): void {
    const node = this.candidates[this.index]!;
    this.node = node;
    this.nodeAddress = node.address;
    this.attempts++;
    this.env.runtime.begin(this.entry.key, node.address);
    this.attemptStartedAt = this.env.now();
    const connection = UpstreamConnection.open(node.address, node.target, this.env.timeouts);
    this.connection = connection;
    connection.attach(this, 'GET');
  }

  // --- UpstreamSink -----------------------------------------------------------------------------

  onUpstreamReady(connection: UpstreamConnection): void {
    const node = this.node!;
    if (node.protocol === 'http') {
      connection.write(this.httpHead(node), 'latin1');
    } else {
      let vars: Buffer;
      try {
        vars = buildUwsgiVars(
          {
            method: 'GET',
            target: this.target,
            httpVersion: this.req.httpVersion,
            rawHeaders: this.req.rawHeaders,
            serverName: this.env.serverName,
            serverPort: this.socket.localPort ?? 0,
            remoteAddress: this.clientAddress,
            remotePort: this.socket.remotePort ?? 0,
            tls: this.tls,
            contentLength: undefined,
            extraVars: this.env.forwarding.uwsgiVars(
              [['HTTP_UPGRADE', 'websocket'], ['HTTP_CONNECTION', 'Upgrade'], ...this.env.extraVars],
              this.req,
              this.clientAddress,
              this.host,
            ),
          },
          this.env.modifier1 || node.modifier1,
          this.env.modifier2 || node.modifier2,
        );
      } catch (error) {
        this.abortUpstream();
        const code = error instanceof VarsTooLargeError ? 'SY_UPSTREAM_REQUEST_TOO_LARGE' : 'SY_BAD_REQUEST';
        this.fail(new RouterError(code, 'request does not fit a uwsgi packet', { cause: error }));
        return;
      }
      connection.write(vars);
    }
    if (this.head.length > 0) connection.write(this.head);
  }

  private httpHead(node: VhostNode): string {
    let head = `GET ${this.target} HTTP/1.1\r\n`;
    if (this.host === undefined) head += `Host: ${node.address}\r\n`;
    head += forwardRequestHeaders(this.req.rawHeaders);
    head += 'Connection: Upgrade\r\nUpgrade: websocket\r\n';
    head += this.env.forwarding.headerLines(this.req, this.clientAddress, this.host);
    return `${head}\r\n`;
  }

  onUpstreamDrain(): void {}

  onUpstreamHead(head: ResponseHead): void {
    if (this.done) return;
    if (this.node !== undefined) {
      this.env.nodeResponded(this.entry.key, this.node, head.statusCode, this.env.now() - this.attemptStartedAt);
    }
    const headers = forwardResponseHeaders(head.rawHeaders, head.framing === 'length' || head.framing === 'none');
    if (head.upgrade) {
      if (headerValue(head.rawHeaders, 'upgrade')?.trim().toLowerCase() !== 'websocket') {
        this.abortUpstream();
        this.fail(new RouterError('SY_UPSTREAM_BAD_RESPONSE', 'node switched to a protocol other than websocket'));
        return;
      }
      this.responseStarted = true;
      this.status = 101;
      this.socket.write(
        `HTTP/1.1 101 ${head.reason}\r\n${headerLines(headers)}Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
        'latin1',
      );
      return;
    }
    // Not switching: relay the answer as a plain response and close (the socket has left Node's parser).
    this.responseStarted = true;
    this.status = head.statusCode;
    this.socket.write(
      `HTTP/1.1 ${head.statusCode} ${head.reason}\r\n${headerLines(headers)}Connection: close\r\n\r\n`,
      'latin1',
    );
  }

  onUpstreamBody(chunk: Buffer): void {
    if (this.done) return;
    this.bytesOut += chunk.length;
    if (!this.socket.write(chunk)) this.connection?.pause();
  }

  onUpstreamComplete(): void {
    if (this.done) return;
    this.done = true;
    const connection = this.connection!;
    this.connection = undefined;
    connection.destroy();
    this.socket.end();
    this.endAttempt();
    this.env.upgradeEnded(undefined, this);
  }

  onUpstreamUpgrade(upstream: net.Socket, rest: Buffer): void {
    this.connection = undefined;
    if (this.done) {
      upstream.destroy();
      return;
    }
    const node = this.node!;
    this.socket.off('close', this.onClientClose);
    this.socket.off('drain', this.onClientDrain);
    this.socket.off('error', this.onClientError);
    const tunnel = new WebSocketTunnel(this.socket, upstream, {
      key: this.entry.key,
      address: node.address,
      idleMs: this.env.tunnelIdleMs,
      onClosed: (t) => this.tunnelClosed(t),
    });
    this.tunnel = tunnel;
    this.env.tunnels.add(tunnel);
    tunnel.start(rest);
  }

  onUpstreamError(error: UpstreamError, phase: UpstreamPhase): void {
    if (this.done) return;
    this.connection = undefined;
    const node = this.node!;
    this.endAttempt();
    this.env.nodeFailed(this.entry.key, node, error);
    const canRetry = !this.responseStarted && (phase === 'connect' || (phase === 'request' && this.head.length === 0));
    if (
      canRetry &&
      this.index + 1 < this.candidates.length &&
      this.attempts < this.env.maxAttempts &&
      this.env.retryAllowed(this.entry.key, phase)
    ) {
      this.index++;
      this.env.retried(this.entry.key, node);
      this.dispatch();
      return;
    }
    if (this.responseStarted) {
      this.done = true;
      this.socket.destroy();
      this.env.upgradeEnded(error, this);
      return;
    }
    this.fail(error);
  }

  // --- endings ----------------------------------------------------------------------------------

  private tunnelClosed(tunnel: WebSocketTunnel): void {
    this.env.tunnels.remove(tunnel);
    this.done = true;
    this.bytesIn += tunnel.bytesUp;
    this.bytesOut += tunnel.bytesDown;
    this.endAttempt();
    this.env.upgradeEnded(undefined, this);
  }

  private endAttempt(): void {
    const node = this.node;
    if (node === undefined) return;
    this.node = undefined;
    this.env.nodeEnded(this.entry.key, node.address);
  }

  private abortUpstream(): void {
    const connection = this.connection;
    this.connection = undefined;
    connection?.destroy();
    this.endAttempt();
  }

  private handleClientClose(): void {
    if (this.done || this.tunnel !== undefined) return;
    this.done = true;
    this.abortUpstream();
    this.env.upgradeEnded(new RouterError('SY_CLIENT_CLOSED', 'client closed the connection'), this);
  }

  private fail(error: RouterError): void {
    if (this.done) return;
    this.done = true;
    this.abortUpstream();
    this.socket.off('close', this.onClientClose);
    this.env.rejectUpgrade(this.req, this.socket, error, this.entry.key);
    this.status = statusForError(error);
    this.env.upgradeEnded(error, this);
  }
}
