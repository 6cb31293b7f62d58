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
import { UwsgiVarsBuilder } from '@switchyard/protocol';
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

/** Returns header + vars; throws VarsTooLargeError (SY_VARS_TOO_LARGE) past 64 KiB. */
export function buildUwsgiVars(info: UwsgiRequestInfo, modifier1: number, modifier2: number): Buffer {
  const b = new UwsgiVarsBuilder(1024 + info.target.length * 2);
  const q = info.target.indexOf('?');
  const rawPath = q < 0 ? info.target : info.target.slice(0, q);
  b.add('REQUEST_METHOD', info.method);
  b.add('REQUEST_URI', info.target);
  b.add('PATH_INFO', percentDecodeBytes(rawPath));
  b.add('QUERY_STRING', q < 0 ? '' : info.target.slice(q + 1));
  b.add('SERVER_PROTOCOL', `HTTP/${info.httpVersion}`);
  b.add('SCRIPT_NAME', '');
  b.add('SERVER_NAME', info.serverName);
  b.add('SERVER_PORT', String(info.serverPort));
  b.add('UWSGI_ROUTER', 'http');
  b.add('REMOTE_ADDR', info.remoteAddress);
  b.add('REMOTE_PORT', String(info.remotePort));
  if (info.tls) b.add('HTTPS', 'on');
  const raw = info.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'content-type') {
      b.add('CONTENT_TYPE', raw[i + 1]!);
      break;
    }
  }
  if (info.contentLength !== undefined) b.add('CONTENT_LENGTH', String(info.contentLength));
  const listed = connectionListed(raw);
  const merged = new Map<string, string>();
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (SKIPPED.has(lower) || listed?.has(lower) || lower.includes('_')) continue;
    const varName = `HTTP_${lower.toUpperCase().replaceAll('-', '_')}`;
    const previous = merged.get(varName);
    merged.set(varName, previous === undefined ? raw[i + 1]! : `${previous}, ${raw[i + 1]!}`);
  }
  for (const [name, value] of merged) b.add(name, value);
  for (const [name, value] of info.extraVars) b.add(name, value);
  return b.finish(modifier1, modifier2);
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
