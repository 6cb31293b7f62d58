/**
 * Forwarded headers (http-hardening notes §1.3). Default: trust nobody. Client copies of
 * `X-Forwarded-*`, `Forwarded` and `X-Real-IP` never pass (header-policy.ts drops them); the router
 * writes its own:
 *  - `X-Forwarded-For: <socket peer>`, `X-Forwarded-Proto: http|https`, `X-Forwarded-Host: <Host>`;
 *  - with `forwardedHeader`, also RFC 7239 `Forwarded: for=<peer>;host=<Host>;proto=<proto>`.
 * When the socket peer is inside `trustedProxies` (CIDR blocks, `--trusted-proxies`), the peer is a
 * proxy we run: its `X-Forwarded-For` chain is kept and the peer appended (`client, proxy1, <peer>`),
 * its `X-Forwarded-Proto` / `-Host` are kept (else ours are set), and its `Forwarded` elements are kept
 * before ours. Copied values are checked again (visible ASCII, SP, HTAB; 8 KiB at most): a value that
 * fails is dropped, never forwarded, so nothing copied can split the head we write.
 * uwsgi nodes get REMOTE_ADDR from uwsgi-vars.ts; with a trusted peer the kept chain goes to them as
 * HTTP_X_FORWARDED_FOR / _PROTO / _HOST (and HTTP_FORWARDED), like an HTTP node's headers.
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { RouterError } from './errors.js';

export interface ForwardingOptions {
  /** CIDR blocks (`10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`, `::1`) whose forwarded headers are kept. */
  readonly trustedProxies?: readonly string[];
  /** Also send an RFC 7239 `Forwarded` header. Default false. */
  readonly forwardedHeader?: boolean;
}

/** One forwarded field to write: name as sent upstream and its value. */
export type ForwardedField = readonly [name: string, value: string];

const MAX_COPIED_VALUE = 8192;
/** Field-value bytes that can be copied verbatim into a head we write (no CR, LF, NUL, other CTLs). */
const SAFE_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Parses one CIDR block or bare address; throws SY_BAD_CONFIG. */
export function parseCidrBlock(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const m = /^\[?([^\]/]+)\]?(?:\/(\d{1,3}))?$/.exec(text.trim());
  const address = m?.[1];
  const family = address === undefined ? undefined : isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  if (m === null || address === undefined || family === undefined) {
    throw new RouterError('SY_BAD_CONFIG', `"${text}" is not an IP address or CIDR block`);
  }
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (prefix > max) throw new RouterError('SY_BAD_CONFIG', `"${text}": prefix longer than ${max} bits`);
  return { address, prefix, family };
}

export class ForwardingPolicy {
  private readonly trusted: BlockList | undefined;
  readonly forwardedHeader: boolean;

  constructor(options: ForwardingOptions = {}) {
    const blocks = options.trustedProxies ?? [];
    if (blocks.length > 0) {
      this.trusted = new BlockList();
      for (const text of blocks) {
        const { address, prefix, family } = parseCidrBlock(text);
        this.trusted.addSubnet(address, prefix, family);
      }
    }
    this.forwardedHeader = options.forwardedHeader ?? false;
  }

  /** True when `address` (as the socket reports it, IPv4-mapped or not) is a trusted proxy. */
  isTrusted(address: string): boolean {
    if (this.trusted === undefined || address.length === 0) return false;
    const plain = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
    return this.trusted.check(plain, isIPv4(plain) ? 'ipv4' : 'ipv6');
  }

  /**
   * The forwarded fields for one request. `peer` is the socket peer (IPv4-mapped prefix removed);
   * `host` the Host as received (already validated), undefined when the request had none.
   */
  fields(req: IncomingMessage, peer: string, host: string | undefined): ForwardedField[] {
    const proto = (req.socket as Partial<TLSSocket>).encrypted === true ? 'https' : 'http';
    const trusted = this.isTrusted(peer);
    let chain: string | undefined;
    let clientProto: string | undefined;
    let clientHost: string | undefined;
    let forwarded: string | undefined;
    if (trusted) {
      const raw = req.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!.toLowerCase();
        const value = raw[i + 1]!.trim();
        if (!SAFE_VALUE.test(value) || value.length > MAX_COPIED_VALUE) continue;
        if (name === 'x-forwarded-for') {
          if (value.length > 0) chain = chain === undefined ? value : `${chain}, ${value}`;
        } else if (name === 'x-forwarded-proto') {
          if (value.length > 0) clientProto ??= value;
        } else if (name === 'x-forwarded-host') {
          if (value.length > 0) clientHost ??= value;
        } else if (name === 'forwarded' && value.length > 0) {
          forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
        }
      }
    }
    const out: ForwardedField[] = [['X-Forwarded-For', chain === undefined ? peer : `${chain}, ${peer}`]];
    out.push(['X-Forwarded-Proto', clientProto ?? proto]);
    const forwardedHost = clientHost ?? host;
    if (forwardedHost !== undefined) out.push(['X-Forwarded-Host', forwardedHost]);
    if (this.forwardedHeader) {
      let element = `for=${forwardedNode(peer)}`;
      if (host !== undefined) element += `;host=${quoteIfNeeded(host)}`;
      element += `;proto=${proto}`;
      out.push(['Forwarded', forwarded === undefined ? element : `${forwarded}, ${element}`]);
    }
    return out;
  }

  /** The fields as `Name: value\r\n` lines for an HTTP node's request head. */
  headerLines(req: IncomingMessage, peer: string, host: string | undefined): string {
    let lines = '';
    for (const [name, value] of this.fields(req, peer, host)) lines += `${name}: ${value}\r\n`;
    return lines;
  }

  /**
   * Extra uwsgi vars for a uwsgi node: none unless the peer is trusted or `Forwarded` is enabled (a
   * uwsgi node reads the client from REMOTE_ADDR); `base` (the `--http-var` extras) comes first.
   */
  uwsgiVars(
    base: readonly (readonly [string, string])[],
    req: IncomingMessage,
    peer: string,
    host: string | undefined,
  ): readonly (readonly [string, string])[] {
    if (!this.forwardedHeader && !this.isTrusted(peer)) return base;
    const vars: (readonly [string, string])[] = [...base];
    for (const [name, value] of this.fields(req, peer, host)) {
      vars.push([`HTTP_${name.toUpperCase().replaceAll('-', '_')}`, value]);
    }
    return vars;
  }
}

/** RFC 7239 node: IPv6 in quotes and brackets, IPv4 bare, anything else quoted. */
function forwardedNode(address: string): string {
  if (isIPv4(address)) return address;
  if (isIPv6(address)) return `"[${address}]"`;
  return quoteIfNeeded(address);
}

/** A token stays bare; anything else becomes a quoted-string. */
function quoteIfNeeded(value: string): string {
  if (/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value)) return value;
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}
