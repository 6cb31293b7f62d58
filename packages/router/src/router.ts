/**
 * The HTTP router: the composition of the vhost table, balancing, upstream pools and the request path
 * (per-request ProxyExchange); listeners are in http-listeners.ts, coded error responses in
 * error-responder.ts, options in router-options.ts. Long-lived: constructor does no I/O; `start()` binds
 * every listener or none (SY_BIND_FAILED names the address); `close()` drains and is safe twice.
 *
 * Draining a node: `setNodeState(key, address, 'draining')` stops new picks at once (the next entry has
 * it out of `live`); in-flight requests finish; when the last one for (key, address) ends — or at once
 * if none was in flight — `onNodeDrained` listeners are told, and the owner removes the node.
 *
 * Shutdown (`close`): listeners stop accepting, idle client connections close, every later response
 * carries `Connection: close`, in-flight requests get `shutdownGraceMs` (default 10 s) to finish, then
 * the remaining connections are closed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import { type Logger, pino } from 'pino';
import type { Balancer, BalancerContext } from './balancer.js';
import { Balancing, type LifecycleState, type RouteExplanation } from './balancing.js';
import { CertificateStore } from './certificate-store.js';
import { ClientConnections } from './client-connections.js';
import { type ClientLimits, resolveClientLimits } from './client-limits.js';
import { ErrorResponder } from './error-responder.js';
import { RouterError, type UpstreamError } from './errors.js';
import type { ExchangeEnvironment } from './exchange-environment.js';
import { ForwardingPolicy } from './forwarding-policy.js';
import type { HostRecord } from './host-policy.js';
import { HttpListeners, type ListenerHandler } from './http-listeners.js';
import { NodeFailureLog } from './node-failure-log.js';
import { NodeRuntime } from './node-runtime.js';
import { ProxyExchange } from './proxy-exchange.js';
import { RequestBodyWatch } from './request-body-watch.js';
import { type GuardedRequest, guardRequest } from './request-guard.js';
import type { RequestRecord } from './request-record.js';
import { RouterOperations } from './router-operations.js';
import type { RouterOptions, RouterStats } from './router-options.js';
import { TunnelRegistry } from './tunnel-registry.js';
import { startUpgrade, type UpgradeEnvironment } from './upgrade-exchange.js';
import type { UpstreamPhase, UpstreamTimeouts } from './upstream-connection.js';
import { UpstreamPool } from './upstream-pool.js';
import { type HostEntry, type NodeState, STATIC_KEY, type VhostNode, VhostTable } from './vhost-table.js';

/** Re-exported: the options and counters, in router-options.ts, stay importable from here. */
export type { RouterOptions, RouterStats } from './router-options.js';

type DrainListener = (key: string, address: string) => void;

