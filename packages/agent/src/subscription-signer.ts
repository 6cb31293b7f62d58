/**
 * Signs subscription datagrams with Switchyard's modern scheme (what the router's
 * `--subscription-key PATTERN=ALG:FILE` verifies): after the normal pairs the agent appends
 *   ts     unix seconds, nonce  32 fresh random hex characters, kid  the key id,
 * then `sig` as the LAST pair: Ed25519 (64 bytes) or HMAC-SHA256 (32 bytes) over the whole datagram
 * before the sig pair, 4-byte header included. The signature length is fixed per algorithm, so the final
 * datasize is written into the header before signing: the subscribe/unsubscribe byte and the length are
 * covered, and flipping either invalidates the packet.
 *
 * Every datagram gets a fresh ts and nonce (the router refuses a nonce it has seen within its window),
 * so a signed announcer re-signs on every send.
 */
import { createHmac, createPrivateKey, sign as cryptoSign, type KeyObject, randomBytes } from 'node:crypto';
import {
  type EncodablePair,
  encodeVars,
  SUBSCRIPTION_MODIFIER1,
  type SubscriptionCommand,
  UWSGI_HEADER_SIZE,
} from '@switchyard/protocol';
import { BadOptionError } from './errors.js';

export type SigningAlgorithm = 'ed25519' | 'hmac-sha256';

/** What `announce({ signing })` takes. */
export interface SigningOptions {
  /** Key id the router knows this key by (its key file's base name), 1..64 of A-Z a-z 0-9 . _ -. */
  readonly kid: string;
  readonly algorithm: SigningAlgorithm;
  /**
   * ed25519: the PRIVATE key (KeyObject, or PEM text / bytes). hmac-sha256: the shared secret (bytes or
   * text, at least 16 bytes; trailing whitespace is ignored, as the router does with its secret file).
   */
  readonly key: KeyObject | string | Uint8Array;
}

/** A validated signing key. */
export type ResolvedSigning =
  | { readonly kid: string; readonly algorithm: 'ed25519'; readonly key: KeyObject }
  | { readonly kid: string; readonly algorithm: 'hmac-sha256'; readonly key: Buffer };

export const KID = /^[A-Za-z0-9._-]{1,64}$/;
export const SIGNATURE_BYTES: Readonly<Record<SigningAlgorithm, number>> = { ed25519: 64, 'hmac-sha256': 32 };
/** Pair names the signer appends; callers may not set them. */
export const SIGNING_PAIR_NAMES: readonly string[] = ['ts', 'nonce', 'kid', 'sig'];

/** Validates signing options (no I/O). Throws SY_BAD_OPTION naming `signing`. */
export function resolveSigning(options: SigningOptions): ResolvedSigning {
  const bad = (why: string): never => {
    throw new BadOptionError('signing', `signing ${why}`);
  };
  if (typeof options !== 'object' || options === null) bad('must be { kid, algorithm, key }');
  if (typeof options.kid !== 'string' || !KID.test(options.kid)) bad('.kid must be 1..64 of A-Z a-z 0-9 . _ -');
  if (options.algorithm === 'hmac-sha256') {
    const raw = typeof options.key === 'string' ? Buffer.from(options.key, 'utf8') : options.key;
    if (!(raw instanceof Uint8Array)) return bad('.key must be the shared secret (string or bytes)');
    const secret = trimTrailingWhitespace(Buffer.from(raw));
    if (secret.length < 16) bad('.key (hmac-sha256 secret) needs at least 16 bytes');
    return Object.freeze({ kid: options.kid, algorithm: 'hmac-sha256', key: secret });
  }
  if (options.algorithm !== 'ed25519') return bad('.algorithm must be "ed25519" or "hmac-sha256"');
  let key: KeyObject;
  try {
    key =
      typeof options.key === 'string' || options.key instanceof Uint8Array
        ? createPrivateKey(Buffer.from(options.key))
        : options.key;
  } catch {
    return bad('.key is not a PEM private key');
  }
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') bad('.key must be an ed25519 private key');
  return Object.freeze({ kid: options.kid, algorithm: 'ed25519', key });
}

/** Extra bytes signing adds to a datagram (for size checks). */
export function signingOverhead(signing: ResolvedSigning): number {
  const pair = (k: number, v: number) => 4 + k + v;
  return pair(2, 12) + pair(5, 32) + pair(3, signing.kid.length) + pair(3, SIGNATURE_BYTES[signing.algorithm]);
}

/**
 * One signed datagram. `nowMs` and `nonce` are injectable for tests; by default the wall clock and 16
 * random bytes.
 */
export function signSubscription(
  command: SubscriptionCommand,
  pairs: readonly EncodablePair[],
  signing: ResolvedSigning,
  nowMs: number = Date.now(),
  nonce: string = randomBytes(16).toString('hex'),
): Buffer {
  const body = encodeVars([...pairs, ['ts', String(Math.floor(nowMs / 1000))], ['nonce', nonce], ['kid', signing.kid]]);
  const sigLength = SIGNATURE_BYTES[signing.algorithm];
  const sigPairHead = 2 + 3 + 2;
  const datasize = body.length + sigPairHead + sigLength;
  const out = Buffer.alloc(UWSGI_HEADER_SIZE + datasize);
  out[0] = SUBSCRIPTION_MODIFIER1;
  out.writeUInt16LE(datasize, 1);
  out[3] = command === 'subscribe' ? 0 : 1;
  body.copy(out, UWSGI_HEADER_SIZE);
  const sigAt = UWSGI_HEADER_SIZE + body.length;
  out.writeUInt16LE(3, sigAt);
  out.write('sig', sigAt + 2, 'latin1');
  out.writeUInt16LE(sigLength, sigAt + 5);
  const covered = out.subarray(0, sigAt);
  const signature =
    signing.algorithm === 'ed25519'
      ? cryptoSign(null, covered, signing.key)
      : createHmac('sha256', signing.key).update(covered).digest();
  signature.copy(out, sigAt + sigPairHead);
  return out;
}

function trimTrailingWhitespace(bytes: Buffer): Buffer {
  let end = bytes.length;
  while (end > 0) {
    const c = bytes[end - 1];
    if (c !== 0x0a && c !== 0x0d && c !== 0x20 && c !== 0x09) break;
    end--;
  }
  return bytes.subarray(0, end);
}
