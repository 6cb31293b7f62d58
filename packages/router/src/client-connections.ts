/**
 * Connection-level policy of the client listeners, the part that happens outside a request handler:
 *  - `maxConnections` (0 = no limit) open client connections over every listener; one more is answered
 *    `503 SY_TOO_MANY_CONNECTIONS` with `Retry-After` and closed (on a TLS listener it is closed before
 *    the handshake, nothing can be written in clear), and no request on it is served;
 *  - parse errors and client timeouts reported by Node (`clientError`) become coded responses:
 *    header overflow → 431 SY_HEADERS_TOO_LARGE, chunk extension overflow → 413 SY_BODY_TOO_LARGE,
 *    header or request timeout → 408 SY_CLIENT_TIMEOUT, an unparsable HTTP version → 505
 *    SY_VERSION_NOT_SUPPORTED, anything else → 400 SY_BAD_REQUEST; always `Connection: close`.
 *    A socket error (reset, broken pipe) is not a request error: the socket is destroyed silently;
 *  - responses stay in order: when the error arrives while a response on that connection is still
 *    owed, an error inside that request's own body aborts it (a coded answer if its head was not sent,
 *    else the connection is destroyed so the truncated response cannot look complete), and an error
 *    in a later pipelined request is answered only after the current response, then the connection
 *    closes (so bytes after `Connection: close` are never served);
 *  - `CONNECT` (authority-form) is not proxied: 400 SY_BAD_REQUEST.
 * After an error response the socket is ended, and destroyed after `lingerMs` if the peer keeps it open.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { RouterError, statusForError } from './errors.js';

export interface ClientConnectionsOptions {
  /** Most open client connections over all listeners; 0 = no limit. */
  readonly maxConnections: number;
  /** Retry-After seconds on 503. */
  readonly retryAfterSeconds: number;
  /** How long an ended error connection may stay open, ms. Default 2000. */
  readonly lingerMs?: number;
  /** Called once per coded error response written here. */
  readonly countError: (code: string, socket: Socket) => void;
}

interface ActiveRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly abort: (error: RouterError) => void;
}