export class Router implements ExchangeEnvironment, UpgradeEnvironment, ListenerHandler {
  readonly table: VhostTable;
  /** Open WebSocket tunnels and their drain deadlines. */
  readonly tunnels: TunnelRegistry;
  /** SNI certificates of the HTTPS listeners (`offer`/`withdraw` for subscription certificates). */
  readonly certificates: CertificateStore;
  readonly tunnelIdleMs: number;
  readonly runtime: NodeRuntime;
  /** The default balancer (hosts without their own: `balancerFor`). */
  readonly balancer: Balancer;
  /** Per-host balancers, pools, outlier ejection, slow start, retry budget (balancing.ts). */
  readonly balancing: Balancing;
  readonly pool: UpstreamPool;
  readonly timeouts: UpstreamTimeouts;
  readonly maxAttempts: number;
  readonly maxBufferedBody: number;
  readonly serverName: string;
  readonly extraVars: readonly (readonly [string, string])[];
  readonly modifier1: number;
  readonly modifier2: number;
  /** Client limits and timeouts (client-limits.ts), resolved once. */
  readonly limits: ClientLimits;
  /** Forwarded headers and trusted proxies (forwarding-policy.ts). */
  readonly forwarding: ForwardingPolicy;
  /** Client connection count, parse errors, CONNECT (client-connections.ts). */
  readonly connections: ClientConnections;
  /** Host policies, event log, health hooks, operator writes, request metrics, access log. */
  readonly ops: RouterOperations;
  private readonly options: RouterOptions;
  private readonly logger: Logger;
  private readonly clock: () => number;
  /** Coded error responses and their counts by code (error-responder.ts). */
  private readonly errorResponder: ErrorResponder;
  private readonly failureLog: NodeFailureLog;
  /** HTTP and HTTPS client listeners (http-listeners.ts). */
  private readonly listeners: HttpListeners;
  private readonly drainListeners: DrainListener[] = [];
  /** `errors` is the ErrorResponder's count table (the same object). */
  private readonly counters: RouterStats;
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  private closing: Promise<void> | undefined;
  private started = false;
  /** The exchange being started, for handleRequestSafely (the request path is synchronous up to there). */
  private startingExchange: ProxyExchange | undefined;
  private remoteBusy: ((key: string, address: string) => boolean) | undefined;
  private remoteStats: (() => readonly (RouterStats & { inFlight: number })[]) | undefined;

  constructor(options: RouterOptions) {
    this.options = options;
    this.runtime = options.runtime ?? new NodeRuntime();
    this.logger = (options.logger ?? pino({ enabled: false })).child({ component: 'router' });
    this.clock = options.clock ?? Date.now;
    const retryAfterSeconds = options.retryAfterSeconds ?? 1;
    this.errorResponder = new ErrorResponder({ logger: this.logger, retryAfterSeconds, router: this });
    this.failureLog = new NodeFailureLog({ logger: this.logger, clock: this.clock });
    this.counters = { requests: 0, responses: 0, errors: this.errorResponder.counts, retries: 0, upstreamFailures: 0 };
    // First: the components built below may read the table.
    this.table = new VhostTable(options.lookup);
    this.balancing = new Balancing({
      lookup: (key) => this.table.get(key),
      runtime: this.runtime,
      clock: this.clock,
      logger: this.logger,
      ...(options.balancing === undefined ? {} : { options: options.balancing }),
      ...(options.balancer === undefined ? {} : { defaultBalancer: options.balancer }),
    });
    this.balancer = this.balancing.defaultBalancer;
    this.timeouts = {
      connectMs: options.connectTimeoutMs ?? 5000,
      idleMs: options.upstreamTimeoutMs ?? 60_000,
      responseHeaderMs: options.responseHeaderTimeoutMs ?? 60_000,
    };
    this.limits = resolveClientLimits(options);
    this.forwarding = new ForwardingPolicy(options);
    this.connections = new ClientConnections({
      maxConnections: this.limits.maxConnections,
      retryAfterSeconds,
      countError: (code) => this.errorResponder.count(code),
    });
    this.pool = new UpstreamPool(this.timeouts);
    this.maxAttempts = options.maxAttempts ?? 3;
    this.maxBufferedBody = options.maxBufferedBody ?? 16 * 1024 * 1024;
    this.serverName = options.serverName ?? os.hostname();
    this.extraVars = options.extraVars ?? [];
    this.modifier1 = options.modifier1 ?? 0;
    this.modifier2 = options.modifier2 ?? 0;
    this.ops = new RouterOperations(this, { clock: this.clock, retryAfterSeconds }, options.operations);
    this.balancing.reportTo(this.ops.health);
    this.tunnels = new TunnelRegistry({
      logger: this.logger,
      ...(options.drainDeadlineMs === undefined ? {} : { drainDeadlineMs: options.drainDeadlineMs }),
      ...(options.hostDrainDeadlines === undefined ? {} : { hostDrainDeadlines: options.hostDrainDeadlines }),
    });
    this.certificates = new CertificateStore({ ...options.certificates, logger: this.logger, clock: this.clock });
    this.tunnelIdleMs = options.tunnelIdleTimeoutMs ?? 300_000;
    this.listeners = new HttpListeners({
      http: options.http,
      https: options.https,
      defaultCertificate: options.defaultCertificate,
      requestClientCertificates: options.requestClientCertificates === true,
      certificates: this.certificates,
      limits: this.limits,
      connections: this.connections,
      handler: this,
      logger: this.logger,
      proxyProtocol: options.proxyProtocol === true,
      onProxyRejected: (reason) => {
        this.errorResponder.count('SY_BAD_PROXY_HEADER');
        this.logger.debug({ code: 'SY_BAD_PROXY_HEADER', reason }, 'connection closed: no valid PROXY header');
      },
    });
  }

