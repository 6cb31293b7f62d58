/**
 * `--http-stats ADDR`: uWSGI's router stats server. Every TCP connection gets one JSON document in the
 * shape uWSGI 2.0's HTTP router writes (reference §2.8; key order as uWSGI master, tab-indented), then the
 * connection is closed. Tools written for uWSGI (uwsgitop-style scripts, monitoring checks) read it as is.
 *
 * Document: version, pid, uid, gid, cwd, active_sessions (requests in flight), http (router listen
 * addresses, then subscription-server addresses), subscriptions (one pool per vhost-table key, in table
 * order; master's per-pool `algo` included), static_nodes (only when static nodes exist: `--http-to`,
 * `--spawn` without a key), cheap (always 0).
 *
 * Per node (uWSGI name → Switchyard source):
 *   name → address; vassal (master) → announced `vassal` or ""; modifier1/2 → as announced;
 *   last_check → last subscribe, unix seconds (0 for nodes not from subscriptions); pid/uid/gid → 0
 *   (uWSGI fills them only from SCM_CREDENTIALS on unix sockets); requests → attempts dispatched to the
 *   address; last_requests → attempts since the node's last announcement; tx → bytes read from the node,
 *   rx → bytes written to it (named from the node's side, as uWSGI); cores, load → as announced; weight;
 *   backup, proto (master; "u" uwsgi, "h" http); wrr → 0 (Switchyard's smooth WRR keeps no per-node
 *   countdown); ref → requests in flight on the node for this key; failcnt → failed attempts;
 *   death_mark → 1 while draining.
 * Pool: key; hash → uWSGI's djb33x(key) % 65535; hits → attempts dispatched for the key; sni_enabled → 0.
 * requests, tx/rx and failcnt are per address (a node serving several keys shows the same numbers in each).
 *
 * Long-lived: constructor does no I/O; start() binds (SY_BIND_FAILED names --http-stats); close() is
 * safe twice.
 */
import net from 'node:net';
import { formatAddress, parseListenAddress, type Router, RouterError, STATIC_KEY } from '@switchyard/router';
import type { RegisteredNode, SubscriptionRegistry, TableEvent } from '@switchyard/subscription-server';
import type { Logger } from 'pino';

export interface UwsgiStatsServerOptions {
  readonly listen: string;
  readonly router: Router;
  readonly registry: SubscriptionRegistry;
  /** Where HTTP is served (the workers' shared listeners with `--workers`). Default: the router's. */
  readonly httpAddresses?: () => readonly { address: string; port: number }[];
  /** Subscription-server addresses, `host:port` (listed in `http` after the router's). */
  readonly subscriptionAddresses: () => readonly string[];
  readonly version: string;
  readonly logger: Logger;
}

export interface UwsgiStatsNode {
  name: string;
  vassal: string;
  modifier1: number;
  modifier2: number;
  last_check: number;
  pid: number;
  uid: number;
  gid: number;
  requests: number;
  last_requests: number;
  tx: number;
  rx: number;
  cores: number;
  load: number;
  weight: number;
  backup: number;
  proto: string;
  wrr: number;
  ref: number;
  failcnt: number;
  death_mark: number;
}

export interface UwsgiStatsPool {
  key: string;
  hash: number;
  hits: number;
  sni_enabled: number;
  algo: string;
  nodes: UwsgiStatsNode[];
}

export interface UwsgiStatsDocument {
  version: string;
  pid: number;
  uid: number;
  gid: number;
  cwd: string;
  active_sessions: number;
  http: string[];
  static_nodes?: { name: string; hits: number; grace: number }[];
  subscriptions: UwsgiStatsPool[];
  cheap: number;
}

/** uWSGI's djb33x hash (C `char` is signed, so bytes ≥ 0x80 are sign-extended) modulo 0xffff. */
export function uwsgiKeyHash(key: string): number {
  let hash = 5381;
  for (const byte of Buffer.from(key, 'utf8')) {
    const c = byte >= 0x80 ? (byte - 256) >>> 0 : byte;
    hash = (((((hash << 5) >>> 0) + hash) >>> 0) ^ c) >>> 0;
  }
  return hash % 0xffff;
}

export class UwsgiStatsServer {
  private readonly options: UwsgiStatsServerOptions;
  private readonly logger: Logger;
  private readonly server: net.Server;
  /** Requests of an address when its (key, address) node was last announced: for last_requests. */
  private readonly baselines = new Map<string, number>();
  private unsubscribe: (() => void) | undefined;
  private started = false;
  private closing: Promise<void> | undefined;

