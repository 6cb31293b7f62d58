/**
 * Builds the uwsgi vars block for a request to a uwsgi node, with the vars uWSGI's HTTP router sends
 * (reference: uwsgi-subscription.md §3.3), in its order: REQUEST_METHOD, REQUEST_URI, PATH_INFO
 * (percent-decoded, byte-exact), QUERY_STRING, SERVER_PROTOCOL, SCRIPT_NAME, SERVER_NAME (the router's
 * hostname, as uWSGI), SERVER_PORT (listener port), UWSGI_ROUTER=http, REMOTE_ADDR, REMOTE_PORT (the real
 * port: uWSGI byte-swaps it, issue #1889), HTTPS=on over TLS, CONTENT_TYPE, CONTENT_LENGTH, then HTTP_*
 * for the other headers (duplicates merged with ", " as uWSGI does), then extra vars (`--http-var`).
 *
 * Differences from uWSGI, on purpose: hop-by-hop headers and client X-Forwarded-* / Forwarded /
 * X-Real-IP are dropped (REMOTE_ADDR carries the client); header names containing `_` are dropped,
 * since `X_Forwarded_For` would otherwise arrive as HTTP_X_FORWARDED_FOR (Envoy rejects them for the
 * same reason); a client cannot inject `UWSGI_*` vars (every header gets the HTTP_ prefix).
 */
import { MAX_VARS_SIZE, UWSGI_HEADER_SIZE, VarsTooLargeError } from '@switchyard/protocol';
import { connectionListed, HOP_BY_HOP, PROXY_OWNED_UP } from './header-policy.js';

export interface UwsgiRequestInfo {
  readonly method: string;
  /** Request target as received (origin-form). */
  readonly target: string;
  readonly httpVersion: string;
  readonly rawHeaders: readonly string[];
  readonly serverName: string;
  readonly serverPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly tls: boolean;
  /** Body length in bytes, or undefined for a request without a body. */
  readonly contentLength: number | undefined;
  readonly extraVars: readonly (readonly [string, string])[];
}

/** Headers never turned into HTTP_* vars: hop-by-hop, proxy-owned (but Host, which becomes HTTP_HOST) and the two CGI vars. */
const SKIPPED: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP,
  ...[...PROXY_OWNED_UP].filter((name) => name !== 'host'),
  'content-type',
]);

/**
 * Returns header + vars in one exact-size Buffer, written in one pass (sizes first, then bytes; no
 * intermediate var-name strings or Map unless a header repeats); throws VarsTooLargeError
 * (SY_VARS_TOO_LARGE) past 64 KiB. Every string is written as latin1 (one byte per char, as Node hands
 * request heads over), exactly as UwsgiVarsBuilder.add would.
 */
export function buildUwsgiVars(info: UwsgiRequestInfo, modifier1: number, modifier2: number): Buffer {
  const target = info.target;
  const q = target.indexOf('?');
  const pathInfo = percentDecodeBytes(q < 0 ? target : target.slice(0, q));
  const query = q < 0 ? '' : target.slice(q + 1);
  const protocol = `HTTP/${info.httpVersion}`;
  const serverPort = String(info.serverPort);
  const remotePort = String(info.remotePort);
  const raw = info.rawHeaders;
  let contentType: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'content-type') {
      contentType = raw[i + 1]!;
      break;
    }
  }
  const contentLength = info.contentLength === undefined ? undefined : String(info.contentLength);
  const headers = forwardedHeaders(raw);
  const names = headers.names;
  const values = headers.values;
  const extra = info.extraVars;

  // 4 bytes of lengths per pair; var names are ASCII.
  let size =
    FIXED_KEYS_SIZE +
    info.method.length +
    target.length +
    pathInfo.length +
    query.length +
    protocol.length +
    info.serverName.length +
    serverPort.length +
    4 + // 'http'
    info.remoteAddress.length +
    remotePort.length;
  if (info.tls) size += 4 + 5 + 2;
  if (contentType !== undefined) size += 4 + 12 + contentType.length;
  if (contentLength !== undefined) size += 4 + 14 + contentLength.length;
  for (let i = 0; i < names.length; i++) size += 9 + names[i]!.length + values[i]!.length;
  for (const [name, value] of extra) size += 4 + name.length + value.length;
  if (size > MAX_VARS_SIZE) throw new VarsTooLargeError(size);

  const b = Buffer.allocUnsafe(UWSGI_HEADER_SIZE + size);
  b[0] = modifier1 & 0xff;
  b[1] = size & 0xff;
  b[2] = size >>> 8;
  b[3] = modifier2 & 0xff;
  let p = UWSGI_HEADER_SIZE;
  p = pair(b, p, 'REQUEST_METHOD', info.method);
  p = pair(b, p, 'REQUEST_URI', target);
  p = pair(b, p, 'PATH_INFO', pathInfo);
  p = pair(b, p, 'QUERY_STRING', query);
  p = pair(b, p, 'SERVER_PROTOCOL', protocol);
  p = pair(b, p, 'SCRIPT_NAME', '');
  p = pair(b, p, 'SERVER_NAME', info.serverName);
  p = pair(b, p, 'SERVER_PORT', serverPort);
  p = pair(b, p, 'UWSGI_ROUTER', 'http');
  p = pair(b, p, 'REMOTE_ADDR', info.remoteAddress);
  p = pair(b, p, 'REMOTE_PORT', remotePort);
  if (info.tls) p = pair(b, p, 'HTTPS', 'on');
  if (contentType !== undefined) p = pair(b, p, 'CONTENT_TYPE', contentType);
  if (contentLength !== undefined) p = pair(b, p, 'CONTENT_LENGTH', contentLength);
  for (let i = 0; i < names.length; i++) {
    // HTTP_ + the lower-case name upper-cased with '-' as '_' (names are tokens: ASCII).
    const name = names[i]!;
    const keyLength = 5 + name.length;
    b[p] = keyLength & 0xff;
    b[p + 1] = keyLength >>> 8;
    b[p + 2] = 0x48; // H
    b[p + 3] = 0x54; // T
    b[p + 4] = 0x54; // T
    b[p + 5] = 0x50; // P
    b[p + 6] = 0x5f; // _
    p += 7;
    for (let k = 0; k < name.length; k++) {
      const c = name.charCodeAt(k);
      b[p++] = c === 0x2d ? 0x5f : c >= 0x61 && c <= 0x7a ? c - 0x20 : c;
    }
    p = text(b, p, values[i]!);
  }
  for (const [name, value] of extra) p = pair(b, p, name, value);
  return b;
}