  /** Binds every listener; on any failure closes those already bound and rejects with SY_BIND_FAILED. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.ops.operator.start();
    await this.listeners.start();
  }

  /** Bound plain-HTTP listener addresses. */
  addresses(): AddressInfo[] {
    return this.listeners.addresses();
  }

  /** Bound HTTPS listener addresses. */
  httpsAddresses(): AddressInfo[] {
    return this.listeners.httpsAddresses();
  }

  // --- table management (called by the composition: subscriptions, static nodes, admin) --------

  /** A source (subscription, composition) wants this node in the table; operator precedence applies. */
  upsertNode(incoming: VhostNode, algo?: string): void {
    const node = this.ops.operator.admit(incoming);
    if (node === undefined) return;
    const before = this.table.get(node.key);
    this.table.upsert(node);
    this.balancing.nodeUpserted(before, node, algo);
    this.tunnels.nodeState(node.key, node.address, node.state);
  }

  /** Static (`--http-to`) node: serves every Host that matches no virtual host. */
  addStaticNode(node: Omit<VhostNode, 'key' | 'source' | 'state'>): void {
    this.table.upsert({ ...node, key: STATIC_KEY, source: 'static', state: 'active' });
  }

  /** A source changes a node's state; an operator drain still wins (operator-control.ts). */
  setNodeState(key: string, address: string, state: NodeState): void {
    this.applyNodeState(key, address, this.ops.operator.admitState(key, address, state));
  }

  /** Sets a node's effective state as given (no operator logic). */
  applyNodeState(key: string, address: string, state: NodeState): void {
    const node = this.table.setState(key, address, state);
    if (node !== undefined) this.tunnels.nodeState(key, address, state);
    if (node !== undefined && state === 'draining' && this.runtime.ownInFlightFor(key, address) === 0) {
      queueMicrotask(() => this.emitDrainedIfIdle(key, address));
    }
  }

  /** Removes a node; with `source`, only if the node in the table comes from that source (admin nodes win). */
  removeNode(key: string, address: string, source?: VhostNode['source']): void {
    if (source !== undefined && this.table.node(key, address)?.source !== source) return;
    if (this.table.remove(key, address) !== undefined) {
      this.ops.nodeRemoved(key, address);
      this.balancing.nodeRemoved(key, address, this.table.get(key) === undefined);
      this.runtime.forget(address);
      if (this.table.get(key) === undefined) this.runtime.forgetKey(key);
    }
  }

  /** Registers a listener told when a draining node has no request in flight any more. */
  onNodeDrained(listener: DrainListener): () => void {
    this.drainListeners.push(listener);
    return () => {
      const i = this.drainListeners.indexOf(listener);
      if (i >= 0) this.drainListeners.splice(i, 1);
    };
  }

  /**
   * Cluster primary (`--workers`): drained listeners also wait until `busy` says no other process has
   * requests in flight to the node; the primary then calls `remoteDrained` (worker-cluster.ts).
   */
  setRemoteDrainGate(busy: (key: string, address: string) => boolean): void {
    this.remoteBusy = busy;
  }

