/**
 * Wires the operator surface into one Switchyard process (kept apart from switchyard-app.ts):
 *  - registry events → the router's event log (`GET /v1/events`), refreshes sampled per node;
 *  - dropped subscription packets → 'rejected' events (rate-limited by the event log);
 *  - the admin API's view of the registry: last-announce times, and the subscription a deleted admin
 *    node gives its slot back to;
 *  - subscription-server and registry counters → Prometheus families;
 *  - the access log (`--access-log`), opened before the router listens and flushed after it closed.
 */
import {
  AccessLog,
  type AdminServerOptions,
  type MetricFamily,
  type Router,
  type RouterOptions,
  type VhostNode,
} from '@switchyard/router';
import {
  parseNodeAddress,
  type RegisteredNode,
  type SubscriptionRegistry,
  type SubscriptionServer,
  type TableEvent,
} from '@switchyard/subscription-server';
import type { OperatorConfig } from './operator-options.js';

/** Router options of the operator surface. */
export function operatorRouterOptions(config: OperatorConfig): Pick<RouterOptions, 'operations'> {
  return {
    operations: {
      metricsTopHosts: config.metricsTopHosts,
      events: { capacity: config.eventsBuffer },
      parseNodeAddress: (text) => {
        const parsed = parseNodeAddress(text);
        return parsed.ok ? parsed.value : undefined;
      },
    },
  };
}

export interface OperatorParts {
  readonly router: Router;
  readonly registry: SubscriptionRegistry;
  /** Undefined for `--subscription-server off`: no rejected events, no subscription packet families. */
  readonly subscriptions: SubscriptionServer | undefined;
  readonly toVhostNode: (node: RegisteredNode) => VhostNode;
}

export class OperatorWiring {
  private readonly config: OperatorConfig;
  private readonly parts: OperatorParts;
  private readonly accessLog: AccessLog | undefined;

  constructor(config: OperatorConfig, parts: OperatorParts) {
    this.config = config;
    this.parts = parts;
    const { router, registry, subscriptions } = parts;
    const events = router.ops.events;
    registry.onEvent((event) => this.record(event));
    subscriptions?.onDrop((reason, detail, source, key) =>
      events.rejected(reason, detail, `${source.address}:${source.port}`, key),
    );
    router.ops.operator.removeSubscription = (key, address) => registry.remove(key, address, 'admin');
    router.ops.operator.restore = (key, address) => {
      const node = registry.get(key)?.find((n) => n.address === address);
      return node === undefined ? undefined : parts.toVhostNode(node);
    };
    this.accessLog =
      config.accessLog === 'off'
        ? undefined
        : new AccessLog({ destination: config.accessLog, sampleRate: config.accessLogSample });
  }

  /** AdminServer options: tokens, registry view, extra metric families. */
  adminOptions(): Pick<AdminServerOptions, 'tokens' | 'lastAnnounce' | 'metrics'> {
    const { registry, subscriptions } = this.parts;
    return {
      tokens: { admin: this.config.adminToken, read: this.config.adminReadToken },
      lastAnnounce: (key, address) => registry.get(key)?.find((n) => n.address === address)?.lastSeen,
      metrics: () => subscriptionFamilies(subscriptions, registry),
    };
  }

  /** Opens the access log (before the router accepts requests). */
  async start(): Promise<void> {
    if (this.accessLog === undefined) return;
    await this.accessLog.start();
    this.parts.router.ops.accessLog = this.accessLog;
  }

  /** Flushes and closes the access log (after the router has drained). Safe twice. */
  async close(): Promise<void> {
    this.parts.router.ops.accessLog = undefined;
    await this.accessLog?.close();
  }

  private record(event: TableEvent): void {
    const events = this.parts.router.ops.events;
    const node = event.node;
    if (event.type === 'refreshed') {
      events.refreshed(node.key, node.address);
      return;
    }
    events.record({
      type: event.type,
      host: node.key,
      node: node.address,
      source: 'subscription',
      weight: node.weight,
      state: node.state,
      reason: event.type === 'removed' ? event.reason : undefined,
    });
  }
}

function subscriptionFamilies(
  subscriptions: SubscriptionServer | undefined,
  registry: SubscriptionRegistry,
): MetricFamily[] {
  const r = registry.metrics();
  return [
    ...(subscriptions === undefined ? [] : packetFamilies(subscriptions)),
    {
      name: 'switchyard_registry_nodes',
      help: 'Subscribed nodes in the registry, by state.',
      type: 'gauge',
      values: [
        { labels: { state: 'active' }, value: r.nodes - r.draining },
        { labels: { state: 'draining' }, value: r.draining },
      ],
    },
  ];
}

function packetFamilies(subscriptions: SubscriptionServer): MetricFamily[] {
  const s = subscriptions.stats();
  return [
    {
      name: 'switchyard_subscription_packets_total',
      help: 'Subscription datagrams received.',
      type: 'counter',
      values: [{ value: s.received }],
    },
    {
      name: 'switchyard_subscriptions_accepted_total',
      help: 'Subscription packets applied, by command.',
      type: 'counter',
      values: [
        { labels: { command: 'subscribe' }, value: s.subscribes },
        { labels: { command: 'unsubscribe' }, value: s.unsubscribes },
      ],
    },
    {
      name: 'switchyard_subscription_dropped_total',
      help: 'Subscription packets dropped, by reason.',
      type: 'counter',
      values: Object.entries(s.dropped).map(([reason, value]) => ({ labels: { reason }, value })),
    },
  ];
}
