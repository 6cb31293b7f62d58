/**
 * Host patterns: which subscription keys a signing key or a source network may announce.
 *
 *  - `*`                  every key;
 *  - `*.tenant.example`   every key below tenant.example at any depth (`a.tenant.example`,
 *                         `b.a.tenant.example`) and the dotsplit wildcard key `.tenant.example`, but not
 *                         `tenant.example` itself (list it separately);
 *  - `app.example`        exactly that key.
 *
 * A pattern without a port matches the key's host part whatever its port (`api.example` covers
 * `api.example:8080`); a pattern with a port (`api.example:8080`, `*.tenant.example:8443`) requires it.
 * Patterns are normalised like keys (lowercase, trailing dot dropped); keys given to `matches` are
 * already normalised announcement keys. A mountpoint key (`host/segment`) is matched by its host part.
 */
import { parseHostKey } from '@switchyard/protocol';

export interface HostPattern {
  readonly text: string;
  matches(key: string): boolean;
}

/** Parses a pattern; undefined when it is not `*`, `*.domain[:port]` or `host[:port]`. */
export function parseHostPattern(text: string): HostPattern | undefined {
  const raw = text.trim();
  if (raw === '*') return Object.freeze({ text: '*', matches: () => true });
  const wildcard = raw.startsWith('*.');
  const parsed = parseHostKey(wildcard ? raw.slice(2) : raw);
  if (parsed === undefined) return undefined;
  const host = parsed.host;
  const port = parsed.port;
  const suffix = `.${host}`;
  const normalised = `${wildcard ? '*.' : ''}${host}${port === undefined ? '' : `:${port}`}`;
  return Object.freeze({
    text: normalised,
    matches(key: string): boolean {
      const { host: keyHost, port: keyPort } = splitKey(key);
      if (port !== undefined && keyPort !== port) return false;
      return wildcard ? keyHost.endsWith(suffix) : keyHost === host;
    },
  });
}

/** True when any of `patterns` matches `key`. */
export function matchesAny(patterns: readonly HostPattern[], key: string): boolean {
  for (const p of patterns) if (p.matches(key)) return true;
  return false;
}

function splitKey(fullKey: string): { host: string; port: number | undefined } {
  const slash = fullKey.indexOf('/');
  const key = slash < 0 ? fullKey : fullKey.slice(0, slash);
  if (key.startsWith('[')) {
    const close = key.indexOf(']');
    const rest = key.slice(close + 1);
    return { host: key.slice(0, close + 1), port: rest.startsWith(':') ? Number(rest.slice(1)) : undefined };
  }
  const colon = key.lastIndexOf(':');
  if (colon < 0) return { host: key, port: undefined };
  return { host: key.slice(0, colon), port: Number(key.slice(colon + 1)) };
}
