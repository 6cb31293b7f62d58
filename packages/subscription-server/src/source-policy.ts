/**
 * SourcePolicy: which UDP sources may talk to the subscription server, and how fast. The UDP source is
 * unauthenticated and spoofable, so these are cheap pre-filters that run BEFORE the packet is decoded or
 * any signature is verified (a verification flood costs CPU), never a substitute for signatures.
 *
 *  - Source allowlist (`--subscription-allow CIDR[=PATTERN,...]`, repeatable): when at least one entry is
 *    configured, a datagram from outside every CIDR is dropped (source-not-allowed) before decoding. An
 *    entry with patterns restricts which keys sources in that CIDR may announce; a source in several
 *    CIDRs may announce the union; an entry without patterns allows every key. The key check runs once
 *    the key is parsed (`checkKey`), with the same reason.
 *  - Rate limit (`--subscription-rate N[:BURST]`): a token bucket per source IPv4 address or IPv6 /64
 *    (one host usually owns a whole /64, so per-address buckets would be free to multiply), default
 *    1 000 packets/s, burst 2 × rate, over a bounded set of sources (see rate-limiter.ts) →
 *    rate-limited. It counts every datagram that reaches it, valid or not.
 */

import { isIPv6, SocketAddress } from 'node:net';
import { type CheckResult, PASS, refuse } from './check-result.js';
import { type Cidr, CidrSet, parseCidr, unmapIpv4 } from './cidr.js';
import { type HostPattern, matchesAny, parseHostPattern } from './host-pattern.js';
import { RateLimiter } from './rate-limiter.js';

/** One `--subscription-allow` entry. */
export interface SourceAllowEntry {
  readonly cidr: Cidr;
  /** Empty: every key. */
  readonly patterns: readonly HostPattern[];
}

export interface SourcePolicyOptions {
  /** Empty (default): every source allowed. */
  readonly allow?: readonly SourceAllowEntry[];
  /** Packets per second per source IP. Default 1 000. */
  readonly ratePerSecond?: number;
  /** Bucket size. Default 2 × ratePerSecond. */
  readonly burst?: number;
  /** Source IPs tracked by the rate limiter. Default 65 536. */
  readonly maxSources?: number;
  /** ms; default Date.now. */
  readonly clock?: () => number;
}

export const DEFAULT_SOURCE_RATE = 1_000;

/** Parses `CIDR[=PATTERN,...]`; undefined when the CIDR or a pattern is invalid. */
export function parseSourceAllowEntry(text: string): SourceAllowEntry | undefined {
  const eq = text.indexOf('=');
  const cidr = parseCidr(eq < 0 ? text : text.slice(0, eq));
  if (cidr === undefined) return undefined;
  if (eq < 0) return Object.freeze({ cidr, patterns: Object.freeze([]) });
  const patterns: HostPattern[] = [];
  for (const part of text.slice(eq + 1).split(',')) {
    const p = parseHostPattern(part);
    if (p === undefined) return undefined;
    patterns.push(p);
  }
  return Object.freeze({ cidr, patterns: Object.freeze(patterns) });
}

export class SourcePolicy {
  readonly #entries: readonly SourceAllowEntry[];
  readonly #any: CidrSet;
  readonly #perEntry: readonly CidrSet[];
  readonly #limiter: RateLimiter;

  constructor(options: SourcePolicyOptions = {}) {
    this.#entries = Object.freeze([...(options.allow ?? [])]);
    this.#any = new CidrSet(this.#entries.map((e) => e.cidr));
    this.#perEntry = this.#entries.map((e) => new CidrSet([e.cidr]));
    const rate = options.ratePerSecond ?? DEFAULT_SOURCE_RATE;
    this.#limiter = new RateLimiter({
      ratePerSecond: rate,
      burst: options.burst ?? Math.ceil(2 * rate),
      maxKeys: options.maxSources ?? 65_536,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
  }

  /** Source IPs the rate limiter currently tracks (bounded). */
  get trackedSources(): number {
    return this.#limiter.trackedKeys;
  }

  /** Before decoding: source CIDR, then the source's token bucket. */
  admit(sourceIp: string): CheckResult {
    const ip = unmapIpv4(sourceIp);
    if (this.#entries.length > 0 && !this.#any.has(ip)) {
      return refuse('source-not-allowed', `source ${ip} is outside --subscription-allow`);
    }
    if (!this.#limiter.take(rateKey(ip))) return refuse('rate-limited', `source ${ip} exceeds its packet rate`);
    return PASS;
  }

  /** After parsing: may this source announce `key` (a normalised subscription key)? */
  checkKey(sourceIp: string, key: string): CheckResult {
    if (this.#entries.length === 0) return PASS;
    const ip = unmapIpv4(sourceIp);
    for (let i = 0; i < this.#entries.length; i++) {
      const entry = this.#entries[i]!;
      if (!this.#perEntry[i]!.has(ip)) continue;
      if (entry.patterns.length === 0 || matchesAny(entry.patterns, key)) return PASS;
    }
    return refuse('source-not-allowed', `source ${ip} may not announce ${key}`);
  }
}

/** The rate-limit bucket of a source: the IPv4 address, or the /64 of an IPv6 address. */
export function rateKey(ip: string): string {
  if (!ip.includes(':') || !isIPv6(ip)) return ip;
  const full = new SocketAddress({ address: ip, family: 'ipv6' }).address;
  const groups = expandIpv6(full);
  return `${groups.slice(0, 4).join(':')}::/64`;
}

function expandIpv6(address: string): string[] {
  const [head = '', tail] = address.split('::');
  const left = head.length > 0 ? head.split(':') : [];
  const right = tail !== undefined && tail.length > 0 ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array.from({ length: 8 - left.length - right.length }, () => '0');
  return [...left, ...fill, ...right];
}
