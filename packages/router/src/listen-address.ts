/**
 * Listen addresses as uWSGI spells them: `host:port`, `:port` (every IPv4 interface), `[v6]:port`,
 * port 0 for an ephemeral port (tests). Returns undefined when the text is not such an address.
 */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export function parseListenAddress(text: string): ListenAddress | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (match === null) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  const host = match[1] ?? (match[2] === '' || match[2] === undefined ? '0.0.0.0' : match[2]);
  if (host.length > 253 || /\s/.test(host)) return undefined;
  return { host, port };
}

/** `host:port` / `[v6]:port` for messages. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
