/**
 * Balancing: what the Router owns for choosing nodes, composed in one object so the router only needs
 * one-line hooks. It holds the balancer catalog and per-host choice, the pools (eligibility, backups,
 * panic), the outlier detector, slow start and the retry budget, all on the router's injected clock.
 *
 * Per-host balancer: `setHostBalancer(key, name, source)`. A subscription's `algo` is honoured only by
 * the packet that creates the host (uWSGI); an unknown name gives that host `wrr` and counts
 * `unknownAlgorithms` (uWSGI falls back silently). A subscription choice is forgotten when the host
 * leaves the table; an admin choice stays until cleared (`name` undefined). Precedence: admin >
 * subscription > the router default (`--balancer`, default wrr).
 *
 * Lifecycle of a node (`lifecycleState`): `joining` (slow-start ramp) → `active` → `draining` → gone.
 */
import type { Logger } from 'pino';
import type { Balancer, BalancerContext, BalancerDeps } from './balancer.js';
import { BalancerCatalog, DEFAULT_BALANCER, isBalancerName } from './balancer-registry.js';
import { RouterError } from './errors.js';
import type { NodeHealthHooks } from './node-health.js';
import { type EjectionStatus, type NodePool, NodePools } from './node-pool.js';
import type { NodeRuntime } from './node-runtime.js';
import { OutlierDetector, type OutlierOptions } from './outlier-detector.js';
import { DEFAULT_LATENCY_DECAY_MS } from './peak-ewma.js';
import { RetryBudget, type RetryBudgetOptions, type RetryBudgetStats } from './retry-budget.js';
import { SlowStart } from './slow-start.js';
import type { TableObserver } from './table-replica.js';
import type { HostEntry, VhostNode } from './vhost-table.js';

export interface BalancingOptions {
  /** Default balancer name for hosts without their own (`--balancer`). Default 'wrr'. */
  readonly balancer?: string;
  /** Slow-start window for joining nodes, ms; 0 = off (`--slow-start`). Default 0. */
  readonly slowStartMs?: number;
  readonly retryBudget?: Omit<RetryBudgetOptions, 'clock'>;
  readonly outlier?: OutlierOptions;
  /** Peak-EWMA decay time constant, ms. Default 10000. */
  readonly latencyDecayMs?: number;
  /** Uniform [0, 1) source for p2c-ewma. Default Math.random. */
  readonly random?: () => number;
}

export type LifecycleState = 'joining' | 'active' | 'draining';
export type BalancerSource = 'admin' | 'subscription' | 'default';

export interface CandidateExplanation {
  readonly address: string;
  readonly backup: number;
  readonly weight: number;
  /** Weight the balancer used (slow start applied); undefined for a backup fallback. */
  readonly effectiveWeight: number | undefined;
  readonly lifecycle: LifecycleState | undefined;
  readonly ejection: EjectionStatus;
  readonly inFlight: number;
}

/** GET /v1/route's answer for one host, computed without advancing any balancer state. */
export interface RouteExplanation {
  readonly host: string;
  readonly balancer: string;
  readonly balancerSource: BalancerSource;
  readonly reason: string;
  readonly panic: boolean;
  /** In the order they would be tried: first = the pick. */
  readonly candidates: readonly CandidateExplanation[];
}

export interface BalancingStats {
  readonly defaultBalancer: string;
  readonly hostBalancers: number;
  readonly unknownAlgorithms: number;
  readonly retryBudget: RetryBudgetStats;
  readonly outliers: ReturnType<OutlierDetector['stats']>;
  readonly joining: number;
}

interface HostChoice {
  readonly balancer: Balancer;
  readonly source: 'admin' | 'subscription';
}

export class Balancing {
  readonly outliers: OutlierDetector;
  readonly slowStart: SlowStart;
  readonly retryBudget: RetryBudget;
  readonly pools: NodePools;
  readonly catalog: BalancerCatalog;
  readonly defaultBalancer: Balancer;
  private readonly deps: BalancerDeps;
  private readonly lookup: (key: string) => HostEntry | undefined;
  private readonly runtime: NodeRuntime;
  private readonly clock: () => number;
  private readonly logger: Logger | undefined;
  private readonly hosts = new Map<string, HostChoice>();
  /** Told every host balancer choice (table-replica.ts). */
  observer: TableObserver | undefined;
  private unknownAlgorithms = 0;