  constructor(options: UwsgiStatsServerOptions) {
    this.options = options;
    this.logger = options.logger.child({ component: 'uwsgi-stats' });
    this.server = net.createServer((socket) => {
      socket.on('error', () => socket.destroy());
      socket.setTimeout(5000, () => socket.destroy());
      socket.end(`${JSON.stringify(this.snapshot(), null, '\t')}\n`);
    });
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const bind = parseListenAddress(this.options.listen);
    if (bind === undefined)
      throw new RouterError('SY_BAD_CONFIG', `invalid --http-stats address "${this.options.listen}"`);
    this.unsubscribe = this.options.registry.onEvent((event) => this.track(event));
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen({ host: bind.host, port: bind.port }, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      this.unsubscribe();
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new RouterError('SY_BIND_FAILED', `cannot listen on ${this.options.listen} (--http-stats): ${code}`, {
        cause: error,
      });
    }
    const a = this.address()!;
    this.logger.info({ listen: formatAddress(a.address, a.port) }, 'uWSGI stats server listening');
  }

  address(): net.AddressInfo | undefined {
    return (this.server.address() as net.AddressInfo | null) ?? undefined;
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.unsubscribe?.();
      if (!this.server.listening) resolve();
      else this.server.close(() => resolve());
    });
    return this.closing;
  }

  private track(event: TableEvent): void {
    const id = `${event.node.key}\0${event.node.address}`;
    if (event.type === 'removed' || event.type === 'expired') this.baselines.delete(id);
    else if (event.type !== 'draining') {
      this.baselines.set(id, this.options.router.runtime.stats(event.node.address)?.requests ?? 0);
    }
  }

  /** The stats document as uWSGI's router would write it now. */
  snapshot(): UwsgiStatsDocument {
    const { router, registry } = this.options;
    const listen = (this.options.httpAddresses?.() ?? router.addresses()).map((a) => formatAddress(a.address, a.port));
    const statics = router.table.get(STATIC_KEY);
    // Key order as uWSGI writes it: static_nodes (when any) between http and subscriptions.
    const doc: UwsgiStatsDocument = {
      version: this.options.version,
      pid: process.pid,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      cwd: process.cwd(),
      active_sessions: router.stats().inFlight,
      http: [...listen, ...this.options.subscriptionAddresses()],
      ...(statics === undefined
        ? {}
        : {
            static_nodes: statics.nodes.map((n) => ({
              name: n.address,
              hits: router.runtime.stats(n.address)?.requests ?? 0,
              grace: 0,
            })),
          }),
      subscriptions: [],
      cheap: 0,
    };
    for (const entry of router.table.entries()) {
      const registered = new Map<string, RegisteredNode>();
      for (const r of registry.get(entry.key) ?? []) registered.set(r.address, r);
      const nodes = entry.nodes.map((n): UwsgiStatsNode => {
        const r = registered.get(n.address);
        const runtime = router.runtime.stats(n.address);
        const requests = runtime?.requests ?? 0;
        const baseline = this.baselines.get(`${entry.key}\0${n.address}`) ?? 0;
        return {
          name: n.address,
          vassal: r?.announcement.vassal ?? '',
          modifier1: n.modifier1,
          modifier2: n.modifier2,
          last_check: r === undefined ? 0 : Math.floor(r.lastSeen / 1000),
          pid: 0,
          uid: 0,
          gid: 0,
          requests,
          last_requests: Math.max(0, requests - baseline),
          tx: runtime?.bytesIn ?? 0,
          rx: runtime?.bytesOut ?? 0,
          cores: r?.cores ?? 0,
          load: r?.load ?? 0,
          weight: n.weight,
          backup: n.backup,
          proto: n.protocol === 'http' ? 'h' : 'u',
          wrr: 0,
          ref: router.runtime.inFlightFor(entry.key, n.address),
          failcnt: runtime?.failures ?? 0,
          death_mark: n.state === 'draining' ? 1 : 0,
        };
      });
      doc.subscriptions.push({
        key: entry.key,
        hash: uwsgiKeyHash(entry.key),
        hits: router.runtime.hitsFor(entry.key),
        sni_enabled: 0,
        algo: registered.values().next().value?.algo ?? router.balancer.name,
        nodes,
      });
    }
    return doc;
  }
}
