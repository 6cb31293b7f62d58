/**
 * PublicKeyDirectory: uWSGI's `--subscriptions-sign-check` key directory. The public key for subscription
 * key K is the file `DIR/<K with every byte outside [A-Za-z0-9._-] replaced by _>.pem` (PEM
 * SubjectPublicKeyInfo): `test.uwsgi.it:8000` → `test.uwsgi.it_8000.pem`.
 *
 * Keys are loaded lazily (first packet for K) and cached. Rotation without restart: a cached entry is
 * re-validated with one stat() at most every `recheckMs` (default 1 s), and the file is re-read when its
 * mtime, size or inode changed; a file that appears later is picked up the same way, and a deleted file
 * stops being accepted. The cache is a BoundedLru (`maxEntries`, default 10 000), negative entries
 * included, so packets for millions of made-up keys cost bounded memory and at most one stat per key
 * per recheck interval.
 *
 * Reads are synchronous: the intake pipeline is synchronous, key files are small, and the per-source
 * rate limit runs before this.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BoundedLru } from './bounded-lru.js';

export type KeyLookup =
  | { readonly kind: 'key'; readonly key: KeyObject; readonly file: string }
  | { readonly kind: 'missing'; readonly file: string }
  | { readonly kind: 'invalid'; readonly file: string; readonly detail: string };

export interface PublicKeyDirectoryOptions {
  readonly dir: string;
  /** ms between stat() checks of a cached key. Default 1 000. */
  readonly recheckMs?: number;
  /** Most cached entries (keys and misses). Default 10 000. */
  readonly maxEntries?: number;
  /** ms; default Date.now. */
  readonly clock?: () => number;
}

interface CacheEntry {
  readonly lookup: KeyLookup;
  /** `mtimeMs:size:ino`, or '' when the file was missing. */
  readonly stamp: string;
  checkedAt: number;
}

/** The file name uWSGI derives from a subscription key. */
export function keyFileName(key: string): string {
  return `${key.replace(/[^A-Za-z0-9._-]/g, '_')}.pem`;
}

export class PublicKeyDirectory {
  readonly #dir: string;
  readonly #recheckMs: number;
  readonly #clock: () => number;
  readonly #cache: BoundedLru<string, CacheEntry>;
  #reads = 0;

  constructor(options: PublicKeyDirectoryOptions) {
    this.#dir = options.dir;
    this.#recheckMs = options.recheckMs ?? 1_000;
    this.#clock = options.clock ?? Date.now;
    this.#cache = new BoundedLru(options.maxEntries ?? 10_000);
  }

  get dir(): string {
    return this.#dir;
  }

  /** Key files read (parsed) since creation: stays flat while files do not change. */
  get reads(): number {
    return this.#reads;
  }

  /** The public key for subscription key `key` (already normalised). Never throws. */
  lookup(key: string): KeyLookup {
    const now = this.#clock();
    const cached = this.#cache.get(key);
    if (cached !== undefined && now - cached.checkedAt < this.#recheckMs) return cached.lookup;
    const file = join(this.#dir, keyFileName(key));
    const stamp = statStamp(file);
    if (cached !== undefined && cached.stamp === stamp) {
      cached.checkedAt = now;
      return cached.lookup;
    }
    const lookup = stamp === '' ? ({ kind: 'missing', file } as const) : this.#read(file);
    this.#cache.set(key, { lookup, stamp, checkedAt: now });
    return lookup;
  }

  #read(file: string): KeyLookup {
    this.#reads++;
    try {
      const key = createPublicKey(readFileSync(file));
      return { kind: 'key', key, file };
    } catch (err) {
      return { kind: 'invalid', file, detail: err instanceof Error ? err.message : String(err) };
    }
  }
}

function statStamp(file: string): string {
  try {
    const st = statSync(file, { throwIfNoEntry: false });
    if (st === undefined || !st.isFile()) return '';
    return `${st.mtimeMs}:${st.size}:${st.ino}`;
  } catch {
    return '';
  }
}
