/**
 * Checks a parsed request before it is routed. Node's llhttp parser (never lenient) has already rejected
 * malformed framing (CL+TE, bad or duplicate CL, obs-fold, bare LF, bad chunk sizes...); these are the
 * rules it leaves to the proxy (http-hardening notes §2.1). Each failure is a RouterError, checked in
 * this order:
 *  - more than `maxHeaderCount` fields, or a head (request line + fields with their `: ` and CRLF)
 *    over `maxHeaderSize` bytes → SY_HEADERS_TOO_LARGE (431); Node's own limit counts name and value
 *    bytes only, so 3,000 empty fields would pass it;
 *  - a target over `maxUriLength` bytes → SY_URI_TOO_LONG (414);
 *  - an HTTP version other than 1.0/1.1 that llhttp let through (2.0, 0.9) → SY_VERSION_NOT_SUPPORTED
 *    (505; a version llhttp cannot parse at all, such as 1.2 or 5.6, is a 505 from the client-error path);
 *  - TE on HTTP/1.0, TE other than exactly one `chunked`, `h2c` in any Upgrade token, an `HTTP2-Settings`
 *    field, `*` for a method other than OPTIONS, a target that is neither origin-form (`/...`),
 *    absolute-form (`http[s]://authority...`) nor `*` → SY_BAD_REQUEST (400);
 *  - an Expect other than `100-continue` → SY_EXPECTATION_FAILED (417);
 *  - several Host fields, a malformed Host (see parseHostKey: no `/`, `\`, `..`, `@`, control bytes,
 *    spaces, bad ports), an HTTP/1.1 request without Host, an absolute-form target whose authority is
 *    malformed or names another host than Host → SY_BAD_HOST (400).
 * The target is forwarded byte for byte (no decoding, no dot-segment removal); absolute-form is reduced
 * to path and query, and its authority stands for Host when Host is absent (HTTP/1.0).
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

export interface GuardLimits {
  /** Most header fields (431 beyond). */
  readonly maxHeaderCount: number;
  /** Largest head in bytes, counted as sent on the wire without optional whitespace (431 beyond). */
  readonly maxHeaderSize: number;
  /** Longest request target in bytes (414 beyond). */
  readonly maxUriLength: number;
}

/** `h2c` as one of the comma-separated protocol tokens of an Upgrade value (any case, any version). */
const H2C_TOKEN = /(?:^|,)[ \t]*h2c(?:\/[^,]*)?[ \t]*(?:,|$)/i;
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)([^#]*)/i;

export function guardRequest(req: IncomingMessage, limits: GuardLimits): GuardedRequest | RouterError {
  const raw = req.rawHeaders;
  if (raw.length / 2 > limits.maxHeaderCount) {
    return new RouterError('SY_HEADERS_TOO_LARGE', `more than ${limits.maxHeaderCount} header fields`);
  }
  const method = req.method ?? '';
  let target = req.url ?? '';
  // Request line: method SP target SP HTTP/x.y CRLF, then `name: value` CRLF per field, then CRLF.
  let headSize = method.length + target.length + 13;
  for (let i = 0; i < raw.length; i += 2) headSize += raw[i]!.length + raw[i + 1]!.length + 4;
  if (headSize > limits.maxHeaderSize) {
    return new RouterError('SY_HEADERS_TOO_LARGE', `request head over ${limits.maxHeaderSize} bytes`);
  }
  if (target.length > limits.maxUriLength) {
    return new RouterError('SY_URI_TOO_LONG', `request target over ${limits.maxUriLength} bytes`);
  }
  const version = req.httpVersion;
  if (version !== '1.1' && version !== '1.0') {
    return new RouterError('SY_VERSION_NOT_SUPPORTED', `HTTP/${version} is not supported`);
  }
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
    } else if (name === 'upgrade' && H2C_TOKEN.test(raw[i + 1]!)) {
      return new RouterError('SY_BAD_REQUEST', 'Upgrade: h2c is refused');
    } else if (name === 'http2-settings') {
      return new RouterError('SY_BAD_REQUEST', 'HTTP2-Settings is refused (no h2c upgrade)');
    } else if (name === 'expect' && raw[i + 1]!.trim().toLowerCase() !== '100-continue') {
      return new RouterError('SY_EXPECTATION_FAILED', 'only Expect: 100-continue is supported');
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
  if (target === '*') {
    if (method !== 'OPTIONS') return new RouterError('SY_BAD_REQUEST', '"*" target outside OPTIONS');
  } else if (target.charCodeAt(0) !== 0x2f /* / */) {
    const absolute = ABSOLUTE_FORM.exec(target);
    if (absolute === null) return new RouterError('SY_BAD_REQUEST', 'request target is not origin- or absolute-form');
    const authority = parseHostKey(absolute[1]!);
    if (authority === undefined) return new RouterError('SY_BAD_HOST', 'malformed authority in absolute-form target');
    if (rawHost !== undefined && parseHostKey(rawHost)?.key !== authority.key) {
      return new RouterError('SY_BAD_HOST', 'absolute-form authority differs from Host');
    }
    rawHost ??= absolute[1]!;
    const rest = absolute[2]!;
    target = rest.length === 0 ? '/' : rest.charCodeAt(0) === 0x3f /* ? */ ? `/${rest}` : rest;
  }
  let host: HostKey | undefined;
  if (rawHost !== undefined) {
    host = parseHostKey(rawHost);
    if (host === undefined) return new RouterError('SY_BAD_HOST', 'malformed Host');
  } else if (version === '1.1') {
    return new RouterError('SY_BAD_HOST', 'HTTP/1.1 request without Host');
  }
  return { host, rawHost, target, bodyMode, contentLength: length };
}