  /** The other processes have no request in flight to a draining node any more. */
  remoteDrained(key: string, address: string): void {
    this.emitDrainedIfIdle(key, address);
  }

  private emitDrainedIfIdle(key: string, address: string): void {
    const node = this.table.node(key, address);
    if (node?.state !== 'draining' || this.runtime.ownInFlightFor(key, address) > 0) return;
    if (this.remoteBusy?.(key, address) === true) return;
    for (const listener of this.drainListeners) listener(key, address);
  }

  /** Counters of this process and, in a cluster primary, of its workers (as last reported). */
  stats(): Readonly<RouterStats> & { inFlight: number; hosts: number; nodes: number } {
    const own = this.ownStats();
    const remote = this.remoteStats?.();
    if (remote === undefined || remote.length === 0) return own;
    const sum = { ...own, errors: { ...own.errors } };
    for (const r of remote) {
      sum.requests += r.requests;
      sum.responses += r.responses;
      sum.retries += r.retries;
      sum.upstreamFailures += r.upstreamFailures;
      sum.inFlight += r.inFlight;
      for (const [code, n] of Object.entries(r.errors)) sum.errors[code] = (sum.errors[code] ?? 0) + n;
    }
    return sum;
  }

  /** Counters of this process only (what its /metrics families report). */
  ownStats(): Readonly<RouterStats> & { inFlight: number; hosts: number; nodes: number } {
    return { ...this.counters, inFlight: this.active, hosts: this.table.hostCount, nodes: this.table.nodeCount };
  }

  /** Cluster primary: `stats()` adds these workers' counters (worker-cluster.ts). */
  setRemoteStats(read: () => readonly (RouterStats & { inFlight: number })[]): void {
    this.remoteStats = read;
  }

  // --- balancing (balancing.ts; the admin API reads and writes through these) ------------------

  /** The balancer host `key` uses when no admin host policy names one. */
  balancerFor(key: string): Balancer {
    return this.balancing.balancerFor(key);
  }

  /** Sets (undefined: clears) host `key`'s balancer by name; throws RouterError SY_UNKNOWN_BALANCER. */
  setHostBalancer(key: string, name: string | undefined): Balancer {
    return this.balancing.setHostBalancer(key, name, 'admin');
  }

  /** `joining` (slow start), `active` or `draining`; undefined when the node is not in the table. */
  lifecycleState(key: string, address: string): LifecycleState | undefined {
    return this.balancing.lifecycleState(key, address);
  }

  /** Candidate order and reason for a request to `entry` now, without advancing any balancer state. */
  explainRoute(entry: HostEntry, context: BalancerContext, balancer?: Balancer): RouteExplanation {
    return this.balancing.explain(entry, context, balancer);
  }

  /** ms on the router clock (attempt latency for p2c-ewma). */
  now(): number {
    return this.clock();
  }

  /** A node answered an attempt with a response head (`latencyMs` after dispatch). */
  nodeResponded(key: string, node: VhostNode, status: number, latencyMs: number): void {
    this.balancing.responded(key, node.address, status, latencyMs);
  }

  /** May an exchange retry on another node? Connect failures: always; others: the retry budget. */
  retryAllowed(_key: string, phase: UpstreamPhase): boolean {
    return phase === 'connect' || this.balancing.retryAllowed();
  }

  // --- request path -----------------------------------------------------------------------------

  /**
   * Listener entry point (http-listeners.ts). A throw from the request path (a bug) is logged and answered
   * 500 SY_INTERNAL; it never crashes the process.
   */
  handleRequestSafely(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    const counted = this.counters.requests;
    try {
      this.handleRequest(req, res, expectContinue);
    } catch (error) {
      this.logger.error({ err: error, method: req.method, url: req.url }, 'request handler failed');
      const failure = new RouterError('SY_INTERNAL', 'internal error', { cause: error });
      const exchange = this.startingExchange;
      this.startingExchange = undefined;
      // An exchange ends (and is accounted) once; before one exists, the request is accounted here.
      if (exchange !== undefined) {
        exchange.abort(failure);
        return;
      }
      const answered = res.writableEnded || res.destroyed;
      try {
        this.respondError(req, res, failure, undefined);
      } catch {
        res.destroy();
      }
      if (!answered && this.counters.requests > counted) this.requestDone();
    }
  }

