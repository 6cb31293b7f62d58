/**
 * The one hostname normaliser shared by subscription keys and HTTP Host routing, so that a key and a
 * Host header can never disagree on spelling (`App.Test.` and `app.test` are one host).
 *
 * Accepted form: `host[:port]` where host is
 *  - a DNS name: labels of letters, digits, `-` and `_` (1–63 bytes each, total ≤ 253), case-folded to
 *    lowercase, one trailing dot stripped; with `allowWildcard`, a leading dot (`.example.com`, uWSGI's
 *    dotsplit wildcard key) is kept;
 *  - an IPv4 literal (dotted quad), or an IPv6 literal in brackets (`[::1]`), lowercased.
 * port: 1–5 digits, 1..65535, no leading `+`. Anything else (empty, spaces, `/`, `\`, `@`, `..`,
 * control bytes, non-ASCII) is rejected: the function returns undefined.
 */

export interface HostKey {
  /** Normalised host without port, e.g. `example.com`, `.example.com`, `[::1]`. */
  readonly host: string;
  /** Port number when the input carried one. */
  readonly port: number | undefined;
  /** `host` or `host:port`: the table key. */
  readonly key: string;
}

export interface HostKeyOptions {
  /** Accept a leading dot (dotsplit wildcard keys). Default false. */
  readonly allowWildcard?: boolean;
}

/** Largest accepted key (`host:port`) in bytes; uWSGI's limit is 255 too. */
export const MAX_HOST_KEY_LENGTH = 255;

const IPV6_BODY = /^[0-9a-f:.]+$/;

/** Parses and normalises `input`; undefined when it is not a valid `host[:port]`. */
export function parseHostKey(input: string, options: HostKeyOptions = {}): HostKey | undefined {
  if (input.length === 0 || input.length > MAX_HOST_KEY_LENGTH) return undefined;
  let host: string;
  let portText: string | undefined;
  if (input.charCodeAt(0) === 0x5b /* [ */) {
    const close = input.indexOf(']');
    if (close < 0) return undefined;
    host = input.slice(0, close + 1).toLowerCase();
    const rest = input.slice(close + 1);
    if (rest.length > 0) {
      if (rest.charCodeAt(0) !== 0x3a /* : */) return undefined;
      portText = rest.slice(1);
    }
    const body = host.slice(1, -1);
    if (body.length < 2 || !IPV6_BODY.test(body) || !body.includes(':')) return undefined;
  } else {
    const colon = input.indexOf(':');
    if (colon >= 0) {
      host = input.slice(0, colon);
      portText = input.slice(colon + 1);
    } else {
      host = input;
    }
    host = host.toLowerCase();
    if (host.endsWith('.') && host.length > 1) host = host.slice(0, -1);
    if (!isDnsName(host, options.allowWildcard === true)) return undefined;
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (portText.length === 0 || portText.length > 5) return undefined;
    for (let i = 0; i < portText.length; i++) {
      const c = portText.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return undefined;
    }
    port = Number(portText);
    if (port < 1 || port > 65535) return undefined;
  }
  const key = port === undefined ? host : `${host}:${port}`;
  return { host, port, key };
}

function isDnsName(host: string, allowWildcard: boolean): boolean {
  // Labels of [a-z0-9_-], 1..63 each, 1..253 in all (after an optional wildcard dot), as one scan.
  const start = allowWildcard && host.charCodeAt(0) === 0x2e /* . */ ? 1 : 0;
  const length = host.length - start;
  if (length === 0 || length > 253) return false;
  let label = 0;
  for (let i = start; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c === 0x2e /* . */) {
      if (label === 0) return false;
      label = 0;
      continue;
    }
    const ok =
      (c >= 0x61 && c <= 0x7a) /* a-z */ ||
      (c >= 0x30 && c <= 0x39) /* 0-9 */ ||
      c === 0x2d /* - */ ||
      c === 0x5f; /* _ */
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}
