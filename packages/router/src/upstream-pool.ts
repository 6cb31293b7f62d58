/**
 * Keep-alive connection pools for HTTP/1.1 nodes, one LIFO stack of idle connections per node address
 * (the most recently used socket is the warmest). An idle connection is closed after `idleTimeoutMs`
 * (default 4 s, below Node's 5 s server keep-alive so the node rarely closes first), when the node sends
 * anything while idle, or when it closes. A stack holds at most `maxIdlePerNode` connections; busy
 * connections are not capped here.
 */
import { type ConnectionOwner, UpstreamConnection, type UpstreamTimeouts } from './upstream-connection.js';
import type { UpstreamTarget } from './vhost-table.js';

export interface UpstreamPoolOptions extends UpstreamTimeouts {
  /** Idle connections kept per node. Default 64. */
  readonly maxIdlePerNode?: number;
  /** Idle connection lifetime, ms. Default 4000. */
  readonly idleTimeoutMs?: number;
}

export class UpstreamPool implements ConnectionOwner {
  private readonly idle = new Map<string, UpstreamConnection[]>();
  private readonly options: Required<Omit<UpstreamPoolOptions, 'responseHeaderMs' | 'deadlines'>> & UpstreamTimeouts;
  private closed = false;
  created = 0;
  reusedCount = 0;

  constructor(options: UpstreamPoolOptions) {
    this.options = { maxIdlePerNode: 64, idleTimeoutMs: 4000, ...options };
  }

  /** A connected idle connection for `address` if one is available, else a new one. */
  acquire(address: string, target: UpstreamTarget): UpstreamConnection {
    const stack = this.idle.get(address);
    while (stack !== undefined && stack.length > 0) {
      const connection = stack.pop()!;
      connection.owner = undefined;
      if (connection.destroyed) continue;
      connection.reused = true;
      this.reusedCount++;
      return connection;
    }
    this.created++;
    return UpstreamConnection.open(address, target, this.options);
  }

  /** Returns a connection after an exchange; it is kept only if it is reusable and there is room. */
  release(connection: UpstreamConnection): void {
    if (this.closed || !connection.reusable || connection.destroyed) {
      connection.destroy();
      return;
    }
    let stack = this.idle.get(connection.address);
    if (stack === undefined) {
      stack = [];
      this.idle.set(connection.address, stack);
    }
    if (stack.length >= this.options.maxIdlePerNode) {
      connection.destroy();
      return;
    }
    connection.owner = this;
    connection.idleFor(this.options.idleTimeoutMs);
    stack.push(connection);
  }

  onIdleClosed(connection: UpstreamConnection): void {
    const stack = this.idle.get(connection.address);
    if (stack === undefined) return;
    const index = stack.indexOf(connection);
    if (index >= 0) stack.splice(index, 1);
    if (stack.length === 0) this.idle.delete(connection.address);
  }

  /** Idle connections per address (for stats and tests). */
  idleCount(address?: string): number {
    if (address !== undefined) return this.idle.get(address)?.length ?? 0;
    let total = 0;
    for (const stack of this.idle.values()) total += stack.length;
    return total;
  }

  /** Closes the idle connections of one node (after it left the table). */
  closeIdle(address: string): void {
    const stack = this.idle.get(address);
    if (stack === undefined) return;
    this.idle.delete(address);
    for (const connection of stack) connection.destroy();
  }

  /** Closes every idle connection and stops pooling; safe twice. */
  close(): void {
    this.closed = true;
    for (const address of [...this.idle.keys()]) this.closeIdle(address);
  }
}
