/**
 * The router's coded error responses: every error the router answers itself is logged once (warn, with
 * its permanent code), counted by code, and written as `{"error":{"code","message"}}` JSON with
 * `X-Switchyard-Error: <code>`, the status from `statusForError` (errors.ts), `Retry-After` on 503, and
 * `Connection: close` when the request's bytes cannot be trusted or are unread, or while the router shuts
 * down. Upgrades get the same response written on their raw socket, which is then closed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { codeOfError, type RouterError, statusForError } from './errors.js';
import { rawErrorResponse } from './upgrade-request.js';

/** Error statuses answered with `Connection: close` (the request's bytes cannot be trusted or are unread). */
const CLOSING_STATUS = new Set([400, 408, 413, 414, 417, 431, 500, 505]);

export interface ErrorResponderOptions {
  readonly logger: Logger;
  /** Retry-After seconds on 503. */
  readonly retryAfterSeconds: number;
  /** Whether the router is shutting down (every response then carries `Connection: close`). */
  readonly router: { readonly draining: boolean };
}

export class ErrorResponder {
  /** Coded errors answered or dropped, by code (RouterStats.errors); never reset. */
  readonly counts: Record<string, number> = {};
  private readonly options: ErrorResponderOptions;

  constructor(options: ErrorResponderOptions) {
    this.options = options;
  }

  /** Counts one coded error (also those answered elsewhere, e.g. by client-connections.ts). */
  count(code: string): void {
    this.counts[code] = (this.counts[code] ?? 0) + 1;
  }

  /** Writes the coded error response; returns the body bytes written (0 when the response had begun). */
  respond(req: IncomingMessage, res: ServerResponse, error: RouterError, hostKey: string | undefined): number {
    const code = codeOfError(error);
    this.count(code);
    this.options.logger.warn(
      { code, host: hostKey ?? req.headers.host, method: req.method, url: req.url, client: req.socket.remoteAddress },
      error.message,
    );
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return 0;
    }
    const status = statusForError(error);
    const body = JSON.stringify({ error: { code, message: error.message } });
    const headers: string[] = [
      'Content-Type',
      'application/json',
      'Content-Length',
      String(Buffer.byteLength(body)),
      'X-Switchyard-Error',
      code,
    ];
    if (status === 503) headers.push('Retry-After', String(this.options.retryAfterSeconds));
    // Errors that may leave request bytes unread, or whose request cannot be trusted, close the connection.
    if (CLOSING_STATUS.has(status) || this.options.router.draining) headers.push('Connection', 'close');
    res.writeHead(status, headers);
    res.end(body);
    return Buffer.byteLength(body);
  }

  /** Logs and counts `error`, writes it as a coded response on the upgrade's raw socket and closes it. */
  rejectUpgrade(req: IncomingMessage, socket: Socket, error: RouterError, hostKey: string | undefined): void {
    const code = codeOfError(error);
    this.count(code);
    this.options.logger.warn(
      { code, host: hostKey ?? req.headers.host, method: req.method, url: req.url, client: socket.remoteAddress },
      error.message,
    );
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const status = statusForError(error);
    socket.end(
      rawErrorResponse(status, code, error.message, status === 503 ? this.options.retryAfterSeconds : undefined),
    );
  }
}