  constructor(options: {
    readonly lookup: (key: string) => HostEntry | undefined;
    readonly runtime: NodeRuntime;
    readonly clock: () => number;
    readonly logger?: Logger;
    readonly options?: BalancingOptions;
    /** A balancer instance to use as the default instead of a named one (RouterOptions.balancer). */
    readonly defaultBalancer?: Balancer;
  }) {
    const o = options.options ?? {};
    this.lookup = options.lookup;
    this.runtime = options.runtime;
    this.clock = options.clock;
    this.logger = options.logger;
    this.outliers = new OutlierDetector({ ...o.outlier, clock: this.clock });
    this.slowStart = new SlowStart({ clock: this.clock, windowMs: o.slowStartMs ?? 0 });
    this.retryBudget = new RetryBudget({ ...o.retryBudget, clock: this.clock });
    this.pools = new NodePools({ clock: this.clock, ejections: this.outliers, ramp: this.slowStart });
    this.outliers.setGuard((key, address) => this.pools.canEject(this.lookup(key), address));
    this.deps = {
      pools: this.pools,
      runtime: this.runtime,
      clock: this.clock,
      random: o.random ?? Math.random,
      latencyDecayMs: o.latencyDecayMs ?? DEFAULT_LATENCY_DECAY_MS,
    };
    this.catalog = new BalancerCatalog(this.deps);
    const name = o.balancer ?? DEFAULT_BALANCER;
    const named = this.catalog.get(name);
    if (named === undefined) throw new RouterError('SY_UNKNOWN_BALANCER', `unknown balancer "${name}"`);
    this.defaultBalancer = options.defaultBalancer ?? named;
  }

  // --- per-host balancer ----------------------------------------------------------------------

  /** The balancer for host `key` (request path: one Map lookup). */
  balancerFor(key: string): Balancer {
    return this.hosts.size === 0 ? this.defaultBalancer : (this.hosts.get(key)?.balancer ?? this.defaultBalancer);
  }

  /** Where host `key`'s balancer comes from. */
  balancerSource(key: string): BalancerSource {
    return this.hosts.get(key)?.source ?? 'default';
  }

  /**
   * Sets host `key`'s balancer by name (undefined clears it back to the default). Throws RouterError
   * SY_UNKNOWN_BALANCER for a name that is not a balancer. A subscription choice never replaces an
   * admin one.
   */
  setHostBalancer(key: string, name: string | undefined, source: 'admin' | 'subscription' = 'admin'): Balancer {
    const chosen = this.chooseHostBalancer(key, name, source);
    this.observer?.({ op: 'balancer', key, name: name ?? null, source });
    return chosen;
  }

  /** Host choices (admin or subscription), for a replica's snapshot (table-replica.ts). */
  *hostChoices(): IterableIterator<{ key: string; name: string; source: 'admin' | 'subscription' }> {
    for (const [key, choice] of this.hosts) yield { key, name: choice.balancer.name, source: choice.source };
  }

  private chooseHostBalancer(key: string, name: string | undefined, source: 'admin' | 'subscription'): Balancer {
    if (name === undefined) {
      const current = this.hosts.get(key);
      if (current !== undefined && (source === 'admin' || current.source === 'subscription')) this.hosts.delete(key);
      return this.balancerFor(key);
    }
    const balancer = this.catalog.get(name);
    if (balancer === undefined) throw new RouterError('SY_UNKNOWN_BALANCER', `unknown balancer "${name}"`);
    if (source === 'subscription' && this.hosts.get(key)?.source === 'admin') return this.balancerFor(key);
    this.hosts.set(key, { balancer, source });
    return balancer;
  }

  // --- table hooks ----------------------------------------------------------------------------

  /** Router hook after `table.upsert(node)`; `before` is the host's entry before it (undefined: new host). */
  nodeUpserted(before: HostEntry | undefined, node: VhostNode, algo: string | undefined): void {
    if (before?.nodes.some((n) => n.address === node.address)) return;
    this.nodeAdded(node.key, node.address, before === undefined, (before?.live.length ?? 0) > 0, algo);
  }

  /**
   * A node was added to host `key` (`created`: the host did not exist). `algo` is the subscription's
   * balancer name, honoured only when the host is created. `hadActive`: the host already had an active
   * node (then the newcomer ramps up under slow start).
   */
  nodeAdded(key: string, address: string, created: boolean, hadActive: boolean, algo: string | undefined): void {
    if (created && algo !== undefined && algo.length > 0) {
      if (isBalancerName(algo)) this.setHostBalancer(key, algo, 'subscription');
      else {
        this.unknownAlgorithms++;
        this.setHostBalancer(key, 'wrr', 'subscription');
        this.logger?.warn({ host: key, algo }, 'unknown balancer in subscription, using wrr');
      }
    }
    if (hadActive) this.slowStart.joined(key, address);
  }

