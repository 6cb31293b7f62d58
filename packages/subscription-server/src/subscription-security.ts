/**
 * SubscriptionSecurity: the subscription channel's defences, composed from plain options into the three
 * hooks SubscriptionServer takes (`admission`, `verifier`, `acknowledger`; this object is all three):
 *
 *   admission (before decoding)   source CIDR allowlist → per-source token bucket      (source-policy.ts)
 *   verifier  (after parsing)     source may announce this key → node address allowed (node-address-
 *                                 policy.ts) → signature: `sig` pair → Ed25519/HMAC envelope
 *                                 (signed-envelope-check.ts), `sign` pair → uWSGI RSA (rsa-sign-check.ts)
 *   acknowledger                  notify acks/nacks (notify-sender.ts)
 *
 * Signing is on when `rsa` or `keys` is configured; then EVERY packet must carry a signature that one
 * configured scheme accepts: no signature → unsigned; a `sign` pair without `rsa` or a `sig` pair without
 * `keys` → unknown-signer. Refusals before the signature check may be nacked only while signing is off
 * (an unauthenticated packet must not make the router send anything); once a packet's signature
 * verified, registry refusals (limits) are nacked as usual.
 *
 * Lifecycle: the constructor does no I/O; `start()` reads the `keys` files (throws BadKeyError,
 * SY_BAD_KEY, naming a bad file) and must resolve before the server is started; `close()` closes the
 * ack sockets and is safe twice. RSA public keys are read lazily per key (rsa-sign-check.ts).
 */
import type { SubscriptionPacket } from '@switchyard/protocol';
import type { Logger } from 'pino';
import type { Announcement } from './announcement.js';
import type { CheckResult } from './check-result.js';
import type { Cidr } from './cidr.js';
import { NodeAddressCache } from './node-address-cache.js';
import { NodeAddressPolicy, type OwnListener } from './node-address-policy.js';
import { type AckOutcome, NotifySender, type NotifyStats, type SubscriptionAcknowledger } from './notify-sender.js';
import { RsaSignCheck } from './rsa-sign-check.js';
import { SignedEnvelopeCheck } from './signed-envelope-check.js';
import { type SourceAllowEntry, SourcePolicy } from './source-policy.js';
import { loadSubscriptionKeyring, type SubscriptionKeyring, type SubscriptionKeySpec } from './subscription-keyring.js';
import type { DatagramSource, SubscriptionAdmission, SubscriptionVerifier } from './subscription-server.js';

export interface SubscriptionSecurityOptions {
  /** uWSGI `--subscriptions-sign-check ALGO:DIR`. */
  readonly rsa?: { readonly algorithm: string; readonly dir: string; readonly toleranceSec?: number };
  /** Ed25519 / HMAC keys, read by start() (`--subscription-key`). */
  readonly keys?: readonly SubscriptionKeySpec[];
  /** An already loaded keyring (instead of, or besides, `keys`). */
  readonly keyring?: SubscriptionKeyring;
  /** |now − ts| window for the envelope scheme, seconds. Default 30. */
  readonly windowSec?: number;
  /** Source allowlist; empty: every source. */
  readonly sourceAllow?: readonly SourceAllowEntry[];
  /** Per-source packets/s (default 1 000) and burst (default 2 × rate). */
  readonly sourceRate?: number;
  readonly sourceBurst?: number;
  /** Node address allowlist (CIDRs) and UNIX path prefixes; empty: all but the router's own listeners. */
  readonly nodeAllow?: readonly Cidr[];
  readonly nodeAllowUnixPrefixes?: readonly string[];
  /** The router's own listeners (never accepted as node addresses or ack targets). */
  readonly ownListeners?: () => readonly OwnListener[];
  /** High-water marks kept for replay defence, per scheme. Default 100 000. */
  readonly replayEntries?: number;
  /** Send notify acks. Default true. */
  readonly acks?: boolean;
  readonly logger?: Logger;
  /** ms; default Date.now. */
  readonly clock?: () => number;
}

type Verdict = ReturnType<SubscriptionVerifier['verify']>;

export interface SubscriptionSecurityStats {
  readonly signing: boolean;
  /** Source IPs tracked by the rate limiter (bounded). */
  readonly trackedSources: number;
  /** (key, address) high-water marks held by the RSA check. */
  readonly rsaReplayEntries: number;
  /** Nonces held by the Ed25519/HMAC check. */
  readonly nonces: number;
  readonly notify: NotifyStats | undefined;
}

export class SubscriptionSecurity implements SubscriptionVerifier, SubscriptionAdmission, SubscriptionAcknowledger {
  readonly sources: SourcePolicy;
  readonly addresses: NodeAddressPolicy;
  readonly rsa: RsaSignCheck | undefined;
  readonly notifier: NotifySender | undefined;
  readonly #keySpecs: readonly SubscriptionKeySpec[];
  readonly #windowSec: number | undefined;
  readonly #replayEntries: number;
  readonly #clock: () => number;
  /** Parsed targets of recent node addresses (every datagram is checked; most repeat an address). */
  readonly #targets = new NodeAddressCache();
  #envelope: SignedEnvelopeCheck | undefined;

