/**
 * SubscriptionKeyring: the Ed25519 / HMAC-SHA256 keys that may sign subscriptions, each allowed for a set
 * of host patterns (`--subscription-key PATTERN=ALG:FILE`, repeatable).
 *
 *  - ALG `ed25519`: FILE is a PEM public key (SubjectPublicKeyInfo; a PEM private key is accepted too and
 *    only its public half is kept).
 *  - ALG `hmac-sha256`: FILE holds the shared secret; trailing whitespace (an editor's final newline) is
 *    ignored; at least 16 bytes.
 *  - The key id (`kid`, what packets carry) is FILE's base name without its last extension
 *    (`/etc/switchyard/keys/tenant-2024.pub` → `tenant-2024`), 1..64 of `A-Z a-z 0-9 . _ -`.
 *  - One kid may be listed with several patterns (repeat the option with the same file): it is allowed for
 *    all of them. Several kids may share a pattern: all are accepted, which is how keys are rotated with
 *    overlap (add the new key, move the agents, remove the old key).
 *
 * `loadSubscriptionKeyring` reads the files (synchronously, once, at start-up) and throws BadKeyError
 * (SY_BAD_KEY, naming the file) for a missing, unreadable or wrong-type file, a too-short secret or one
 * kid bound to two different keys.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { BadKeyError } from './errors.js';
import { type HostPattern, matchesAny, parseHostPattern } from './host-pattern.js';

export type SigningAlgorithm = 'ed25519' | 'hmac-sha256';

export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = Object.freeze(['ed25519', 'hmac-sha256']);

/** One `--subscription-key` value, parsed. */
export interface SubscriptionKeySpec {
  readonly pattern: string;
  readonly algorithm: SigningAlgorithm;
  readonly file: string;
}

export type SigningKey =
  | { readonly kid: string; readonly algorithm: 'ed25519'; readonly key: KeyObject; readonly file: string }
  | { readonly kid: string; readonly algorithm: 'hmac-sha256'; readonly key: Buffer; readonly file: string };

export interface KeyringEntry {
  readonly signing: SigningKey;
  readonly patterns: readonly HostPattern[];
}

export const KID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const MIN_HMAC_SECRET_BYTES = 16;

const SPEC = /^([^=]+)=([a-z0-9-]+):(.+)$/;

/** Parses `PATTERN=ALG:FILE`; undefined when malformed (bad pattern, unknown ALG, empty FILE). */
export function parseSubscriptionKeySpec(text: string): SubscriptionKeySpec | undefined {
  const m = SPEC.exec(text);
  if (m === null) return undefined;
  const pattern = parseHostPattern(m[1]!);
  const algorithm = m[2] as SigningAlgorithm;
  if (pattern === undefined || !SIGNING_ALGORITHMS.includes(algorithm)) return undefined;
  return Object.freeze({ pattern: pattern.text, algorithm, file: m[3]! });
}

/** The kid for a key file: its base name without the last extension. */
export function kidForFile(file: string): string {
  const base = basename(file);
  const ext = extname(base);
  return ext.length > 0 && ext.length < base.length ? base.slice(0, -ext.length) : base;
}

export class SubscriptionKeyring {
  readonly #entries: ReadonlyMap<string, KeyringEntry>;

  constructor(entries: Iterable<KeyringEntry>) {
    const map = new Map<string, KeyringEntry>();
    for (const e of entries) map.set(e.signing.kid, e);
    this.#entries = map;
  }

  get size(): number {
    return this.#entries.size;
  }

  kids(): string[] {
    return [...this.#entries.keys()];
  }

  get(kid: string): KeyringEntry | undefined {
    return this.#entries.get(kid);
  }

  /** True when some key of the ring may sign for `key` (a normalised subscription key). */
  covers(key: string): boolean {
    for (const e of this.#entries.values()) if (matchesAny(e.patterns, key)) return true;
    return false;
  }
}

/** Reads every key file named in `specs`. Throws BadKeyError (SY_BAD_KEY). */
export function loadSubscriptionKeyring(specs: readonly SubscriptionKeySpec[]): SubscriptionKeyring {
  const byKid = new Map<string, { signing: SigningKey; patterns: HostPattern[]; fingerprint: string }>();
  for (const spec of specs) {
    const pattern = parseHostPattern(spec.pattern);
    if (pattern === undefined) throw new BadKeyError(spec.file, `pattern "${spec.pattern}" is not a host pattern`);
    const kid = kidForFile(spec.file);
    if (!KID_PATTERN.test(kid)) {
      throw new BadKeyError(spec.file, `key id "${kid}" (the file name) must be 1..64 of A-Z a-z 0-9 . _ -`);
    }
    const signing = loadSigningKey(kid, spec.algorithm, spec.file);
    const fingerprint = `${spec.algorithm}:${fingerprintOf(signing)}`;
    const existing = byKid.get(kid);
    if (existing === undefined) {
      byKid.set(kid, { signing, patterns: [pattern], fingerprint });
    } else if (existing.fingerprint !== fingerprint) {
      throw new BadKeyError(
        spec.file,
        `key id "${kid}" is already bound to a different key (${existing.signing.file})`,
      );
    } else if (!existing.patterns.some((p) => p.text === pattern.text)) {
      existing.patterns.push(pattern);
    }
  }
  return new SubscriptionKeyring(
    [...byKid.values()].map((e) => Object.freeze({ signing: e.signing, patterns: Object.freeze([...e.patterns]) })),
  );
}

function loadSigningKey(kid: string, algorithm: SigningAlgorithm, file: string): SigningKey {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new BadKeyError(file, `cannot read: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  if (algorithm === 'hmac-sha256') {
    const secret = trimTrailingWhitespace(bytes);
    if (secret.length < MIN_HMAC_SECRET_BYTES) {
      throw new BadKeyError(file, `an hmac-sha256 secret needs at least ${MIN_HMAC_SECRET_BYTES} bytes`);
    }
    return Object.freeze({ kid, algorithm, key: secret, file });
  }
  let key: KeyObject;
  try {
    key = createPublicKey(bytes);
  } catch (err) {
    throw new BadKeyError(file, 'not a PEM public key', err);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new BadKeyError(file, `is a ${key.asymmetricKeyType ?? 'unknown'} key, not ed25519`);
  }
  return Object.freeze({ kid, algorithm, key, file });
}

/** Strips trailing spaces, tabs, CR and LF (an editor's final newline) from a secret file's bytes. */
export function trimTrailingWhitespace(bytes: Buffer): Buffer {
  let end = bytes.length;
  while (end > 0) {
    const c = bytes[end - 1];
    if (c !== 0x0a && c !== 0x0d && c !== 0x20 && c !== 0x09) break;
    end--;
  }
  return bytes.subarray(0, end);
}

function fingerprintOf(signing: SigningKey): string {
  if (signing.algorithm === 'hmac-sha256') return signing.key.toString('base64');
  return signing.key.export({ type: 'spki', format: 'der' }).toString('base64');
}
