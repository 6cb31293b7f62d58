/**
 * One Switchyard process: subscription server + registry → router table, router listeners, admin API.
 * Data flows one way: packet → decode → verify → registry → table event → router entry. The router
 * reports drained nodes back (no request in flight any more) and the registry then removes them.
 *
 * Long-lived: the constructor does no I/O; `start()` binds everything or nothing (on a failure whatever
 * was already bound is closed and the error, SY_BIND_FAILED naming the address and option, is rethrown);
 * `close()` stops accepting, drains in-flight requests (bounded by `shutdownTimeout`) and is safe twice.
 *
 * The subscription server and the admin API are optional (`--subscription-server off`, `--admin off`):
 * then `subscriptions` / `admin` are undefined, nothing is bound for them, and the registry and router
 * work as usual with static (`--http-to`, `--spawn`) nodes (and admin-added ones when the admin API is on).
 */
import { AdminServer, ClusterRuntime, formatAddress, Router, type VhostNode } from '@switchyard/router';
import {
  parseUpstreamTarget,
  type RegisteredNode,
  Resubscriber,
  SubscriptionRegistry,
  type SubscriptionSecurity,
  SubscriptionServer,
  type TableEvent,
} from '@switchyard/subscription-server';
import type { Logger } from 'pino';
import type { SwitchyardConfig } from './cli-options.js';
import { OperatorWiring } from './operator-wiring.js';
import { dropPrivileges, type ProcessIds } from './privilege-drop.js';
import { routerOptionsFor } from './router-settings.js';
import { SubscriptionCertificates } from './sni-subscriptions.js';
import { createSubscriptionSecurity } from './subscription-security-wiring.js';
import { TableChangeLog } from './table-change-log.js';
import { type CompatComponents, createCompatComponents } from './uwsgi-compat-wiring.js';
import { WorkerCluster, type WorkerClusterOptions } from './worker-cluster.js';

export interface SwitchyardAppOptions {
  readonly config: SwitchyardConfig;
  readonly logger: Logger;
  /** ms clock, injected for tests. */
  readonly clock?: () => number;
  /**
   * The router arguments (`switchyard ...` without node and script) that `--workers N` (N > 1) workers
   * are started with. Without it the process serves HTTP itself whatever `workers` says (in-process use).
   */
  readonly workerArgv?: readonly string[];
  /** Cluster timings and sizes (worker-cluster.ts defaults; tests use small values). */
  readonly workerTuning?: Pick<WorkerClusterOptions, 'snapshotChunk' | 'stallMs' | 'startTimeoutMs'>;
  /** The process id functions `--uid`/`--gid` use (default node:process; injected in tests). */
  readonly processIds?: ProcessIds;
}

export class SwitchyardApp {
  readonly router: Router;
  readonly registry: SubscriptionRegistry;
  /** Undefined for `--subscription-server off`: no UDP socket, no intake. */
  readonly subscriptions: SubscriptionServer | undefined;
  readonly security: SubscriptionSecurity;
  /** `--http-resubscribe`: accepted packets sent on to other routers; undefined without targets. */
  readonly resubscriber: Resubscriber | undefined;
  /** Undefined for `--admin off`: no admin listener, hence no /v1 API and no /metrics. */
  readonly admin: AdminServer | undefined;
  /** uWSGI compatibility: `--http-stats` server and `--spawn` workers (uwsgi-compat-wiring.ts). */
  readonly compat: CompatComponents;
  /** sni_crt/sni_key/sni_ca of verified subscriptions → router certificates (sni-subscriptions.ts). */
  readonly sni: SubscriptionCertificates;
  /** Event log feeds, access log, admin API view of the registry (operator-wiring.ts). */
  readonly operator: OperatorWiring;
  /** `--workers N` (N > 1): the HTTP worker processes replicating this process's table. */
  readonly cluster: WorkerCluster | undefined;
  private readonly config: SwitchyardConfig;
  private readonly logger: Logger;
  private readonly processIds: ProcessIds | undefined;
  /** One info line per table change, bounded per second (table-change-log.ts). */
  private readonly tableLog: TableChangeLog;
  private ready = false;
  private closing: Promise<void> | undefined;
  /** Every listener of this process, read once start() has bound them all. */
  private boundListeners: readonly { address: string; port: number }[] | undefined;

