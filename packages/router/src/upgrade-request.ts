/**
 * Admission of an HTTP/1.1 upgrade request (Node's 'upgrade' event: `Connection: upgrade` with an
 * `Upgrade` header), before it is routed. Only WebSocket is proxied (http-hardening §1.3: an h2c or other
 * forwarded upgrade would let the client talk to the node past the proxy's rules):
 *  - the request-guard rules apply first (Host, header count, `Upgrade: h2c` → SY_BAD_REQUEST, ...);
 *  - `Upgrade` must be exactly one token `websocket` (any case), the method GET, the version HTTP/1.1,
 *    with no request body, one `Sec-WebSocket-Key` and `Sec-WebSocket-Version` (RFC 6455 §4.1);
 *    otherwise 400 SY_UPGRADE_REFUSED.
 * The node checks the key and version values and answers the handshake; the router relays it.
 * Also builds the raw responses written on an upgrade socket, which has left Node's HTTP server.
 */
import http, { type IncomingMessage } from 'node:http';
import { RouterError } from './errors.js';
import { headerCount, headerValue } from './header-policy.js';
import type { GuardedRequest } from './request-guard.js';

/** Admits a guarded upgrade request; returns it or the error to answer with. */
export function admitUpgrade(
  req: IncomingMessage,
  guarded: GuardedRequest | RouterError,
): GuardedRequest | RouterError {
  if (guarded instanceof RouterError) return guarded;
  const raw = req.rawHeaders;
  const upgrade = headerValue(raw, 'upgrade');
  if (headerCount(raw, 'upgrade') !== 1 || upgrade?.trim().toLowerCase() !== 'websocket') {
    return new RouterError('SY_UPGRADE_REFUSED', 'only "Upgrade: websocket" is proxied');
  }
  if (req.method !== 'GET' || req.httpVersion !== '1.1') {
    return new RouterError('SY_UPGRADE_REFUSED', 'a websocket upgrade must be an HTTP/1.1 GET');
  }
  if (guarded.bodyMode !== 'none' && !(guarded.bodyMode === 'length' && guarded.contentLength === 0)) {
    return new RouterError('SY_UPGRADE_REFUSED', 'a websocket upgrade carries no body');
  }
  if (headerCount(raw, 'sec-websocket-key') !== 1 || headerCount(raw, 'sec-websocket-version') !== 1) {
    return new RouterError('SY_UPGRADE_REFUSED', 'a websocket upgrade needs one Sec-WebSocket-Key and -Version');
  }
  return guarded;
}

/** A complete coded error response for a raw socket (always `Connection: close`). */
export function rawErrorResponse(status: number, code: string, message: string, retryAfterSeconds?: number): string {
  const body = JSON.stringify({ error: { code, message } });
  let head = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\n`;
  head += `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  head += `X-Switchyard-Error: ${code}\r\n`;
  if (retryAfterSeconds !== undefined) head += `Retry-After: ${retryAfterSeconds}\r\n`;
  return `${head}Connection: close\r\n\r\n${body}`;
}

/** `Name: value\r\n` lines from a flat [name, value, ...] list. */
export function headerLines(flat: readonly string[]): string {
  let out = '';
  for (let i = 0; i < flat.length; i += 2) out += `${flat[i]!}: ${flat[i + 1]!}\r\n`;
  return out;
}
