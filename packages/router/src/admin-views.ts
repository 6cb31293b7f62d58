/**
 * JSON views of the table for the admin API (`GET /v1/vhosts`, `GET /v1/vhosts/:host`, the dashboard):
 * a host with its policy, traffic counters and nodes; a node with identity, state, source, runtime
 * counters, latency, ejection state and operator overrides. Read-only: building a view never changes
 * the table, the balancers or any counter.
 *
 * ETags: a host's version is `"<entry version>.<policy version>"` (the table version that last changed
 * the host's nodes, and the policy-store version of its last policy change); the list's is
 * `"<table version>.<policy store version>"`.
 */
import type { Router } from './router.js';
import type { HostEntry, VhostNode } from './vhost-table.js';

/** ms timestamp of a node's last accepted announcement (from the registry), when it has one. */
export type LastAnnounce = (key: string, address: string) => number | undefined;

export interface NodeView {
  readonly address: string;
  readonly protocol: string;
  readonly weight: number;
  readonly state: string;
  /** joining (slow start) | active | draining. */
  readonly lifecycle: string | undefined;
  readonly source: string;
  readonly backup: number;
  readonly modifier1: number;
  readonly modifier2: number;
  /** ms since the node's last announcement (subscribed nodes), else null. */
  readonly lastAnnounceAgeMs: number | null;
  readonly inFlight: number;
  readonly requests: number;
  readonly failures: number;
  /** Response-head latency estimate, ms (peak EWMA), null before the first response. */
  readonly latencyMs: number | null;
  /** Filled by the ejection logic (node-health.ts); null when the node is not ejected. */
  readonly ejection: unknown;
  /** Operator overrides (PATCH/DELETE), null when none. */
  readonly override: { drained: boolean; weight: number | null; deleting: boolean } | null;
  /** Admin node TTL: ms timestamp when it expires, null when none. */
  readonly expiresAt: number | null;
}

export function describeNode(router: Router, key: string, node: VhostNode, lastAnnounce: LastAnnounce): NodeView {
  const now = router.now();
  const stats = router.runtime.stats(node.address);
  const latency = router.runtime.latencyOf(node.address);
  const announced = node.source === 'subscription' ? lastAnnounce(key, node.address) : undefined;
  const override = router.ops.operator.overrideOf(key, node.address);
  return {
    address: node.address,
    protocol: node.protocol,
    weight: node.weight,
    state: node.state,
    lifecycle: router.lifecycleState(key, node.address),
    source: node.source,
    backup: node.backup,
    modifier1: node.modifier1,
    modifier2: node.modifier2,
    lastAnnounceAgeMs: announced === undefined ? null : Math.max(0, now - announced),
    inFlight: router.runtime.inFlightFor(key, node.address),
    requests: stats?.requests ?? 0,
    failures: stats?.failures ?? 0,
    latencyMs: latency === undefined || latency.samples === 0 ? null : round(latency.estimate(now)),
    ejection: router.ops.health.describe(key, node.address) ?? null,
    override:
      override === undefined
        ? null
        : { drained: override.drained, weight: override.weight ?? null, deleting: override.deleting },
    expiresAt: router.ops.operator.expiryOf(key, node.address) ?? null,
  };
}

export interface HostView {
  readonly host: string;
  readonly version: string;
  readonly balancer: string;
  readonly balancerSource: string;
  readonly maxBodyBytes: number | null;
  readonly maintenance: { status: number; contentType: string; bodyBytes: number } | null;
  /** Responses by status class since the host's counters started. */
  readonly traffic: { requests: number; '2xx': number; '3xx': number; '4xx': number; '5xx': number };
  readonly live: number;
  readonly nodes: readonly NodeView[];
}

export function describeHost(
  router: Router,
  key: string,
  entry: HostEntry | undefined,
  lastAnnounce: LastAnnounce,
): HostView {
  const record = router.ops.policies.peek(key);
  const policy = record?.policy;
  const classes = record?.classes;
  return {
    host: key,
    version: hostVersion(router, key, entry),
    balancer: router.balancing.balancerFor(key).name,
    balancerSource: router.balancing.balancerSource(key),
    maxBodyBytes: policy?.maxBodyBytes ?? null,
    maintenance:
      policy?.maintenance === undefined
        ? null
        : {
            status: policy.maintenance.status,
            contentType: policy.maintenance.contentType,
            bodyBytes: Buffer.byteLength(policy.maintenance.body),
          },
    traffic: {
      requests: record?.requests ?? 0,
      '2xx': classes?.[1] ?? 0,
      '3xx': classes?.[2] ?? 0,
      '4xx': classes?.[3] ?? 0,
      '5xx': classes?.[4] ?? 0,
    },
    live: entry?.live.length ?? 0,
    nodes: entry === undefined ? [] : entry.nodes.map((node) => describeNode(router, key, node, lastAnnounce)),
  };
}

/** ETag value (without quotes) of one host. */
export function hostVersion(router: Router, key: string, entry: HostEntry | undefined): string {
  return `${entry?.version ?? 0}.${router.ops.policies.peek(key)?.policyVersion ?? 0}`;
}

/** ETag value (without quotes) of the whole table. */
export function tableVersion(router: Router): string {
  return `${router.table.version}.${router.ops.policies.version}`;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
