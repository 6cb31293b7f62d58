/**
 * What crosses the proxy in each direction. Rules (RFC 9110 §7.6.1, http-hardening notes §1.3):
 *  - hop-by-hop headers and every name listed in `Connection` are removed, both ways; `Connection`
 *    cannot remove proxy-owned headers (Host, framing, X-Forwarded-*);
 *  - client framing headers (Content-Length, Transfer-Encoding) are never forwarded: the body is decoded
 *    by Node's strict parser and re-framed upstream;
 *  - forwarded headers trust nobody: client `X-Forwarded-*`, `Forwarded` and `X-Real-IP` are dropped and
 *    `X-Forwarded-For` (socket peer), `-Proto` and `-Host` are set by the router.
 * Header names are compared in lowercase; values pass byte-exact (latin1 strings).
 */

/** Hop-by-hop headers (RFC 9110 §7.6.1 and the proxy-specific ones), lowercase. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'proxy-authorization',
  'proxy-authenticate',
]);

/** Headers the router owns on the way up; a client copy is dropped and `Connection` cannot name them. */
export const PROXY_OWNED_UP: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'forwarded',
  'x-real-ip',
]);

/** Lowercased names listed in `Connection` headers, minus the ones that may never be removed that way. */
export function connectionListed(rawHeaders: readonly string[]): Set<string> | undefined {
  let listed: Set<string> | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    for (const token of rawHeaders[i + 1]!.split(',')) {
      const t = token.trim().toLowerCase();
      if (t.length === 0 || PROXY_OWNED_UP.has(t)) continue;
      listed ??= new Set();
      listed.add(t);
    }
  }
  return listed;
}

/**
 * Appends the end-to-end request headers to `out` as `Name: value\r\n` lines (Host kept as received).
 * Returns the text to write.
 */
export function forwardRequestHeaders(rawHeaders: readonly string[]): string {
  const listed = connectionListed(rawHeaders);
  let out = '';
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || (PROXY_OWNED_UP.has(lower) && lower !== 'host') || listed?.has(lower)) continue;
    out += `${name}: ${rawHeaders[i + 1]!}\r\n`;
  }
  return out;
}

/**
 * Filters a node's response headers for the client: hop-by-hop and Connection-listed names removed;
 * `Content-Length` kept only when `keepLength` (the body is length-framed); `Transfer-Encoding` always
 * removed (Node re-frames). Returns a new flat array for `res.writeHead`.
 */
export function forwardResponseHeaders(rawHeaders: readonly string[], keepLength: boolean): string[] {
  const listed = connectionListed(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed?.has(lower)) continue;
    if (lower === 'content-length' && !keepLength) continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  return out;
}

/** Value of the first header named `lowerName` (given in lowercase), or undefined. */
export function headerValue(rawHeaders: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) return rawHeaders[i + 1];
  }
  return undefined;
}

/** How many headers named `lowerName` the request carries. */
export function headerCount(rawHeaders: readonly string[], lowerName: string): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) count++;
  }
  return count;
}