/** Bytes of the names and length prefixes of the 11 vars every request carries. */
const FIXED_KEYS_SIZE =
  11 * 4 +
  'REQUEST_METHOD'.length +
  'REQUEST_URI'.length +
  'PATH_INFO'.length +
  'QUERY_STRING'.length +
  'SERVER_PROTOCOL'.length +
  'SCRIPT_NAME'.length +
  'SERVER_NAME'.length +
  'SERVER_PORT'.length +
  'UWSGI_ROUTER'.length +
  'REMOTE_ADDR'.length +
  'REMOTE_PORT'.length;

/** Strings shorter than this are copied by a JS loop (cheaper than a native call); longer ones natively. */
const NATIVE_COPY_FROM = 48;

function pair(b: Buffer, p: number, key: string, value: string): number {
  return text(b, text(b, p, key), value);
}

/** Writes a 2-byte little-endian length and the latin1 bytes of `s`; returns the next offset. */
function text(b: Buffer, p: number, s: string): number {
  const n = s.length;
  b[p] = n & 0xff;
  b[p + 1] = n >>> 8;
  p += 2;
  if (n >= NATIVE_COPY_FROM) return p + b.write(s, p, n, 'latin1');
  for (let k = 0; k < n; k++) b[p + k] = s.charCodeAt(k);
  return p + n;
}

/** Reused between calls (buildUwsgiVars is synchronous): the forwarded headers, merged, in first-seen order. */
const forwarded = { names: [] as string[], values: [] as string[] };
/** Above this many forwarded headers, duplicates are found with a Map instead of a scan. */
const SCAN_LIMIT = 24;

/**
 * The headers that become HTTP_* vars: lower-case names (hop-by-hop, proxy-owned but Host, Content-Type,
 * Connection-listed and `_`-containing ones dropped) with their values, a repeated name merged into its
 * first occurrence with ", " (as uWSGI). Valid until the next call.
 */
function forwardedHeaders(raw: readonly string[]): typeof forwarded {
  const names = forwarded.names;
  const values = forwarded.values;
  names.length = 0;
  values.length = 0;
  const listed = connectionListed(raw);
  let index: Map<string, number> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (SKIPPED.has(lower) || listed?.has(lower) || lower.includes('_')) continue;
    const value = raw[i + 1]!;
    let seen = -1;
    if (index !== undefined) {
      seen = index.get(lower) ?? -1;
    } else {
      for (let j = 0; j < names.length; j++) {
        if (names[j] === lower) {
          seen = j;
          break;
        }
      }
    }
    if (seen >= 0) {
      values[seen] = `${values[seen]!}, ${value}`;
      continue;
    }
    names.push(lower);
    values.push(value);
    if (index !== undefined) {
      index.set(lower, names.length - 1);
    } else if (names.length > SCAN_LIMIT) {
      index = new Map();
      for (let j = 0; j < names.length; j++) index.set(names[j]!, j);
    }
  }
  return forwarded;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * Percent-decodes a path into a latin1 "byte string" (each char one byte), so `%C3%A9` stays the two
 * UTF-8 bytes it encodes when written as latin1. Invalid escapes are kept literally, as uWSGI does.
 */
export function percentDecodeBytes(path: string): string {
  if (!path.includes('%')) return path;
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 && i + 2 < path.length) {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        out += String.fromCharCode(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += path[i];
  }
  return out;
}
