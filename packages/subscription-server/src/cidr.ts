/**
 * CIDR blocks: `10.0.0.0/8`, `192.0.2.7` (= /32), `2001:db8::/32`, `::1` (= /128). Matching is done by
 * node:net's BlockList. An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, what a dual-stack socket reports
 * for an IPv4 peer) is matched as the IPv4 address it carries, so one rule covers both spellings.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

export interface Cidr {
  /** The block as written, normalised to `address/prefix`. */
  readonly text: string;
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

const CIDR = /^([^/]+?)(?:\/([0-9]{1,3}))?$/;

/** Parses one CIDR block (or a bare address); undefined when invalid. */
export function parseCidr(text: string): Cidr | undefined {
  const m = CIDR.exec(text.trim());
  if (m === null) return undefined;
  let address = m[1]!;
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1);
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  if (family === undefined || address.includes('%')) return undefined;
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (prefix > max) return undefined;
  return Object.freeze({ text: `${address}/${prefix}`, address, prefix, family });
}

/** The IPv4 address inside an IPv4-mapped IPv6 address, else the address unchanged. */
export function unmapIpv4(address: string): string {
  // Only text starting with ':' can be `::ffff:...` (checked per datagram: keep the common case cheap).
  if (address.charCodeAt(0) !== 0x3a /* : */) return address;
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:')) {
    const tail = address.slice(7);
    if (isIPv4(tail)) return tail;
  }
  return address;
}

/** A set of CIDR blocks answering "is this IP inside any of them?". Empty → matches nothing. */
export class CidrSet {
  readonly #list = new BlockList();
  readonly #blocks: readonly Cidr[];

  constructor(blocks: readonly Cidr[]) {
    this.#blocks = Object.freeze([...blocks]);
    for (const b of blocks) this.#list.addSubnet(b.address, b.prefix, b.family);
  }

  get blocks(): readonly Cidr[] {
    return this.#blocks;
  }

  get size(): number {
    return this.#blocks.length;
  }

  /** True when `ip` (IPv4 or IPv6 text) lies in one of the blocks; false for anything that is not an IP. */
  has(ip: string): boolean {
    const address = unmapIpv4(ip);
    if (isIPv4(address)) return this.#list.check(address, 'ipv4');
    if (isIPv6(address)) return this.#list.check(address, 'ipv6');
    return false;
  }
}
