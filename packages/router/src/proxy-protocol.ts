/**
 * PROXY protocol (HAProxy's spec, v1 text and v2 binary) on client listeners: `--http-enable-proxy-protocol`,
 * as uWSGI's router option of that name, for a router behind a TCP load balancer (HAProxy `send-proxy`,
 * AWS NLB, ...) that prepends the client's address to each connection.
 *
 * Contract:
 *  - when enabled, EVERY connection must start with a PROXY header (v1 or v2): a connection that starts
 *    with anything else, an invalid header, or none within the client header timeout is closed without
 *    a response (counted as SY_BAD_PROXY_HEADER); one the peer closes first (a TCP health check) is
 *    only closed. Requiring it (as nginx's `proxy_protocol` and HAProxy's
 *    `accept-proxy` do) is what keeps a client that reaches the listener directly from choosing its own
 *    address; uWSGI parses the header only when present;
 *  - the header's source address and port become the connection's `remoteAddress`/`remotePort` (so
 *    X-Forwarded-For, REMOTE_ADDR, `--trusted-proxies`, client-IP hashing and the access log see the
 *    client); v1 `UNKNOWN`, v2 `LOCAL` (health checks) and v2 address families other than TCP over
 *    IPv4/IPv6 keep the real peer;
 *  - bytes after the header are handed on untouched (HTTP, or the TLS handshake on `--https`);
 *  - a v1 line is at most 107 bytes; a v2 header at most 16 + 4096 bytes (TLVs are skipped).
 */
import { isIPv4, isIPv6, type Server, type Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';

export interface ProxySource {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
}

export type ProxyHeaderResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'ok'; readonly length: number; readonly source: ProxySource | undefined };

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V1_MAX = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_MAX_PAYLOAD = 4096;
const INCOMPLETE: ProxyHeaderResult = { kind: 'incomplete' };

/** True when `data` could still become `prefix` (it is a prefix of it, or starts with it). */
function startsLike(data: Buffer, prefix: Buffer): boolean {
  const n = Math.min(data.length, prefix.length);
  return data.subarray(0, n).equals(prefix.subarray(0, n));
}

const PORT = /^(?:0|[1-9][0-9]{0,4})$/;

