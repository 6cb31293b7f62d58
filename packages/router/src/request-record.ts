/**
 * What the router knows about a request once it is over: the input of the metrics and the access log.
 * ProxyExchange implements it for proxied requests (no extra object per request); `LocalRecord` is the
 * small record of requests the router answered itself before any exchange (bad request, unknown host,
 * maintenance page).
 *
 * Units: `startedAt` is `performance.now()` ms (monotonic), bytes are body bytes (request body read from
 * the client, response body written to it), `status` 499 means the client left before any response.
 */
import type { HostRecord } from './host-policy.js';

export interface RequestRecord {
  /** performance.now() when the request head was received. */
  readonly startedAt: number;
  readonly method: string;
  /** Request target as forwarded (origin-form). */
  readonly path: string;
  /** Host key routed to (table entry key), or the normalised Host when no entry matched. */
  readonly hostKey: string | undefined;
  readonly clientAddress: string;
  /** Status sent to the client; 499 when the client left before a response. */
  readonly status: number;
  /** Node that served (or last failed) the request. */
  readonly nodeAddress: string | undefined;
  /** Nodes tried. */
  readonly attempts: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** The host's record when the host is in the table (per-host counters), else undefined. */
  readonly hostRecord: HostRecord | undefined;
}

export class LocalRecord implements RequestRecord {
  readonly startedAt: number;
  readonly method: string;
  readonly path: string;
  readonly hostKey: string | undefined;
  readonly clientAddress: string;
  readonly status: number;
  readonly nodeAddress = undefined;
  readonly attempts = 0;
  readonly bytesIn = 0;
  readonly bytesOut: number;
  readonly hostRecord: HostRecord | undefined;

  constructor(
    startedAt: number,
    method: string,
    path: string,
    hostKey: string | undefined,
    clientAddress: string,
    status: number,
    bytesOut: number,
    hostRecord: HostRecord | undefined,
  ) {
    this.startedAt = startedAt;
    this.method = method;
    this.path = path;
    this.hostKey = hostKey;
    this.clientAddress = clientAddress;
    this.status = status;
    this.bytesOut = bytesOut;
    this.hostRecord = hostRecord;
  }
}

/** Client address without the IPv4-mapped IPv6 prefix. */
export function clientAddressOf(remote: string | undefined): string {
  const address = remote ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