  /** A node left host `key` (`hostGone`: it was the host's last node). */
  nodeRemoved(key: string, address: string, hostGone: boolean): void {
    this.slowStart.left(key, address);
    if (hostGone && this.hosts.get(key)?.source === 'subscription') this.hosts.delete(key);
  }

  // --- request hooks --------------------------------------------------------------------------

  /** A request will be proxied (retry budget deposit). */
  requestStarted(): void {
    this.retryBudget.deposit();
  }

  /** May the exchange retry on another node? Withdraws from the budget when yes. */
  retryAllowed(): boolean {
    return this.retryBudget.tryRetry();
  }

  /** A node sent a response head: latency sample and outlier signal. */
  responded(key: string, address: string, status: number, latencyMs: number): void {
    const now = this.clock();
    this.runtime.observeLatency(address, latencyMs, now, this.deps.latencyDecayMs);
    if (status >= 500) this.outliers.serverError(key, address);
    else this.outliers.success(key, address);
  }

  /** An attempt on a node failed before a usable response (connect, reset, timeout, bad response). */
  failed(key: string, address: string): void {
    this.outliers.failure(key, address);
  }

  /** An attempt ended; when nothing is in flight on the node any more an unanswered probe is freed. */
  attemptEnded(address: string): void {
    if (this.outliers.ejectedCount > 0 && (this.runtime.stats(address)?.inFlight ?? 0) === 0) {
      this.outliers.idle(address);
    }
  }

  // --- read side (admin) ----------------------------------------------------------------------

  /**
   * Publishes ejections to the operator surface (node-health.ts): 'ejected' / 'readmitted' events, and
   * each node's ejection state for `GET /v1/vhosts/:host` and `GET /v1/route`.
   */
  reportTo(health: NodeHealthHooks): void {
    this.outliers.onEvent((event) =>
      health.emit(
        event.type === 'ejected'
          ? { type: 'ejected', key: event.key, address: event.address, reason: event.reason, until: event.until }
          : { type: 'readmitted', key: event.key, address: event.address },
      ),
    );
    health.describe = (_key, address) => {
      const info = this.outliers.info(address);
      if (info === undefined || info.status === 'admitted') return undefined;
      return {
        ejected: true,
        until: info.ejectedUntil,
        ...(info.lastReason === undefined ? {} : { reason: info.lastReason }),
        detail: { status: info.status, ejections: info.ejections },
      };
    };
  }

  lifecycleState(key: string, address: string): LifecycleState | undefined {
    const node = this.lookup(key)?.nodes.find((n) => n.address === address);
    if (node === undefined) return undefined;
    if (node.state === 'draining') return 'draining';
    return this.slowStart.isJoining(key, address) ? 'joining' : 'active';
  }

  /** What the host's balancer would do now, without advancing any state. */
  explain(entry: HostEntry, context: BalancerContext, override?: Balancer): RouteExplanation {
    const balancer = override ?? this.balancerFor(entry.key);
    const result = balancer.explain(entry, context);
    const now = this.clock();
    const pool: NodePool = result.pool;
    return {
      host: entry.key,
      balancer: balancer.name,
      balancerSource: override === undefined ? this.balancerSource(entry.key) : 'admin',
      reason: result.reason,
      panic: pool.panic,
      candidates: result.candidates.map((node) => this.describeCandidate(entry.key, node, pool, now)),
    };
  }

  stats(): BalancingStats {
    return {
      defaultBalancer: this.defaultBalancer.name,
      hostBalancers: this.hosts.size,
      unknownAlgorithms: this.unknownAlgorithms,
      retryBudget: this.retryBudget.stats(),
      outliers: this.outliers.stats(),
      joining: this.slowStart.snapshot().length,
    };
  }

  private describeCandidate(key: string, node: VhostNode, pool: NodePool, now: number): CandidateExplanation {
    const index = pool.nodes.indexOf(node);
    return {
      address: node.address,
      backup: node.backup,
      weight: node.weight,
      effectiveWeight: index < 0 ? undefined : pool.weights[index],
      lifecycle: this.lifecycleState(key, node.address),
      ejection: this.outliers.status(node.address, now),
      inFlight: this.runtime.stats(node.address)?.inFlight ?? 0,
    };
  }
}
