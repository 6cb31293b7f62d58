/**
 * RsaSignCheck: uWSGI 2.0's secured subscriptions (`--subscriptions-sign-check ALGO:DIR`), verified exactly
 * as uWSGI nodes sign (`--subscribe-to SERVER:KEY,MODIFIER1,ALGO:PRIVKEY`, `--subscribe2 ...,sign=ALGO:PRIVKEY`):
 * a PKCS#1 v1.5 signature (`EVP_Sign` with digest ALGO) over the body bytes before the trailing `sign`
 * pair (`SubscriptionPacket.signedBody`), with the public key from the key directory (see
 * public-key-directory.ts; looked up by the NORMALISED key, so every spelling of a host maps to one file).
 *
 * With the check on, every packet must carry it. Drop reasons, in check order:
 *   no `sign` pair → unsigned; no `unix` → bad-field;
 *   |now − unix| > toleranceSec → stale-timestamp;
 *   unix ≤ the highest unix already accepted for (key, address) → replayed;
 *   no key file → unknown-signer (an unreadable or non-key file too, with a distinct detail);
 *   signature does not verify → bad-signature.
 *
 * Replay defence, stronger than uWSGI's (which accepts a 24-hour-old packet for a new node and never
 * raises its high-water mark): `unix` must be within ±toleranceSec (default 30 s) of the router clock AND
 * strictly greater than every `unix` accepted before for that (key, address), for subscribes and
 * unsubscribes alike. The high-water marks outlive node removal: they sit in a BoundedLru of
 * `replayEntries` (key, address) pairs, and evicting one is harmless for packets older than the
 * tolerance window. Real nodes fit: uWSGI sends `unix = now + cmd` and spaces its first two packets ~1 s
 * apart, then one every `--subscribe-freq`. (A node restarted within the same second as its unsubscribe
 * loses its first announcement, not the next.) The mark is raised only after the signature verified.
 */
import { verify as cryptoVerify, getHashes } from 'node:crypto';
import type { SubscriptionPacket } from '@switchyard/protocol';
import type { Announcement } from './announcement.js';
import { BoundedLru } from './bounded-lru.js';
import { type CheckResult, PASS, refuse } from './check-result.js';
import { PublicKeyDirectory } from './public-key-directory.js';

export interface RsaSignCheckOptions {
  /** OpenSSL digest name as uWSGI takes it (`SHA1`, `SHA256`...); case-insensitive. */
  readonly algorithm: string;
  /** Directory holding `<key>.pem` public keys. */
  readonly dir: string;
  /** Largest accepted |now − unix|, seconds. Default 30. */
  readonly toleranceSec?: number;
  /** (key, address) high-water marks remembered. Default 100 000. */
  readonly replayEntries?: number;
  /** ms between stat() checks of a cached key file. Default 1 000. */
  readonly keyRecheckMs?: number;
  /** ms; default Date.now. */
  readonly clock?: () => number;
}

/** True when node:crypto knows `name` as a digest (case-insensitive). */
export function isSupportedDigest(name: string): boolean {
  const lower = name.toLowerCase();
  return getHashes().some((h) => h.toLowerCase() === lower);
}

export class RsaSignCheck {
  readonly #algorithm: string;
  readonly #toleranceSec: number;
  readonly #clock: () => number;
  readonly #keys: PublicKeyDirectory;
  readonly #highest: BoundedLru<string, number>;

  /** Throws RangeError for an unknown digest name. Does no I/O. */
  constructor(options: RsaSignCheckOptions) {
    if (!isSupportedDigest(options.algorithm)) {
      throw new RangeError(`digest ${options.algorithm} is not supported by this OpenSSL`);
    }
    this.#algorithm = options.algorithm.toLowerCase();
    this.#toleranceSec = options.toleranceSec ?? 30;
    this.#clock = options.clock ?? Date.now;
    this.#keys = new PublicKeyDirectory({
      dir: options.dir,
      clock: this.#clock,
      ...(options.keyRecheckMs === undefined ? {} : { recheckMs: options.keyRecheckMs }),
    });
    this.#highest = new BoundedLru(options.replayEntries ?? 100_000);
  }

  get algorithm(): string {
    return this.#algorithm;
  }

  /** (key, address) pairs whose high-water mark is remembered. */
  get replayEntries(): number {
    return this.#highest.size;
  }

  check(packet: SubscriptionPacket, announcement: Announcement): CheckResult {
    const signature = packet.signature;
    const signedBody = packet.signedBody;
    if (signature === undefined || signedBody === undefined) return refuse('unsigned', 'no "sign" pair');
    const unix = announcement.unix;
    if (unix === undefined) return refuse('bad-field', 'signed packet without "unix"');
    const now = Math.floor(this.#clock() / 1000);
    if (Math.abs(now - unix) > this.#toleranceSec) {
      return refuse('stale-timestamp', `unix ${unix} is ${unix - now} s from the router clock`);
    }
    const id = `${announcement.key}\n${announcement.address}`;
    const highest = this.#highest.peek(id);
    if (highest !== undefined && unix <= highest) {
      return refuse('replayed', `unix ${unix} is not above ${highest} already seen for this node`);
    }
    const found = this.#keys.lookup(announcement.key);
    if (found.kind === 'missing') return refuse('unknown-signer', `no public key ${found.file}`);
    if (found.kind === 'invalid') return refuse('unknown-signer', `unusable public key ${found.file}: ${found.detail}`);
    let valid: boolean;
    try {
      valid = cryptoVerify(this.#algorithm, signedBody, found.key, signature);
    } catch {
      valid = false; // wrong key type for the digest, malformed signature length...
    }
    if (!valid) return refuse('bad-signature', `signature does not verify with ${found.file}`);
    this.#highest.set(id, unix);
    return PASS;
  }
}