  constructor(options: SwitchyardAppOptions) {
    const { config, logger } = options;
    this.config = config;
    this.logger = logger;
    this.processIds = options.processIds;
    const clock = options.clock ?? Date.now;
    this.tableLog = new TableChangeLog(logger, clock);
    const clustered = config.workers > 1 && options.workerArgv !== undefined;
    this.router = new Router({
      ...routerOptionsFor(config, logger, clock, !clustered),
      ...(clustered ? { runtime: new ClusterRuntime() } : {}),
    });
    this.cluster = clustered
      ? new WorkerCluster({
          count: config.workers,
          argv: options.workerArgv ?? [],
          router: this.router,
          logger,
          shutdownGraceMs: config.shutdownTimeout * 1000,
          ...options.workerTuning,
        })
      : undefined;
    this.registry = new SubscriptionRegistry({
      clock,
      toleranceMs: Math.round(config.subscriptionTolerance * 1000),
      maxNodesPerHost: config.maxNodesPerHost,
      maxHosts: config.maxHosts,
      logger,
    });
    this.security = createSubscriptionSecurity(config.security, {
      clock,
      logger,
      maxHosts: config.maxHosts,
      // Read per datagram: once everything is bound the list is kept (each read costs getsockname calls).
      ownListeners: () => this.boundListeners ?? this.listeners(),
    });
    this.resubscriber =
      config.compat.resubscribe.length === 0 || config.subscriptionServer.length === 0
        ? undefined
        : new Resubscriber({ targets: config.compat.resubscribe, logger });
    this.subscriptions =
      config.subscriptionServer.length === 0
        ? undefined
        : new SubscriptionServer({
            binds: [...config.subscriptionServer],
            registry: this.registry,
            logger,
            mountpoints: config.compat.mountpoints,
            verifier: this.security,
            admission: this.security,
            acknowledger: this.security,
            ...(this.resubscriber === undefined ? {} : { forwarder: this.resubscriber }),
          });
    this.operator = new OperatorWiring(config.operator, {
      router: this.router,
      registry: this.registry,
      subscriptions: this.subscriptions,
      toVhostNode: (node) => toVhostNode(node, this.registry),
    });
    const operatorAdmin = this.operator.adminOptions();
    const cluster = this.cluster;
    const subscriptions = this.subscriptions;
    this.admin =
      config.admin === undefined
        ? undefined
        : new AdminServer({
            ...operatorAdmin,
            ...(cluster === undefined
              ? {}
              : {
                  metrics: () => [...(operatorAdmin.metrics?.() ?? []), ...cluster.families()],
                  remoteMetrics: () => cluster.metrics(),
                }),
            listen: config.admin,
            router: this.router,
            ready: () => this.ready && this.closing === undefined,
            stats: () => ({
              ...(subscriptions === undefined ? {} : { subscriptions: subscriptions.stats() }),
              registry: this.registry.metrics(),
              subscriptionSecurity: this.security.stats(),
              ...(cluster === undefined ? {} : { ...cluster.reports.trafficStats(), workers: cluster.stats() }),
            }),
            logger,
          });
    for (const node of config.httpTo) {
      const target = parseUpstreamTarget(node.address)!;
      this.router.addStaticNode({
        address: node.address,
        target,
        protocol: node.protocol,
        weight: 1,
        modifier1: 0,
        modifier2: 0,
        backup: 0,
      });
    }
    this.compat = createCompatComponents(config, {
      router: this.router,
      httpAddresses: () => this.httpAddresses(),
      registry: this.registry,
      subscriptions: this.subscriptions,
      logger,
      clock,
    });
    this.sni = new SubscriptionCertificates({
      store: this.router.certificates,
      allowed: () => this.security.signing,
      hostExists: (key) => this.router.table.get(key) !== undefined,
      logger,
    });
    this.registry.onEvent((event) => this.applyEvent(event));
    // Only a drained subscription leaves the registry; an operator-drained one is held (operator-control.ts).
    this.router.onNodeDrained((key, address) => {
      if (this.router.ops.operator.releases(key, address)) this.registry.remove(key, address, 'drained');
    });
  }