  /** Does no I/O (keys are read lazily by the RSA check; the keyring is loaded by the caller). */
  constructor(options: SubscriptionSecurityOptions = {}) {
    const clock = options.clock ?? Date.now;
    this.sources = new SourcePolicy({
      allow: options.sourceAllow ?? [],
      clock,
      ...(options.sourceRate === undefined ? {} : { ratePerSecond: options.sourceRate }),
      ...(options.sourceBurst === undefined ? {} : { burst: options.sourceBurst }),
    });
    this.addresses = new NodeAddressPolicy({
      allow: options.nodeAllow ?? [],
      unixPrefixes: options.nodeAllowUnixPrefixes ?? [],
      ...(options.ownListeners === undefined ? {} : { ownListeners: options.ownListeners }),
    });
    const replayEntries = options.replayEntries ?? 100_000;
    this.#replayEntries = replayEntries;
    this.#clock = clock;
    this.#keySpecs = Object.freeze([...(options.keys ?? [])]);
    this.#windowSec = options.windowSec;
    this.rsa =
      options.rsa === undefined
        ? undefined
        : new RsaSignCheck({
            algorithm: options.rsa.algorithm,
            dir: options.rsa.dir,
            clock,
            replayEntries,
            ...(options.rsa.toleranceSec === undefined ? {} : { toleranceSec: options.rsa.toleranceSec }),
          });
    this.#envelope =
      options.keyring === undefined || options.keyring.size === 0 ? undefined : this.#envelopeFor(options.keyring);
    this.notifier =
      options.acks === false
        ? undefined
        : new NotifySender({
            policy: this.addresses,
            clock,
            ...(options.logger === undefined ? {} : { logger: options.logger }),
          });
  }

  /** True when every packet must be signed (also before start() loaded the configured keys). */
  get signing(): boolean {
    return this.rsa !== undefined || this.#envelope !== undefined || this.#keySpecs.length > 0;
  }

  /** The Ed25519/HMAC check, once keys are loaded. */
  get envelope(): SignedEnvelopeCheck | undefined {
    return this.#envelope;
  }

  /** Loads the `keys` files. Throws BadKeyError (SY_BAD_KEY). Idempotent. */
  async start(): Promise<void> {
    if (this.#keySpecs.length === 0 || this.#envelope !== undefined) return;
    this.#envelope = this.#envelopeFor(loadSubscriptionKeyring(this.#keySpecs));
  }

  stats(): SubscriptionSecurityStats {
    return Object.freeze({
      signing: this.signing,
      trackedSources: this.sources.trackedSources,
      rsaReplayEntries: this.rsa?.replayEntries ?? 0,
      nonces: this.#envelope?.nonceCount ?? 0,
      notify: this.notifier?.stats(),
    });
  }

  acknowledge(announcement: Announcement, outcome: AckOutcome): void {
    this.notifier?.acknowledge(announcement, outcome);
  }

  admit(source: DatagramSource): CheckResult {
    return this.sources.admit(source.address);
  }

  verify(packet: SubscriptionPacket, announcement: Announcement, source: DatagramSource): Verdict {
    const signing = this.signing;
    const byKey = this.sources.checkKey(source.address, announcement.key);
    if (!byKey.ok) return { ok: false, reason: byKey.reason, detail: byKey.detail, acknowledge: !signing };
    const target = this.#targets.target(announcement.address);
    if (target !== undefined) {
      const allowed = this.addresses.check(target);
      if (!allowed.ok) {
        return { ok: false, reason: 'address-not-allowed', detail: allowed.detail, acknowledge: !signing };
      }
    }
    if (!signing) return { ok: true };
    const result = this.#checkSignature(packet, announcement);
    return result.ok ? result : { ok: false, reason: result.reason, detail: result.detail };
  }

  /** Closes the ack sockets. Safe twice. */
  async close(): Promise<void> {
    await this.notifier?.close();
  }

  #envelopeFor(keyring: SubscriptionKeyring): SignedEnvelopeCheck {
    return new SignedEnvelopeCheck({
      keyring,
      clock: this.#clock,
      orderEntries: this.#replayEntries,
      ...(this.#windowSec === undefined ? {} : { windowSec: this.#windowSec }),
    });
  }

  #checkSignature(packet: SubscriptionPacket, announcement: Announcement): CheckResult {
    if (packet.sig !== undefined) {
      if (this.#envelope === undefined) {
        return { ok: false, reason: 'unknown-signer', detail: '"sig" pair but no --subscription-key loaded' };
      }
      return this.#envelope.check(packet, announcement);
    }
    if (packet.signature !== undefined) {
      if (this.rsa === undefined) {
        return { ok: false, reason: 'unknown-signer', detail: '"sign" pair but --subscriptions-sign-check is off' };
      }
      return this.rsa.check(packet, announcement);
    }
    return { ok: false, reason: 'unsigned', detail: 'signing is required and the packet carries no signature' };
  }
}
