/**
 * Node addresses: the `address` field of a subscription, which is both the node's identity inside a host
 * (with the key) and where the router connects.
 *
 * Accepted forms (1..255 bytes, no control bytes anywhere) and their normalised spelling:
 *  - `a.b.c.d:port`      IPv4 dotted quad, each part 0..255 in plain decimal (no leading zeros: uWSGI's
 *                        `inet_addr` would read `010` as octal, so such spellings are ambiguous);
 *  - `:port`             uWSGI's "empty host" = 0.0.0.0, normalised to `0.0.0.0:port`;
 *  - `[ipv6]:port`       IPv6 literal in brackets, normalised to its canonical RFC 5952 text
 *                        (`[2001:DB8:0::1]` → `[2001:db8::1]`); zone ids (`%eth0`) are refused;
 *  - `hostname:port`     DNS name, validated and lowercased by the shared host normaliser
 *                        (`parseHostKey`), trailing dot stripped;
 *  - `/path`, `./path`   UNIX stream socket path, kept verbatim;
 *  - `@name`             Linux abstract UNIX socket, kept verbatim; its connect path is `\0name`.
 * port: decimal 1..65535.
 */
import { isIPv6, SocketAddress } from 'node:net';
import { parseHostKey } from '@switchyard/protocol';

/** Where to connect: TCP host (IPv4, IPv6 without brackets, or DNS name) and port, or a UNIX path. */
export type UpstreamTarget =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

export interface NodeAddress {
  /** Normalised address text: the node identity within its host key. */
  readonly address: string;
  readonly target: UpstreamTarget;
}

/** Largest accepted address in bytes (uWSGI's limit). */
export const MAX_ADDRESS_LENGTH = 255;

/** Why an address was refused (for the drop detail; not a metric label). */
export type AddressParseResult =
  | { readonly ok: true; readonly value: NodeAddress }
  | { readonly ok: false; readonly detail: string };

/** Parses and normalises a node address; see the module comment for the accepted forms. */
export function parseNodeAddress(raw: string): AddressParseResult {
  if (raw.length === 0) return fail('empty address');
  if (raw.length * 3 > MAX_ADDRESS_LENGTH) {
    const bytes = Buffer.byteLength(raw, 'utf8');
    if (bytes > MAX_ADDRESS_LENGTH) return fail(`address of ${bytes} bytes exceeds ${MAX_ADDRESS_LENGTH}`);
  }
  if (hasControl(raw)) return fail('address contains a control byte');

  const first = raw.charCodeAt(0);
  if (first === 0x2f /* / */ || raw.startsWith('./')) {
    if (raw === '/' || raw === './') return fail('unix socket path names no file');
    return ok(raw, { kind: 'unix', path: raw });
  }
  if (first === 0x40 /* @ */) {
    if (raw.length < 2) return fail('abstract unix socket without a name');
    return ok(raw, { kind: 'unix', path: `\0${raw.slice(1)}` });
  }
  if (first === 0x5b /* [ */) return parseBracketedIpv6(raw);

  const colon = raw.lastIndexOf(':');
  if (colon < 0) return fail('address has no port (and is not a unix socket path)');
  const hostText = raw.slice(0, colon);
  const port = parsePort(raw.slice(colon + 1));
  if (port === undefined) return fail('port is not a decimal number in 1..65535');
  if (hostText.length === 0) return ok(`0.0.0.0:${port}`, { kind: 'tcp', host: '0.0.0.0', port });
  if (hostText.includes(':')) return fail('IPv6 addresses must be written in brackets: [addr]:port');
  const ipv4 = dottedQuad(hostText);
  if (ipv4 !== NOT_IPV4_LIKE) {
    if (ipv4 === BAD_IPV4) return fail('not a dotted-quad IPv4 address');
    // The text is already normalised when the port was written in plain decimal: no copy.
    const address = raw.charCodeAt(colon + 1) !== 0x30 /* 0 */ ? raw : `${hostText}:${port}`;
    return ok(address, { kind: 'tcp', host: hostText, port });
  }
  const name = parseHostKey(hostText);
  if (name === undefined || name.port !== undefined || name.host.startsWith('[')) return fail('not a valid host name');
  return ok(`${name.host}:${port}`, { kind: 'tcp', host: name.host, port });
}

/**
 * The connect target of an address. Accepts any address `parseNodeAddress` accepts (normalised or not);
 * undefined otherwise. The router calls this with `RegisteredNode.address`.
 */
export function parseUpstreamTarget(address: string): UpstreamTarget | undefined {
  const parsed = parseNodeAddress(address);
  return parsed.ok ? parsed.value.target : undefined;
}

/** The address text for a target (inverse of `parseUpstreamTarget` for normalised addresses). */
export function formatUpstreamTarget(target: UpstreamTarget): string {
  if (target.kind === 'unix') return target.path.startsWith('\0') ? `@${target.path.slice(1)}` : target.path;
  return isIPv6(target.host) ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

function parseBracketedIpv6(raw: string): AddressParseResult {
  const close = raw.indexOf(']');
  if (close < 0) return fail('unterminated IPv6 literal');
  const literal = raw.slice(1, close);
  if (literal.includes('%')) return fail('IPv6 zone ids are not accepted');
  if (!isIPv6(literal)) return fail('not a valid IPv6 address');
  if (raw.charCodeAt(close + 1) !== 0x3a /* : */) return fail('IPv6 address without :port');
  const port = parsePort(raw.slice(close + 2));
  if (port === undefined) return fail('port is not a decimal number in 1..65535');
  const host = new SocketAddress({ address: literal, family: 'ipv6' }).address;
  return ok(`[${host}]:${port}`, { kind: 'tcp', host, port });
}

function parsePort(text: string): number | undefined {
  if (text.length === 0 || text.length > 5) return undefined;
  let port = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
    port = port * 10 + (c - 0x30);
  }
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** dottedQuad(): the text has characters other than digits and dots (so it is a host name or junk). */
const NOT_IPV4_LIKE = 0;
/** dottedQuad(): digits and dots, but not four parts of 0..255 in plain decimal. */
const BAD_IPV4 = 1;
const IPV4 = 2;

/**
 * Classifies digits-and-dots text: a strict dotted quad (four parts, each `0` or `[1-9][0-9]{0,2}` and at
 * most 255: no leading zeros, which `inet_addr` would read as octal), or not.
 */
function dottedQuad(text: string): number {
  let parts = 1;
  let digits = 0;
  let value = 0;
  let leadingZero = false;
  let bad = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e /* . */) {
      if (digits === 0) bad = true;
      parts++;
      digits = 0;
      value = 0;
      leadingZero = false;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits === 0 && c === 0x30) leadingZero = true;
      else if (leadingZero) bad = true;
      digits++;
      value = value * 10 + (c - 0x30);
      if (digits > 3 || value > 255) bad = true;
    } else {
      return NOT_IPV4_LIKE;
    }
  }
  return bad || digits === 0 || parts !== 4 ? BAD_IPV4 : IPV4;
}

function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function ok(address: string, target: UpstreamTarget): AddressParseResult {
  return { ok: true, value: Object.freeze({ address, target: Object.freeze(target) }) };
}

function fail(detail: string): AddressParseResult {
  return { ok: false, detail };
}
