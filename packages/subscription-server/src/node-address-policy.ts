/**
 * NodeAddressPolicy: where a subscription may point the router (SSRF defence). A subscription names the
 * address the router will connect to; without a check, anyone able to send a datagram could make the
 * proxy relay traffic to `127.0.0.1:<admin>`, `169.254.169.254:80` or any internal service.
 *
 * Rules, in order (the first that applies decides):
 *  1. ALWAYS refused: an address that is one of the router's own listeners (HTTP, admin, subscription
 *     ports), whatever the allowlist says: a TCP address on a listener's port whose host is that
 *     listener's IP, or, for a listener on a wildcard address (0.0.0.0 / ::), any loopback, unspecified
 *     or local-interface address, or `localhost`. This prevents request loops and admin API exposure.
 *  2. No allowlist configured (default, uWSGI's trusted-network model): everything else is allowed.
 *  3. With an allowlist: an IP literal must fall inside one of its CIDR blocks; a UNIX socket path must
 *     start with one of its path prefixes (entries beginning with `/`); DNS-name addresses and abstract
 *     sockets are refused (a name can resolve anywhere at connect time).
 */
import { networkInterfaces } from 'node:os';
import { type Cidr, CidrSet, unmapIpv4 } from './cidr.js';
import type { UpstreamTarget } from './upstream-target.js';

/** A listener the router owns: `address` is its bound IP (`0.0.0.0` / `::` for all interfaces). */
export interface OwnListener {
  readonly address: string;
  readonly port: number;
}

export interface NodeAddressPolicyOptions {
  /** Allowed node networks. Empty (default) with no `unixPrefixes`: allow all except own listeners. */
  readonly allow?: readonly Cidr[];
  /** Allowed UNIX socket path prefixes (used only when an allowlist is configured). */
  readonly unixPrefixes?: readonly string[];
  /**
   * The router's own listeners, read at check time (they are known only once bound). Returning the same
   * array while nothing changed lets the policy reuse what it derived from it.
   */
  readonly ownListeners?: () => readonly OwnListener[];
}

export type AddressVerdict = { readonly ok: true } | { readonly ok: false; readonly detail: string };

const OK: AddressVerdict = Object.freeze({ ok: true });

export class NodeAddressPolicy {
  readonly #allow: CidrSet;
  readonly #unixPrefixes: readonly string[];
  readonly #restricted: boolean;
  readonly #ownListeners: () => readonly OwnListener[];
  #localAddresses: ReadonlySet<string> | undefined;
  /** The ports of the last listener list seen (checked per datagram: most addresses match none). */
  #portsOf: readonly OwnListener[] | undefined;
  #ports: ReadonlySet<number> = new Set();

  constructor(options: NodeAddressPolicyOptions = {}) {
    this.#allow = new CidrSet(options.allow ?? []);
    this.#unixPrefixes = Object.freeze([...(options.unixPrefixes ?? [])]);
    this.#restricted = this.#allow.size > 0 || this.#unixPrefixes.length > 0;
    this.#ownListeners = options.ownListeners ?? (() => []);
  }

  /** True when an allowlist is configured. */
  get restricted(): boolean {
    return this.#restricted;
  }

  check(target: UpstreamTarget): AddressVerdict {
    if (target.kind === 'tcp' && this.#isOwnListener(target.host, target.port)) {
      return { ok: false, detail: `${target.host}:${target.port} is one of the router's own listeners` };
    }
    if (!this.#restricted) return OK;
    if (target.kind === 'unix') {
      if (!target.path.startsWith('\0') && this.#unixPrefixes.some((p) => target.path.startsWith(p))) return OK;
      return { ok: false, detail: 'unix socket outside the node allowlist' };
    }
    if (this.#allow.has(target.host)) return OK;
    return { ok: false, detail: `${target.host} is outside the node allowlist` };
  }

  #isOwnListener(host: string, port: number): boolean {
    const listeners = this.#ownListeners();
    if (listeners.length === 0) return false;
    if (listeners !== this.#portsOf) {
      this.#ports = new Set(listeners.map((l) => l.port));
      this.#portsOf = listeners;
    }
    if (!this.#ports.has(port)) return false;
    const ip = unmapIpv4(host.toLowerCase());
    for (const l of listeners) {
      if (l.port !== port) continue;
      const bound = unmapIpv4(l.address.toLowerCase());
      if (bound === ip) return true;
      const wildcard = bound === '0.0.0.0' || bound === '::';
      if (isLocal(ip, wildcard ? this.#locals() : undefined)) {
        if (wildcard) return true;
        // A listener on one loopback address is still reached through 0.0.0.0 / localhost.
        if (isLoopback(bound) && (ip === '0.0.0.0' || ip === '::' || ip === 'localhost')) return true;
      }
    }
    return false;
  }

  /** The machine's interface addresses, read once. */
  #locals(): ReadonlySet<string> {
    if (this.#localAddresses === undefined) {
      const set = new Set<string>();
      for (const list of Object.values(networkInterfaces())) {
        for (const info of list ?? []) set.add(info.address.toLowerCase());
      }
      this.#localAddresses = set;
    }
    return this.#localAddresses;
  }
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1';
}

function isLocal(ip: string, interfaces: ReadonlySet<string> | undefined): boolean {
  if (isLoopback(ip) || ip === '0.0.0.0' || ip === '::' || ip === 'localhost' || ip.endsWith('.localhost')) {
    return true;
  }
  return interfaces?.has(ip) ?? false;
}
