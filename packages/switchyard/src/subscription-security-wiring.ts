/**
 * Builds the subscription channel's SubscriptionSecurity (source allowlist, rate limit, node address
 * allowlist, RSA / Ed25519 / HMAC signatures, notify acks) from the CLI's SubscriptionSecurityConfig.
 * The composition passes it to SubscriptionServer as verifier, admission and acknowledger, starts it
 * (loading key files) before binding, and closes it after the server.
 */
import {
  type OwnListener,
  parseCidr,
  parseSourceAllowEntry,
  SubscriptionSecurity,
} from '@switchyard/subscription-server';
import type { Logger } from 'pino';
import type { SubscriptionSecurityConfig } from './subscription-security-options.js';

export interface SecurityWiring {
  readonly clock: () => number;
  readonly logger: Logger;
  /** The router's listeners (HTTP, admin, subscription sockets), read at check time. */
  readonly ownListeners: () => readonly OwnListener[];
  /** Sizes the replay memory: a few entries per host. */
  readonly maxHosts: number;
}

export function createSubscriptionSecurity(config: SubscriptionSecurityConfig, wiring: SecurityWiring) {
  return new SubscriptionSecurity({
    ...(config.signCheck === undefined
      ? {}
      : { rsa: { ...config.signCheck, toleranceSec: config.signCheckTolerance } }),
    keys: config.keys,
    windowSec: config.keyWindow,
    sourceAllow: config.allow.map((entry) => parseSourceAllowEntry(entry)!),
    sourceRate: config.rate,
    sourceBurst: config.burst,
    nodeAllow: config.nodeAllow.map((cidr) => parseCidr(cidr)!),
    nodeAllowUnixPrefixes: config.nodeAllowUnix,
    ownListeners: wiring.ownListeners,
    replayEntries: Math.min(4_000_000, Math.max(10_000, 2 * wiring.maxHosts)),
    clock: wiring.clock,
    logger: wiring.logger,
  });
}