  /** Registry event → router table. */
  private applyEvent(event: TableEvent): void {
    const node = event.node;
    switch (event.type) {
      case 'added':
      case 'updated':
        this.router.upsertNode(toVhostNode(node, this.registry), node.algo);
        if (node.state === 'draining') this.router.setNodeState(node.key, node.address, 'draining');
        break;
      case 'draining':
        this.router.setNodeState(node.key, node.address, 'draining');
        break;
      case 'removed':
      case 'expired':
        this.router.removeNode(node.key, node.address, 'subscription');
        break;
      case 'refreshed':
        break;
    }
    this.sni.apply(event);
    this.tableLog.record(event);
  }

  /**
   * Binds everything, then switches to `--uid`/`--gid` (SY_PRIVILEGE_DROP_FAILED when it cannot: then
   * everything is closed again and the error rethrown).
   */
  async start(): Promise<void> {
    let ids: { uid: number; gid: number };
    try {
      await this.security.start();
      await this.resubscriber?.start();
      await this.subscriptions?.start();
      await this.operator.start();
      await this.router.start();
      await this.cluster?.start();
      await this.compat.start();
      await this.admin?.start();
      // Last: everything (HTTP/HTTPS, UDP, admin, stats, the cluster's shared listeners) is bound, so
      // nothing needs root any more. --workers workers drop by themselves (router-worker.ts).
      ids = dropPrivileges(this.config.privileges, this.processIds);
    } catch (error) {
      await this.shutdown();
      throw error;
    }
    this.boundListeners = this.listeners();
    this.registry.start();
    this.ready = true;
    const admin = this.admin?.address();
    this.logger.info(
      {
        component: 'switchyard',
        http: this.httpAddresses().map((a) => formatAddress(a.address, a.port)),
        https: this.httpsAddresses().map((a) => formatAddress(a.address, a.port)),
        ...(this.cluster === undefined ? {} : { workers: this.config.workers }),
        subscriptionServer: [
          ...this.subscriptionAddresses().map((a) => formatAddress(a.address, a.port)),
          ...(this.subscriptions?.unixPaths() ?? []),
        ],
        admin: admin === undefined ? undefined : formatAddress(admin.address, admin.port),
        uid: ids.uid,
        gid: ids.gid,
      },
      'switchyard ready',
    );
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.ready = false;
    await this.subscriptions?.close();
    await this.resubscriber?.close();
    await this.security.close();
    await this.cluster?.close();
    await this.router.close();
    await this.operator.close();
    await this.compat.close();
    await this.registry.close();
    this.tableLog.close();
    await this.admin?.close();
  }

  get configuration(): SwitchyardConfig {
    return this.config;
  }

  /** Where HTTP is served: this process's listeners, or the workers' shared ones (`--workers`). */
  httpAddresses(): readonly { address: string; port: number; family: string }[] {
    return this.cluster === undefined ? this.router.addresses() : this.cluster.addresses().http;
  }

  httpsAddresses(): readonly { address: string; port: number; family: string }[] {
    return this.cluster === undefined ? this.router.httpsAddresses() : this.cluster.addresses().https;
  }

  /** Where subscriptions are read: empty before start(), after close() and for `--subscription-server off`. */
  subscriptionAddresses(): readonly { address: string; port: number; family: string }[] {
    return this.subscriptions?.addresses() ?? [];
  }

  /** Where the admin API (and /metrics) listens: undefined before start(), after close() and for `--admin off`. */
  adminAddress(): { address: string; port: number } | undefined {
    return this.admin?.address();
  }

  /** The addresses this process listens on (HTTP, HTTPS, subscriptions, admin). */
  private listeners(): { address: string; port: number }[] {
    return [
      ...this.httpAddresses(),
      ...this.httpsAddresses(),
      ...this.subscriptionAddresses(),
      ...[this.adminAddress()].filter((a) => a !== undefined),
    ];
  }
}

/** The router's view of a registered node; the target is shared by every node with that address. */
function toVhostNode(node: RegisteredNode, registry: SubscriptionRegistry): VhostNode {
  return {
    key: node.key,
    address: node.address,
    target: registry.targetOf(node.address)!,
    protocol: node.protocol,
    weight: node.weight,
    modifier1: node.modifier1,
    modifier2: node.modifier2,
    backup: node.backup,
    source: 'subscription',
    state: node.state,
  };
}
