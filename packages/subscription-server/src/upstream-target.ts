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
import { isIPv4, isIPv6, SocketAddress } from 'node:net';
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

// C0 controls and DEL: never part of a socket address, and dangerous in logs.
const CONTROL = /[\u0000-\u001f\u007f]/;
const DIGITS = /^[0-9]{1,5}$/;
const IPV4_LIKE = /^[0-9.]+$/;
const IPV4_PART = /^(?:0|[1-9][0-9]{0,2})$/;

/** Parses and normalises a node address; see the module comment for the accepted forms. */
export function parseNodeAddress(raw: string): AddressParseResult {
  const bytes = Buffer.byteLength(raw, 'utf8');
  if (bytes === 0) return fail('empty address');
  if (bytes > MAX_ADDRESS_LENGTH) return fail(`address of ${bytes} bytes exceeds ${MAX_ADDRESS_LENGTH}`);
  if (CONTROL.test(raw)) return fail('address contains a control byte');

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
  if (IPV4_LIKE.test(hostText)) {
    if (!isStrictIpv4(hostText)) return fail('not a dotted-quad IPv4 address');
    return ok(`${hostText}:${port}`, { kind: 'tcp', host: hostText, port });
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
  if (!DIGITS.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

function isStrictIpv4(text: string): boolean {
  if (!isIPv4(text)) return false;
  const parts = text.split('.');
  return parts.length === 4 && parts.every((part) => IPV4_PART.test(part) && Number(part) <= 255);
}

function ok(address: string, target: UpstreamTarget): AddressParseResult {
  return { ok: true, value: Object.freeze({ address, target: Object.freeze(target) }) };
}

function fail(detail: string): AddressParseResult {
  return { ok: false, detail };
}