  private handleRequest(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    // A connection over --max-connections was answered 503 already: nothing on it is served.
    if (this.connections.isRefused(req.socket)) {
      res.destroy();
      return;
    }
    this.counters.requests++;
    this.active++;
    const startedAt = performance.now();
    this.connections.track(req, res, (error) => this.respondError(req, res, error, undefined));
    const guarded = this.guard(req);
    if (guarded instanceof RouterError) {
      this.refuse(req, res, guarded, undefined, req.url ?? '', startedAt, undefined);
      return;
    }
    const host = guarded.host;
    const found = this.table.lookup(host?.host, host?.port === undefined ? undefined : host.key, guarded.target);
    // One Map lookup: the host's policy and counters (router-operations.ts).
    const record = this.ops.hostRecord(found?.entry.key, host?.key, host?.host);
    if (
      record?.policy !== undefined &&
      this.ops.intercept(req, res, record, guarded.target, guarded.contentLength, startedAt)
    ) {
      this.requestDone();
      return;
    }
    if (found === undefined) {
      const error =
        host === undefined
          ? new RouterError('SY_BAD_HOST', 'request has no Host')
          : new RouterError('SY_NO_VHOST', `no virtual host for ${host.key}`);
      this.refuse(req, res, error, host?.key, guarded.target, startedAt, undefined);
      return;
    }
    const refused = host === undefined ? undefined : this.admitTls(req, host.host);
    if (refused !== undefined) {
      this.refuse(req, res, refused, found.entry.key, guarded.target, startedAt, record);
      return;
    }
    // Body limits (client-limits.ts): a Content-Length over the limit is refused before dispatch.
    const maxBody = record?.policy?.maxBodyBytes ?? (this.limits.maxBodySize || Number.POSITIVE_INFINITY);
    if (guarded.bodyMode === 'length' && guarded.contentLength > maxBody) {
      const error = new RouterError('SY_BODY_TOO_LARGE', `Content-Length over ${maxBody} bytes`);
      this.refuse(req, res, error, found.entry.key, guarded.target, startedAt, record);
      return;
    }
    const remote = req.socket.remoteAddress ?? '';
    this.balancing.requestStarted();
    const exchange = new ProxyExchange(this, {
      req,
      res,
      entry: found.entry,
      target: guarded.target,
      host: guarded.rawHost,
      clientAddress: remote.startsWith('::ffff:') ? remote.slice(7) : remote,
      bodyMode: guarded.bodyMode,
      contentLength: guarded.contentLength,
      startedAt,
      hostRecord: record!, // defined whenever an entry matched
    });
    const abort = (error: RouterError) => exchange.abort(error);
    this.connections.track(req, res, abort);
    if (guarded.bodyMode !== 'none') {
      new RequestBodyWatch(req, { maxBytes: maxBody, idleMs: this.limits.bodyTimeoutMs }, abort);
    }
    if (expectContinue) res.writeContinue();
    this.startingExchange = exchange;
    exchange.start();
    this.startingExchange = undefined;
  }

  /** Answers a request the router refuses itself (coded error), accounts it in the access log and metrics, ends it. */
  private refuse(
    req: IncomingMessage,
    res: ServerResponse,
    error: RouterError,
    hostKey: string | undefined,
    target: string,
    startedAt: number,
    record: HostRecord | undefined,
  ): void {
    const bytes = this.respondError(req, res, error, hostKey);
    this.ops.finishLocal(req, hostKey, target, res.statusCode, bytes, error.code, startedAt, record);
    this.requestDone();
  }

