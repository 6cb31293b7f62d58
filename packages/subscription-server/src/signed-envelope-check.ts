/**
 * SignedEnvelopeCheck: Switchyard's modern subscription signatures (Ed25519 or HMAC-SHA256), next to
 * uWSGI's RSA scheme. A signed packet carries, after its normal pairs:
 *   ts     unix seconds (ASCII decimal),
 *   nonce  ≥ 16 hex characters (at most 128), fresh per datagram,
 *   kid    the key id (see subscription-keyring.ts),
 *   sig    LAST pair: Ed25519 signature (64 bytes) or HMAC-SHA256 (32 bytes) over the WHOLE datagram
 *          before the sig pair, 4-byte header included (`SubscriptionPacket.sigCovered`), so the
 *          subscribe/unsubscribe byte and the final datasize are covered.
 *
 * Checks, cheapest first; the first failure decides:
 *   values  ts / nonce / kid missing or malformed                      → bad-field
 *   window  |now − ts| > windowSec (default 30)                        → stale-timestamp
 *   kid     unknown                                                    → unknown-signer
 *           not allowed for this key's host pattern                     → signer-not-allowed
 *   order   ts < highest ts accepted for (kid, key, address)            → replayed
 *   nonce   already accepted for this kid within the window             → replayed
 *           the kid's nonce cache is full                               → nonce-cache-full
 *   sig     signature wrong (HMAC compared in constant time)            → bad-signature
 * Only a packet that passed every check updates the nonce cache and the (kid, key, address) high-water
 * mark, so forged packets cannot poison either. The high-water mark (non-strict: two packets of one
 * second differ by nonce) outlives node removal, so a withheld older subscribe cannot resurrect a node
 * after its unsubscribe.
 */
import { createHmac, verify as cryptoVerify, timingSafeEqual } from 'node:crypto';
import type { SubscriptionPacket } from '@switchyard/protocol';
import type { Announcement } from './announcement.js';
import { BoundedLru } from './bounded-lru.js';
import { type CheckResult, PASS, refuse } from './check-result.js';
import { matchesAny } from './host-pattern.js';
import { NonceCache } from './nonce-cache.js';
import { KID_PATTERN, type SigningKey, type SubscriptionKeyring } from './subscription-keyring.js';

export interface SignedEnvelopeCheckOptions {
  readonly keyring: SubscriptionKeyring;
  /** Largest accepted |now − ts|, seconds. Default 30. */
  readonly windowSec?: number;
  /** Most unexpired nonces per kid. Default 200 000. */
  readonly maxNoncesPerKid?: number;
  /** (kid, key, address) high-water marks remembered. Default 100 000. */
  readonly orderEntries?: number;
  /** ms; default Date.now. */
  readonly clock?: () => number;
}

const TS = /^[0-9]{1,12}$/;
const NONCE = /^[0-9a-fA-F]{16,128}$/;

export class SignedEnvelopeCheck {
  readonly #keyring: SubscriptionKeyring;
  readonly #windowSec: number;
  readonly #clock: () => number;
  readonly #nonces: NonceCache;
  readonly #highest: BoundedLru<string, number>;

  constructor(options: SignedEnvelopeCheckOptions) {
    this.#keyring = options.keyring;
    this.#windowSec = options.windowSec ?? 30;
    this.#clock = options.clock ?? Date.now;
    this.#nonces = new NonceCache({
      retainMs: 2 * this.#windowSec * 1000,
      ...(options.maxNoncesPerKid === undefined ? {} : { maxPerKid: options.maxNoncesPerKid }),
    });
    this.#highest = new BoundedLru(options.orderEntries ?? 100_000);
  }

  get keyring(): SubscriptionKeyring {
    return this.#keyring;
  }

  /** Nonces currently remembered (all kids). */
  get nonceCount(): number {
    return this.#nonces.size;
  }

  check(packet: SubscriptionPacket, announcement: Announcement): CheckResult {
    const sig = packet.sig;
    const covered = packet.sigCovered;
    if (sig === undefined || covered === undefined) return refuse('unsigned', 'no "sig" pair');
    const extra = announcement.extra;
    const tsText = extra.ts;
    const nonce = extra.nonce;
    const kid = extra.kid;
    if (tsText === undefined || !TS.test(tsText)) return refuse('bad-field', '"ts" missing or not unix seconds');
    if (nonce === undefined || !NONCE.test(nonce)) return refuse('bad-field', '"nonce" missing or not 16..128 hex');
    if (kid === undefined || !KID_PATTERN.test(kid)) return refuse('bad-field', '"kid" missing or malformed');

    const nowMs = this.#clock();
    const ts = Number(tsText);
    const skew = ts - Math.floor(nowMs / 1000);
    if (Math.abs(skew) > this.#windowSec)
      return refuse('stale-timestamp', `ts ${ts} is ${skew} s from the router clock`);

    const entry = this.#keyring.get(kid);
    if (entry === undefined) return refuse('unknown-signer', `unknown kid "${kid}"`);
    if (!matchesAny(entry.patterns, announcement.key)) {
      return refuse('signer-not-allowed', `kid "${kid}" may not sign for ${announcement.key}`);
    }

    const orderId = `${kid}\n${announcement.key}\n${announcement.address}`;
    const highest = this.#highest.peek(orderId);
    if (highest !== undefined && ts < highest) {
      return refuse('replayed', `ts ${ts} is older than ${highest} already accepted for this node`);
    }
    const nonceKey = nonce.toLowerCase();
    const state = this.#nonces.state(kid, nonceKey, nowMs);
    if (state === 'seen') return refuse('replayed', `nonce already used by kid "${kid}"`);
    if (state === 'full') return refuse('nonce-cache-full', `kid "${kid}" has too many nonces in the window`);

    if (!verifySignature(entry.signing, covered, sig)) {
      return refuse('bad-signature', `signature does not verify with kid "${kid}"`);
    }
    this.#nonces.remember(kid, nonceKey, nowMs);
    if (highest === undefined || ts > highest) this.#highest.set(orderId, ts);
    return PASS;
  }
}

/** Verifies `sig` over `data` with one keyring key; never throws. */
export function verifySignature(signing: SigningKey, data: Buffer, sig: Buffer): boolean {
  try {
    if (signing.algorithm === 'ed25519') {
      return sig.length === 64 && cryptoVerify(null, data, signing.key, sig);
    }
    const expected = createHmac('sha256', signing.key).update(data).digest();
    return sig.length === expected.length && timingSafeEqual(sig, expected);
  } catch {
    return false;
  }
}
