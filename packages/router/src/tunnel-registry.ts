/**
 * Every open WebSocket tunnel, by node, and the drain deadlines that close them.
 *
 * Contracts:
 *  - A tunnel counts as in flight on its node for its whole life (the exchange that opened it keeps the
 *    node's in-flight count up), so a draining node is reported drained only when its last tunnel closes.
 *  - When a node starts draining, its tunnels keep working until the host's drain deadline
 *    (`hostDrainDeadlines` by host key, else `drainDeadlineMs`; default 30 s, the registry's own drain
 *    timeout), then each gets a 1001 Going Away close. A node that becomes active again before the
 *    deadline cancels it. The deadline belongs to the tunnels: removing the node from the table (drain
 *    timeout, expiry) does not close them earlier.
 *  - `goingAwayAll()` (router shutdown) sends 1001 to every tunnel at once.
 * Timers are plain setTimeout in ms: deadlines are relative to the moment draining started.
 */
import type { Logger } from 'pino';
import type { NodeState } from './vhost-table.js';
import type { GoingAwayReason, WebSocketTunnel } from './websocket-tunnel.js';

export interface TunnelRegistryOptions {
  /** Time a draining node's tunnels keep running, ms. Default 30000. */
  readonly drainDeadlineMs?: number;
  /** Per-host-key overrides of `drainDeadlineMs`, ms. */
  readonly hostDrainDeadlines?: ReadonlyMap<string, number>;
  readonly logger?: Logger;
}

export interface TunnelStats {
  /** Tunnels open now. */
  readonly open: number;
  /** Tunnels opened since start. */
  readonly opened: number;
  /** Tunnels the router closed with 1001, by reason. */
  readonly goingAway: Readonly<Record<GoingAwayReason, number>>;
}

function nodeId(key: string, address: string): string {
  return `${key}\u0000${address}`;
}

export class TunnelRegistry {
  private readonly byNode = new Map<string, Set<WebSocketTunnel>>();
  private readonly deadlines = new Map<string, NodeJS.Timeout>();
  private readonly drainDeadlineMs: number;
  private readonly hostDrainDeadlines: ReadonlyMap<string, number>;
  private readonly logger: Logger | undefined;
  private openCount = 0;
  private openedCount = 0;
  private readonly goneAway: Record<GoingAwayReason, number> = { shutdown: 0, drain: 0, idle: 0 };

  constructor(options: TunnelRegistryOptions = {}) {
    this.drainDeadlineMs = options.drainDeadlineMs ?? 30_000;
    this.hostDrainDeadlines = options.hostDrainDeadlines ?? new Map();
    this.logger = options.logger?.child({ component: 'tunnels' });
  }

  add(tunnel: WebSocketTunnel): void {
    const id = nodeId(tunnel.key, tunnel.address);
    let set = this.byNode.get(id);
    if (set === undefined) {
      set = new Set();
      this.byNode.set(id, set);
    }
    set.add(tunnel);
    this.openCount++;
    this.openedCount++;
  }

  /** Called once per tunnel when it has closed. */
  remove(tunnel: WebSocketTunnel): void {
    const id = nodeId(tunnel.key, tunnel.address);
    const set = this.byNode.get(id);
    if (set?.delete(tunnel) !== true) return;
    this.openCount--;
    if (tunnel.endReason === 'shutdown' || tunnel.endReason === 'drain' || tunnel.endReason === 'idle') {
      this.goneAway[tunnel.endReason]++;
    }
    if (set.size === 0) this.byNode.delete(id);
  }

  /** Tunnels open to one node. */
  countFor(key: string, address: string): number {
    return this.byNode.get(nodeId(key, address))?.size ?? 0;
  }

  /** The drain deadline of a host key, ms. */
  deadlineFor(key: string): number {
    return this.hostDrainDeadlines.get(key) ?? this.drainDeadlineMs;
  }

  /** A node changed state: draining arms its deadline, active cancels it. */
  nodeState(key: string, address: string, state: NodeState): void {
    const id = nodeId(key, address);
    if (state === 'active') {
      const timer = this.deadlines.get(id);
      if (timer !== undefined) {
        clearTimeout(timer);
        this.deadlines.delete(id);
      }
      return;
    }
    if (this.deadlines.has(id)) return;
    const deadline = this.deadlineFor(key);
    const timer = setTimeout(() => {
      this.deadlines.delete(id);
      const set = this.byNode.get(id);
      if (set === undefined) return;
      this.logger?.info({ host: key, node: address, tunnels: set.size, deadlineMs: deadline }, 'drain deadline');
      for (const tunnel of [...set]) tunnel.goingAway('drain');
    }, deadline);
    timer.unref();
    this.deadlines.set(id, timer);
  }

  /** Sends 1001 Going Away to every open tunnel (router shutdown). */
  goingAwayAll(): void {
    for (const set of [...this.byNode.values()]) {
      for (const tunnel of [...set]) tunnel.goingAway('shutdown');
    }
  }

  stats(): TunnelStats {
    return { open: this.openCount, opened: this.openedCount, goingAway: { ...this.goneAway } };
  }

  /** Cancels every pending deadline; safe twice. */
  close(): void {
    for (const timer of this.deadlines.values()) clearTimeout(timer);
    this.deadlines.clear();
  }
}