/** The raw bytes of a coded error response that closes the connection. */
export function errorResponseBytes(error: RouterError, extraHeaders = ''): string {
  const status = statusForError(error);
  const body = JSON.stringify({ error: { code: error.code, message: error.message } });
  return (
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nX-Switchyard-Error: ${error.code}\r\n${extraHeaders}` +
    `Connection: close\r\n\r\n${body}`
  );
}

/** Maps a Node client error to the coded error answered for it; undefined for socket-level errors. */
export function clientFailure(error: NodeJS.ErrnoException): RouterError | undefined {
  const code = error.code ?? '';
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new RouterError('SY_HEADERS_TOO_LARGE', 'request head too large');
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new RouterError('SY_BODY_TOO_LARGE', 'chunk extensions too large');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new RouterError('SY_CLIENT_TIMEOUT', 'request not received in time');
    case 'HPE_INVALID_VERSION':
      // Only a well-formed HTTP/x.y that is not 1.0/1.1 (llhttp's reason); a broken line is a 400.
      if ((error as { reason?: unknown }).reason === 'Invalid HTTP version') {
        return new RouterError('SY_VERSION_NOT_SUPPORTED', 'unsupported HTTP version');
      }
      return new RouterError('SY_BAD_REQUEST', `malformed request (${code})`);
    default:
      return code.startsWith('HPE_') ? new RouterError('SY_BAD_REQUEST', `malformed request (${code})`) : undefined;
  }
}

/**
 * Node marks the response after which it closes the connection (`Connection: close` either way,
 * HTTP/1.0 without keep-alive, a close-delimited body) with `_last`, stable since Node 0.x.
 */
function closesConnection(res: ServerResponse): boolean {
  return (res as ServerResponse & { _last?: boolean })._last === true;
}

export class ClientConnections {
  private readonly options: ClientConnectionsOptions;
  private readonly active = new WeakMap<Socket, ActiveRequest>();
  private readonly failed = new WeakSet<Socket>();
  private readonly refused = new WeakSet<Socket>();
  private open = 0;
  /** Connections refused over the limit since start. */
  refusedCount = 0;

  constructor(options: ClientConnectionsOptions) {
    this.options = options;
  }

  /** Open client connections now. */
  get openCount(): number {
    return this.open;
  }

  /** Installs the policy on a listener (before any connection). */
  attach(server: http.Server, tls = false): void {
    // A client that half-closes after its request still gets its response (Node's default ends the
    // socket at once and the response is lost); with nothing owed the socket ends as before.
    (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    server.prependListener('connection', (socket: Socket) => this.onConnection(socket, tls));
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => this.onClientError(error, socket));
    server.on('connect', (req: IncomingMessage, socket: Socket) => {
      socket.on('error', () => socket.destroy());
      this.writeError(socket, new RouterError('SY_BAD_REQUEST', `CONNECT ${req.url ?? ''} is not proxied`));
    });
  }

  /** True when the connection was refused over the limit: a request on it must not be served. */
  isRefused(socket: Socket): boolean {
    return this.refused.has(socket);
  }

  /** Records the latest request of a connection and how to abort it (used by the client-error path). */
  track(req: IncomingMessage, res: ServerResponse, abort: (error: RouterError) => void): void {
    const socket = req.socket;
    const entry: ActiveRequest = { req, res, abort };
    const known = this.active.get(socket);
    this.active.set(socket, entry);
    if (known?.req === req) return;
    // Once both directions are over, an idle keep-alive connection keeps nothing of the request alive.
    const release = () => {
      if (req.complete && res.writableFinished && this.active.get(socket)?.req === req) this.active.delete(socket);
    };
    res.once('finish', release);
    req.once('end', release);
  }

  /** `tls`: the socket is the raw TCP under a TLS handshake; a refusal cannot be written in clear. */
  private onConnection(socket: Socket, tls: boolean): void {
    this.open++;
    socket.once('close', () => this.open--);
    const max = this.options.maxConnections;
    if (max > 0 && this.open > max) {
      this.refused.add(socket);
      this.refusedCount++;
      socket.on('error', () => socket.destroy());
      if (tls) {
        this.options.countError('SY_TOO_MANY_CONNECTIONS', socket);
        socket.destroy();
        return;
      }
      this.writeError(
        socket,
        new RouterError('SY_TOO_MANY_CONNECTIONS', `${max} client connections are open`),
        `Retry-After: ${this.options.retryAfterSeconds}\r\n`,
      );
    }
  }

  private onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    if (this.failed.has(socket)) return;
    this.failed.add(socket);
    const failure = clientFailure(error);
    if (failure === undefined || this.refused.has(socket)) {
      socket.destroy();
      return;
    }
    const active = this.active.get(socket);
    if (active !== undefined && !active.req.complete) {
      // The error is inside this request (its body, or its time ran out): abort it unless it was
      // answered already. Once its response is written, nothing more may be written on this connection.
      const res = active.res;
      if (!res.writableEnded && !res.destroyed) active.abort(failure);
      if (res.writableFinished || res.destroyed) {
        socket.destroy();
      } else {
        res.once('finish', () => this.closeAfterResponse(socket));
        res.once('close', () => socket.destroy());
      }
      return;
    }
    if (active !== undefined && (closesConnection(active.res) || error.code === 'HPE_CLOSED_CONNECTION')) {
      // That response ends the connection (Connection: close, HTTP/1.0...): bytes after it are never
      // answered, nor served.
      if (active.res.writableEnded) setImmediate(() => this.closeAfterResponse(socket));
      else active.res.once('finish', () => this.closeAfterResponse(socket));
      return;
    }
    if (active !== undefined && !active.res.writableFinished && !active.res.destroyed) {
      // The error is in a later pipelined request: answer it after the response owed now.
      active.res.once('finish', () => this.writeError(socket, failure));
      active.res.once('close', () => {
        if (!active.res.writableFinished) socket.destroy();
      });
      return;
    }
    this.writeError(socket, failure);
  }

  private closeAfterResponse(socket: Socket): void {
    if (!socket.destroyed) {
      socket.end();
      this.linger(socket);
    }
  }

  /** Writes a coded error response (if the socket can take it), ends the socket, destroys it later. */
  private writeError(socket: Socket, error: RouterError, extraHeaders = ''): void {
    if (socket.destroyed) return;
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    this.options.countError(error.code, socket);
    socket.end(errorResponseBytes(error, extraHeaders));
    this.linger(socket);
  }

  private linger(socket: Socket): void {
    setTimeout(() => socket.destroy(), this.options.lingerMs ?? 2000).unref();
  }
}