function port(text: string): number | undefined {
  if (!PORT.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

function parseV1(data: Buffer): ProxyHeaderResult {
  const end = data.indexOf('\r\n', 0, 'latin1');
  if (end === -1 || end + 2 > V1_MAX) {
    return data.length >= V1_MAX ? { kind: 'invalid', reason: 'v1-too-long' } : INCOMPLETE;
  }
  const parts = data.toString('latin1', 0, end).split(' ');
  const length = end + 2;
  if (parts[1] === 'UNKNOWN') return { kind: 'ok', length, source: undefined };
  if (parts.length !== 6) return { kind: 'invalid', reason: 'v1-malformed' };
  const [, proto, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const valid = proto === 'TCP4' ? isIPv4 : proto === 'TCP6' ? isIPv6 : undefined;
  if (valid === undefined) return { kind: 'invalid', reason: 'v1-protocol' };
  const sourcePort = port(sport);
  if (!valid(src) || !valid(dst) || sourcePort === undefined || port(dport) === undefined) {
    return { kind: 'invalid', reason: 'v1-address' };
  }
  return { kind: 'ok', length, source: { address: src, port: sourcePort, family: proto === 'TCP4' ? 'IPv4' : 'IPv6' } };
}

function ipv6(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // Compressed the way Node prints addresses, so the same client always gets the same string.
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

function parseV2(data: Buffer): ProxyHeaderResult {
  if (data.length < 16) return INCOMPLETE;
  const versionCommand = data[12]!;
  if (versionCommand >> 4 !== 2) return { kind: 'invalid', reason: 'v2-version' };
  const command = versionCommand & 0x0f;
  if (command > 1) return { kind: 'invalid', reason: 'v2-command' };
  const payload = data.readUInt16BE(14);
  if (payload > V2_MAX_PAYLOAD) return { kind: 'invalid', reason: 'v2-too-long' };
  const length = 16 + payload;
  if (data.length < length) return INCOMPLETE;
  // LOCAL: the balancer's own connection (a health check): the real peer stays.
  if (command === 0) return { kind: 'ok', length, source: undefined };
  const family = data[13]! >> 4;
  const transport = data[13]! & 0x0f;
  if (transport === 2) return { kind: 'invalid', reason: 'v2-datagram' };
  const body = data.subarray(16, length);
  if (family === 1) {
    if (payload < 12) return { kind: 'invalid', reason: 'v2-address' };
    const address = `${body[0]}.${body[1]}.${body[2]}.${body[3]}`;
    return { kind: 'ok', length, source: { address, port: body.readUInt16BE(8), family: 'IPv4' } };
  }
  if (family === 2) {
    if (payload < 36) return { kind: 'invalid', reason: 'v2-address' };
    return {
      kind: 'ok',
      length,
      source: { address: ipv6(body.subarray(0, 16)), port: body.readUInt16BE(32), family: 'IPv6' },
    };
  }
  // UNSPEC or UNIX: nothing usable as a client address.
  return { kind: 'ok', length, source: undefined };
}

/** Parses a PROXY header at the start of `data` (what has arrived so far). */
export function parseProxyHeader(data: Buffer): ProxyHeaderResult {
  if (data.length === 0) return INCOMPLETE;
  if (startsLike(data, V1_PREFIX)) return data.length < V1_PREFIX.length ? INCOMPLETE : parseV1(data);
  if (startsLike(data, V2_SIGNATURE)) return data.length < V2_SIGNATURE.length ? INCOMPLETE : parseV2(data);
  return { kind: 'invalid', reason: 'no-header' };
}

/** Makes `socket` report `source` as its peer (own properties shadow net.Socket's getters). */
function adoptSource(socket: Socket, source: ProxySource): void {
  Object.defineProperty(socket, 'remoteAddress', { value: source.address, configurable: true });
  Object.defineProperty(socket, 'remotePort', { value: source.port, configurable: true });
  Object.defineProperty(socket, 'remoteFamily', { value: source.family, configurable: true });
}

export interface ProxyProtocolOptions {
  /** Longest wait for the whole header, ms. */
  readonly timeoutMs: number;
  /** A connection closed for a missing or invalid header (reason as in ProxyHeaderResult). */
  readonly onRejected: (reason: string, socket: Socket) => void;
}

/**
 * Requires a PROXY header on every connection of `server`. Call right after creating the server (before
 * other 'connection' listeners are added): the listeners present now (Node's HTTP or TLS handling) get
 * the connection once its header was read; listeners added later still see it at accept time.
 */
export function requireProxyProtocol(server: Server, options: ProxyProtocolOptions): void {
  const tls = server instanceof TlsServer;
  const inner = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  const sources = new WeakMap<Socket, ProxySource>();
  server.on('connection', (socket: Socket) => {
    let received: Buffer | undefined;
    const done = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', abandon);
      socket.off('end', abandon);
      socket.off('close', done);
    };
    const reject = (reason: string): void => {
      done();
      options.onRejected(reason, socket);
      socket.destroy();
    };
    // A peer that leaves before sending a header (a TCP health check, a reset) is no bad header: not counted.
    const abandon = (): void => {
      done();
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      received = received === undefined ? chunk : Buffer.concat([received, chunk]);
      const header = parseProxyHeader(received);
      if (header.kind === 'incomplete') return;
      if (header.kind === 'invalid') {
        reject(header.reason);
        return;
      }
      done();
      if (header.source !== undefined) {
        sources.set(socket, header.source);
        adoptSource(socket, header.source);
      }
      // Whatever followed the header is read again by the HTTP parser or the TLS layer (which takes
      // bytes buffered on the socket before its own).
      if (header.length < received.length) socket.unshift(received.subarray(header.length));
      if (socket.destroyed) return;
      // The TLS layer starts reading the socket itself (a socket already flowing stalls its handshake);
      // the HTTP parser takes over a flowing socket as it is.
      if (tls) socket.pause();
      for (const listener of inner) listener.call(server, socket);
    };
    const timer = setTimeout(() => reject('timeout'), options.timeoutMs);
    socket.on('data', onData);
    socket.on('error', abandon);
    socket.on('end', abandon);
    socket.on('close', done);
  });
  // TLS: requests arrive on the TLSSocket wrapping the connection; give it the same peer. Its TLS handle
  // names the wrapped socket as `_parentWrap` (Node's own link, stable since Node 10; the HTTPS test
  // checks it): were it missing, HTTPS requests would show the balancer's address, never a wrong client.
  server.on('secureConnection', (tlsSocket: Socket) => {
    const raw = (tlsSocket as Socket & { _handle?: { _parentWrap?: Socket } | null })._handle?._parentWrap;
    const source = raw === undefined ? undefined : sources.get(raw);
    if (source !== undefined) adoptSource(tlsSocket, source);
  });
}
