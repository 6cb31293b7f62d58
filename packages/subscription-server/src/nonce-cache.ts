/**
 * NonceCache: the nonces accepted per key id within the replay window, so that a captured signed datagram
 * cannot be replayed while its timestamp is still inside the window (outside it, the timestamp check
 * refuses it anyway).
 *
 * A nonce is remembered for `retainMs` after it was accepted; the caller passes 2 × window: a packet's
 * `ts` is at most `window` ahead of the clock and is accepted until `ts + window`. Entries of one kid sit
 * in a Map in acceptance order, which (for a clock that does not step back) is expiry order, so purging is
 * O(expired). Memory is bounded by `maxPerKid` per kid; a kid whose cache is full of unexpired nonces
 * gets its packets refused (nonce-cache-full) rather than forgetting a nonce early, which would reopen the
 * replay window. Kids are bounded by the keyring.
 */
export interface NonceCacheOptions {
  /** ms a nonce is remembered after acceptance. */
  readonly retainMs: number;
  /** Most unexpired nonces per kid. Default 200 000 (~3 300 packets/s sustained per kid at a 30 s window). */
  readonly maxPerKid?: number;
}

export type NonceState = 'fresh' | 'seen' | 'full';

export class NonceCache {
  readonly #retainMs: number;
  readonly #maxPerKid: number;
  readonly #byKid = new Map<string, Map<string, number>>();

  constructor(options: NonceCacheOptions) {
    this.#retainMs = options.retainMs;
    this.#maxPerKid = options.maxPerKid ?? 200_000;
  }

  /** Nonces held over all kids. */
  get size(): number {
    let n = 0;
    for (const m of this.#byKid.values()) n += m.size;
    return n;
  }

  /** Whether `nonce` may be accepted for `kid` at `now` (ms). Does not record it. */
  state(kid: string, nonce: string, now: number): NonceState {
    const nonces = this.#byKid.get(kid);
    if (nonces === undefined) return 'fresh';
    purge(nonces, now);
    const expires = nonces.get(nonce);
    if (expires !== undefined && expires > now) return 'seen';
    return nonces.size >= this.#maxPerKid ? 'full' : 'fresh';
  }

  /** Records an accepted nonce (call only after the signature verified). */
  remember(kid: string, nonce: string, now: number): void {
    let nonces = this.#byKid.get(kid);
    if (nonces === undefined) {
      nonces = new Map();
      this.#byKid.set(kid, nonces);
    }
    nonces.set(nonce, now + this.#retainMs);
  }
}

function purge(nonces: Map<string, number>, now: number): void {
  for (const [nonce, expires] of nonces) {
    if (expires > now) break;
    nonces.delete(nonce);
  }
}