  nodeEnded(key: string, address: string): void {
    if (this.runtime.end(key, address) === 0 && this.table.node(key, address)?.state === 'draining') {
      this.emitDrainedIfIdle(key, address);
    }
    this.balancing.attemptEnded(address);
  }

  nodeFailed(key: string, node: VhostNode, error: UpstreamError): void {
    this.counters.upstreamFailures++;
    this.ops.metrics.upstreamError(error.code);
    this.runtime.failure(node.address, this.clock());
    this.balancing.failed(key, node.address);
    this.failureLog.failed(key, node.address, error);
  }

  retried(_key: string, _node: VhostNode): void {
    this.counters.retries++;
  }

  /** Writes the coded error response (error-responder.ts); returns the body bytes written (0 when the response had begun). */
  respondError(req: IncomingMessage, res: ServerResponse, error: RouterError, hostKey: string | undefined): number {
    return this.errorResponder.respond(req, res, error, hostKey);
  }

  exchangeEnded(exchange: ProxyExchange, error: RouterError | undefined): void {
    this.ops.finish(exchange, error === undefined ? 'OK' : error.code);
    this.requestDone();
  }

  // --- upgrades and TLS policy (upgrade-exchange.ts, certificate-store.ts) ---------------------------

  /** Listener entry point (http-listeners.ts) for `Upgrade` requests. */
  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    this.counters.requests++;
    this.active++;
    if (this.closing !== undefined) {
      const startedAt = performance.now();
      this.rejectUpgrade(req, socket, new RouterError('SY_SHUTTING_DOWN', 'the router is shutting down'), undefined);
      this.ops.finishLocal(req, undefined, req.url ?? '', 503, 0, 'SY_SHUTTING_DOWN', startedAt, undefined);
      this.requestDone();
      return;
    }
    startUpgrade(this, req, socket, head);
  }

  /** The request-guard rules, shared by plain requests and upgrades. */
  guard(req: IncomingMessage): GuardedRequest | RouterError {
    return guardRequest(req, this.limits);
  }

  /** Maintenance mode refuses upgrades too: 503 SY_MAINTENANCE (the maintenance page is for browsers). */
  hostRefusal(entryKey: string | undefined, hostPort: string | undefined, host: string | undefined) {
    const policy = this.ops.hostRecord(entryKey, hostPort, host)?.policy;
    return policy?.maintenance === undefined
      ? undefined
      : new RouterError('SY_MAINTENANCE', 'the host is in maintenance');
  }

  admitTls(req: IncomingMessage, hostname: string): RouterError | undefined {
    return this.certificates.admit(req, hostname);
  }

  rejectUpgrade(req: IncomingMessage, socket: Socket, error: RouterError, hostKey: string | undefined): void {
    this.errorResponder.rejectUpgrade(req, socket, error, hostKey);
  }

  upgradeEnded(error: RouterError | undefined, record: RequestRecord): void {
    this.ops.finish(record, error === undefined ? 'OK' : error.code);
    this.requestDone();
  }

  hostRecordOf(key: string): HostRecord {
    return this.ops.policies.record(key);
  }

  /** True while shutting down: responses carry `Connection: close`. */
  get draining(): boolean {
    return this.closing !== undefined;
  }

  private requestDone(): void {
    this.counters.responses++;
    this.active--;
    if (this.closing !== undefined) {
      this.listeners.closeIdleConnections();
      if (this.active === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
    }
  }

  // --- shutdown -------------------------------------------------------------------------------

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const closed = this.listeners.close();
    this.listeners.closeIdleConnections();
    this.tunnels.goingAwayAll();
    if (this.active > 0) {
      const grace = this.options.shutdownGraceMs ?? 10_000;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, grace);
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.listeners.closeAllConnections();
    await closed;
    this.pool.close();
    this.ops.operator.close();
    this.tunnels.close();
    this.certificates.close();
    this.logger.info('router closed');
  }
}
