/**
 * Checks a parsed request before it is routed. Node's llhttp parser (never lenient) has already rejected
 * malformed framing (CL+TE, bad or duplicate CL, obs-fold, bare LF, bad chunk sizes...); these are the
 * rules it leaves to the proxy (http-hardening notes §2.1). Each failure is a RouterError:
 *  - more than `maxHeaderCount` fields → SY_HEADERS_TOO_LARGE (431);
 *  - version other than 1.0/1.1, TE on HTTP/1.0, TE other than exactly `chunked`, `Upgrade: h2c`,
 *    `*` target for a method other than OPTIONS → SY_BAD_REQUEST (400);
 *  - several Host headers, a malformed Host, an absolute-form target whose authority differs from Host
 *    → SY_BAD_HOST (400).
 */
import type { IncomingMessage } from 'node:http';
import { type HostKey, parseHostKey } from '@switchyard/protocol';
import { RouterError } from './errors.js';

export interface GuardedRequest {
  /** Normalised Host (undefined for HTTP/1.0 without Host). */
  readonly host: HostKey | undefined;
  /** Host header as received. */
  readonly rawHost: string | undefined;
  /** Origin-form target to forward (absolute-form is reduced to path and query). */
  readonly target: string;
  readonly bodyMode: 'none' | 'length' | 'chunked';
  readonly contentLength: number;
}

export function guardRequest(req: IncomingMessage, maxHeaderCount: number): GuardedRequest | RouterError {
  const raw = req.rawHeaders;
  if (raw.length / 2 > maxHeaderCount) {
    return new RouterError('SY_HEADERS_TOO_LARGE', `more than ${maxHeaderCount} header fields`);
  }
  const version = req.httpVersion;
  if (version !== '1.1' && version !== '1.0')
    return new RouterError('SY_BAD_REQUEST', `HTTP/${version} is not supported`);
  let rawHost: string | undefined;
  let hostCount = 0;
  let te: string | undefined;
  let teCount = 0;
  let contentLength: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === 'host') {
      hostCount++;
      rawHost = raw[i + 1]!;
    } else if (name === 'transfer-encoding') {
      teCount++;
      te = raw[i + 1]!;
    } else if (name === 'content-length') {
      contentLength = raw[i + 1]!;
    } else if (name === 'upgrade' && /(^|,)\s*h2c\s*(,|$)/i.test(raw[i + 1]!)) {
      return new RouterError('SY_BAD_REQUEST', 'Upgrade: h2c is refused');
    }
  }
  if (hostCount > 1) return new RouterError('SY_BAD_HOST', 'several Host headers');
  let bodyMode: GuardedRequest['bodyMode'] = 'none';
  let length = 0;
  if (teCount > 0) {
    if (version === '1.0') return new RouterError('SY_BAD_REQUEST', 'Transfer-Encoding on HTTP/1.0');
    if (teCount > 1 || te!.trim().toLowerCase() !== 'chunked') {
      return new RouterError('SY_BAD_REQUEST', 'Transfer-Encoding other than "chunked"');
    }
    bodyMode = 'chunked';
  } else if (contentLength !== undefined) {
    bodyMode = 'length';
    length = Number(contentLength);
  }
  let target = req.url ?? '/';
  if (target === '*') {
    if (req.method !== 'OPTIONS') return new RouterError('SY_BAD_REQUEST', '"*" target outside OPTIONS');
  } else if (target.charCodeAt(0) !== 0x2f /* / */) {
    const absolute = /^https?:\/\/([^/?#]*)([^#]*)/i.exec(target);
    if (absolute === null) return new RouterError('SY_BAD_REQUEST', 'request target is not origin- or absolute-form');
    const authority = absolute[1]!;
    if (rawHost !== undefined && authority.toLowerCase() !== rawHost.toLowerCase()) {
      return new RouterError('SY_BAD_HOST', 'absolute-form authority differs from Host');
    }
    rawHost ??= authority;
    const rest = absolute[2]!;
    target = rest.length === 0 ? '/' : rest.charCodeAt(0) === 0x3f ? `/${rest}` : rest;
  }
  let host: HostKey | undefined;
  if (rawHost !== undefined) {
    host = parseHostKey(rawHost);
    if (host === undefined) return new RouterError('SY_BAD_HOST', 'malformed Host');
  }
  return { host, rawHost, target, bodyMode, contentLength: length };
}
