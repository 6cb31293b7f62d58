/**
 * Mountpoint subscription keys (uWSGI `--subscription-mountpoints`, reference §2.7): `host[:port]/seg`,
 * a host key followed by one or more path segments. The host part goes through the shared host-key
 * normaliser (a leading-dot wildcard host is accepted), the path is kept byte for byte (paths are
 * case-sensitive and the router compares raw request segments, as uWSGI does).
 *
 * Accepted path: 1..MAX_MOUNT_DEPTH segments, each non-empty, made of RFC 3986 `pchar` bytes (unreserved,
 * sub-delims, `:`, `@`, `%XX`), not `.` or `..`; no `?`, `#`, trailing `/` or empty segment. The whole
 * key is at most MAX_HOST_KEY_LENGTH (255) bytes. Anything else → undefined.
 */
import { type HostKey, MAX_HOST_KEY_LENGTH, parseHostKey } from './host-key.js';

/** Deepest mountpoint key accepted (`host/a/b/c/d`). uWSGI itself only matches one segment. */
export const MAX_MOUNT_DEPTH = 4;

export interface MountpointKey {
  /** The normalised host part. */
  readonly host: HostKey;
  /** The path part, starting with `/` (`/api/v2`). */
  readonly path: string;
  /** Number of path segments, 1..MAX_MOUNT_DEPTH. */
  readonly depth: number;
  /** `host[:port]/path`: the table key. */
  readonly key: string;
}

const SEGMENT = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+$/;

/** Parses `host[:port]/seg[/seg...]`; undefined when it is not a valid mountpoint key. */
export function parseMountpointKey(input: string): MountpointKey | undefined {
  if (input.length > MAX_HOST_KEY_LENGTH) return undefined;
  const slash = input.indexOf('/');
  if (slash <= 0) return undefined;
  const host = parseHostKey(input.slice(0, slash), { allowWildcard: true });
  if (host === undefined) return undefined;
  const path = input.slice(slash);
  const segments = path.slice(1).split('/');
  if (segments.length > MAX_MOUNT_DEPTH) return undefined;
  for (const segment of segments) {
    if (segment === '.' || segment === '..' || !SEGMENT.test(segment)) return undefined;
  }
  return { host, path, depth: segments.length, key: host.key + path };
}
