/**
 * The warning logged when an attempt on a node fails (connect refused, reset, timeout), at a bounded
 * rate: at most one line per node per `intervalMs` (default 1000), carrying how many failures of that
 * node were not logged since its previous line (`suppressed`). A dead node under load fails thousands of
 * attempts a second; the counters (metrics, /v1/vhosts) still see every one, the log only a sample.
 *
 * Memory: one entry per node that failed within the last interval; the map is swept when it grows past
 * `maxNodes` (default 10000), dropping entries older than one interval (their next failure logs at once;
 * an unlogged count they held is dropped with them).
 */
import type { Logger } from 'pino';
import type { UpstreamError } from './errors.js';

export interface NodeFailureLogOptions {
  readonly logger: Logger;
  /** ms clock (injected for tests). */
  readonly clock: () => number;
  /** Shortest gap between two lines about one node, ms. Default 1000. */
  readonly intervalMs?: number;
  /** Entries kept before a sweep. Default 10000. */
  readonly maxNodes?: number;
}

interface Entry {
  /** ms of the last line logged for the node. */
  at: number;
  /** Failures since that line that were not logged. */
  suppressed: number;
}

export class NodeFailureLog {
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly intervalMs: number;
  private readonly maxNodes: number;
  private readonly entries = new Map<string, Entry>();

  constructor(options: NodeFailureLogOptions) {
    this.logger = options.logger;
    this.clock = options.clock;
    this.intervalMs = options.intervalMs ?? 1000;
    this.maxNodes = options.maxNodes ?? 10_000;
  }

  /** A failed attempt of host `key` on node `address`: logged now, or counted into the next line. */
  failed(key: string, address: string, error: UpstreamError): void {
    const now = this.clock();
    const entry = this.entries.get(address);
    if (entry !== undefined && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    if (entry === undefined) {
      if (this.entries.size >= this.maxNodes) this.sweep(now);
      this.entries.set(address, { at: now, suppressed: 0 });
    } else {
      entry.at = now;
      entry.suppressed = 0;
    }
    this.logger.warn(
      suppressed > 0
        ? { host: key, node: address, code: error.code, suppressed }
        : { host: key, node: address, code: error.code },
      error.message,
    );
  }

  /** Entries (tests). */
  get size(): number {
    return this.entries.size;
  }

  private sweep(now: number): void {
    for (const [address, entry] of this.entries) {
      if (now - entry.at >= this.intervalMs) this.entries.delete(address);
    }
  }
}
