/**
 * uWSGI's extra host-lookup rules on top of the exact `host:port` → `host` lookup (reference:
 * uwsgi-subscription.md §2.1, §2.7): dotsplit wildcards, mountpoints and the fallback key. Pure: the
 * vhost table hands in its `get` and the key-shape counters it maintains; nothing here does I/O.
 *
 * Exact order of attempts for `Host: h[:p]` and request target `/s1/s2/...` (first hit wins):
 *
 *   for each level L in [h, dotsplit suffixes of h]             (dotsplit: `a.b.example.com` →
 *                                                                  `.b.example.com` → `.example.com` → `.com`;
 *                                                                  5 levels at most, the full host included,
 *                                                                  as uWSGI's `count = 5`)
 *     for depth d from the deepest mounted depth down to 1        (mountpoints only)
 *       `L:p/s1/…/sd`, then `L/s1/…/sd`                           rule 'mountpoint'
 *     `L:p`, then `L`                                             rule 'port' / 'host' at level 0,
 *                                                                 'wildcard' below
 *   the fallback key (`--http-fallback-key`)                      rule 'fallback'
 *   the static entry (`--http-to`, `--spawn` workers)             rule 'static'
 *
 * So an exact key always beats a wildcard, a deeper mountpoint beats a shallower one, a path beats a
 * port, and the port-qualified key beats the port-less one at the same level. uWSGI keeps the port in
 * every attempt and has no port-less retry; Switchyard adds the port-less key at every level (its Host
 * rule since the start). Levels and depths that no key in the table has are skipped (the table counts
 * wildcard keys and mountpoint keys per depth), so the rules cost nothing while unused.
 *
 * Mountpoint segments are compared raw (not percent-decoded), query removed, as uWSGI builds its key;
 * an empty segment ends the path (`/foo//bar` → `/foo`). uWSGI only ever uses the first segment; deeper
 * keys (`host/a/b`) are a Switchyard extension, longest prefix wins.
 */
import { MAX_MOUNT_DEPTH } from '@switchyard/protocol';
import type { HostEntry } from './vhost-table.js';

export { MAX_MOUNT_DEPTH };

export interface LookupOptions {
  /** `--subscription-dotsplit`: try `.suffix` wildcard keys when the host is not found. Default false. */
  readonly dotsplit?: boolean;
  /** `--subscription-mountpoints`: try `host/segment` keys before the plain host. Default false. */
  readonly mountpoints?: boolean;
  /** `--http-fallback-key`: normalised key of the pool used when nothing else matches. */
  readonly fallbackKey?: string;
}

export type ExtendedRule = 'port' | 'host' | 'wildcard' | 'mountpoint' | 'fallback';

/** Most levels tried with dotsplit, the full host included (uWSGI: 5). */
export const DOTSPLIT_LEVELS = 5;

/** Counts of key shapes present in the table, so unused rules are skipped. */
export class KeyShapes {
  wildcards = 0;
  /** mountDepth[d] = keys with d path segments (index 0 unused). */
  private readonly mountDepth = new Array<number>(MAX_MOUNT_DEPTH + 1).fill(0);
  /** Deepest depth with at least one key; 0 when there is no mountpoint key. */
  maxDepth = 0;

  added(key: string): void {
    this.change(key, 1);
  }

  removed(key: string): void {
    this.change(key, -1);
  }

  private change(key: string, delta: number): void {
    if (key.charCodeAt(0) === 0x2e /* . */) this.wildcards += delta;
    const depth = mountDepthOf(key);
    if (depth === 0) return;
    this.mountDepth[depth] = (this.mountDepth[depth] ?? 0) + delta;
    let max = 0;
    for (let d = 1; d <= MAX_MOUNT_DEPTH; d++) if ((this.mountDepth[d] ?? 0) > 0) max = d;
    this.maxDepth = max;
  }
}

/** Number of path segments of a key (`host/a/b` → 2), 0 for a plain host key. */
export function mountDepthOf(key: string): number {
  const slash = key.indexOf('/');
  if (slash < 0) return 0;
  let depth = 0;
  for (let i = slash; i < key.length; i++) if (key.charCodeAt(i) === 0x2f) depth++;
  return Math.min(depth, MAX_MOUNT_DEPTH);
}

/**
 * Path prefixes to try for `target`, deepest first: `/a/b?q` with maxDepth 2 → [`/a/b`, `/a`]. Empty for
 * `/`, `*` and targets that are not origin-form.
 */
export function mountPrefixes(target: string | undefined, maxDepth: number): string[] {
  if (target === undefined || maxDepth === 0 || target.charCodeAt(0) !== 0x2f) return [];
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const prefixes: string[] = [];
  let end = 0;
  while (prefixes.length < maxDepth) {
    const next = path.indexOf('/', end + 1);
    const stop = next < 0 ? path.length : next;
    if (stop === end + 1 || end >= path.length) break; // empty segment or end of path
    prefixes.push(path.slice(0, stop));
    if (next < 0) break;
    end = next;
  }
  return prefixes.reverse();
}

/** Dotsplit levels of `host`: itself, then each `.suffix` (at most DOTSPLIT_LEVELS in all). */
export function dotsplitLevels(host: string): string[] {
  const levels = [host];
  if (host.charCodeAt(0) === 0x5b /* [ IPv6 literal */) return levels;
  let from = 1;
  while (levels.length < DOTSPLIT_LEVELS) {
    const dot = host.indexOf('.', from);
    if (dot < 0) break;
    levels.push(host.slice(dot));
    from = dot + 1;
  }
  return levels;
}

/**
 * Runs the attempts above (without the static entry). `host` is the normalised host, `portSuffix` is
 * `:port` when the Host carried one (else ''), `target` the request target.
 */
export function lookupExtended(
  get: (key: string) => HostEntry | undefined,
  shapes: KeyShapes,
  options: LookupOptions,
  host: string | undefined,
  portSuffix: string,
  target: string | undefined,
): { readonly entry: HostEntry; readonly rule: ExtendedRule } | undefined {
  if (host !== undefined) {
    const levels = options.dotsplit === true && shapes.wildcards > 0 ? dotsplitLevels(host) : [host];
    const prefixes = options.mountpoints === true ? mountPrefixes(target, shapes.maxDepth) : [];
    for (let level = 0; level < levels.length; level++) {
      const base = levels[level]!;
      for (const prefix of prefixes) {
        if (portSuffix !== '') {
          const withPort = get(base + portSuffix + prefix);
          if (withPort !== undefined) return { entry: withPort, rule: 'mountpoint' };
        }
        const plain = get(base + prefix);
        if (plain !== undefined) return { entry: plain, rule: 'mountpoint' };
      }
      if (portSuffix !== '') {
        const withPort = get(base + portSuffix);
        if (withPort !== undefined) return { entry: withPort, rule: level === 0 ? 'port' : 'wildcard' };
      }
      const plain = get(base);
      if (plain !== undefined) return { entry: plain, rule: level === 0 ? 'host' : 'wildcard' };
    }
  }
  if (options.fallbackKey !== undefined) {
    const fallback = get(options.fallbackKey);
    if (fallback !== undefined) return { entry: fallback, rule: 'fallback' };
  }
  return undefined;
}
