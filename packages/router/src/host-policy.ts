/**
 * Per-host settings set through the admin API, kept apart from the node table: a request-body limit and
 * a maintenance page (the per-host balancer choice lives in balancing.ts, which the admin API also sets). The router reads a host's record with one Map lookup per
 * request (`HostPolicyStore.record`), which also carries the host's traffic counters (request counts by
 * status class, the heavy-hitter counter used to pick the hosts that get their own metric series).
 *
 * Lifetime: a record is created by the first request for a host that is in the table or by a PATCH; its
 * policy survives node churn (a host whose nodes all leave and come back keeps its maintenance page);
 * `DELETE /v1/vhosts/:host` clears it. Counters of a host that left the table are dropped by `forget`
 * (a record with a policy stays). A policy is frozen and replaced on every change; `version` grows with
 * every change of any policy (part of the admin ETags).
 */
import { HostKeyMap } from '@switchyard/protocol';
import { z } from 'zod';
import type { TableObserver } from './table-replica.js';

export interface MaintenancePage {
  /** HTTP status answered, 500..599 (default 503). */
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
}

export interface HostPolicy {
  /** Largest request body accepted for this host, bytes (413 SY_BODY_TOO_LARGE beyond); undefined = none. */
  readonly maxBodyBytes: number | undefined;
  /** When set, every request for the host is answered with this page (maintenance mode). */
  readonly maintenance: MaintenancePage | undefined;
}

/** Largest maintenance body, bytes: it is kept in memory per host. */
export const MAX_MAINTENANCE_BODY = 64 * 1024;

/**
 * PATCH /v1/vhosts/:host body. `null` clears a setting; an absent field leaves it unchanged. `balancer`
 * is applied by balancing.ts (admin choice, precedence over a subscription's `algo`).
 */
export const HostPolicyPatch = z
  .strictObject({
    balancer: z.string().min(1).max(64).nullable().optional(),
    maxBodyBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
    maintenance: z
      .strictObject({
        enabled: z.boolean(),
        status: z.number().int().min(500).max(599).optional(),
        body: z.string().max(MAX_MAINTENANCE_BODY).optional(),
        contentType: z
          .string()
          .min(1)
          .max(200)
          .regex(/^[\x21-\x7e][\x20-\x7e]*$/, 'printable ASCII')
          .optional(),
      })
      .optional(),
  })
  .describe('HostPolicyPatch');
export type HostPolicyPatch = z.infer<typeof HostPolicyPatch>;

const DEFAULT_MAINTENANCE_BODY = '<!doctype html><title>Maintenance</title><h1>Down for maintenance</h1>\n';

/** Per-host record: the policy (resolved) and the host's traffic counters. Mutated in place. */
export class HostRecord {
  readonly key: string;
  policy: HostPolicy | undefined = undefined;
  /** Store version of this host's last policy change (0 = never): part of the host's ETag. */
  policyVersion = 0;
  /** Responses by status class: index 0 = 1xx ... 4 = 5xx. */
  readonly classes = new Float64Array(5);
  /** Requests answered (any status). */
  requests = 0;
  /** Heavy-hitter counter (top-hosts.ts); not a request count. */
  heavy = 0;
  /** In the heavy-hitter candidate set. */
  tracked = false;
  /** Has its own metric series at the moment (else counted under host="other"). */
  exported = false;

  constructor(key: string) {
    this.key = key;
  }
}

export class HostPolicyStore {
  /** Sharded: requests to a million hosts create a record each; no rehash stall (protocol/host-key-map.ts). */
  private readonly records = new HostKeyMap<HostRecord>();
  private versionCounter = 0;
  /** Told every policy change (table-replica.ts). */
  observer: TableObserver | undefined;

  /** Grows with every policy change. */
  get version(): number {
    return this.versionCounter;
  }

  get size(): number {
    return this.records.size;
  }

  /** The record of `key`, creating it (request path: one Map lookup when it exists). */
  record(key: string): HostRecord {
    let record = this.records.get(key);
    if (record === undefined) {
      record = new HostRecord(key);
      this.records.set(key, record);
    }
    return record;
  }

  /** The record of `key` when there is one (no creation). */
  peek(key: string): HostRecord | undefined {
    return this.records.get(key);
  }

  policy(key: string): HostPolicy | undefined {
    return this.records.get(key)?.policy;
  }

  /** Applies the body-limit and maintenance parts of a validated patch; returns the new policy. */
  apply(key: string, patch: HostPolicyPatch): HostPolicy {
    const record = this.record(key);
    const current = record.policy;
    let maxBodyBytes = current?.maxBodyBytes;
    if (patch.maxBodyBytes !== undefined) maxBodyBytes = patch.maxBodyBytes ?? undefined;
    let maintenance = current?.maintenance;
    if (patch.maintenance !== undefined) {
      const m = patch.maintenance;
      maintenance = m.enabled
        ? Object.freeze({
            status: m.status ?? maintenance?.status ?? 503,
            body: m.body ?? maintenance?.body ?? DEFAULT_MAINTENANCE_BODY,
            contentType: m.contentType ?? maintenance?.contentType ?? 'text/html; charset=utf-8',
          })
        : undefined;
    }
    const policy: HostPolicy = Object.freeze({ maxBodyBytes, maintenance });
    this.replace(key, isEmpty(policy) ? undefined : policy);
    return policy;
  }

  /** Sets (undefined: removes) the whole policy of `key`: a replica applying its primary's change. */
  replace(key: string, policy: HostPolicy | undefined): void {
    const record = policy === undefined ? this.records.get(key) : this.record(key);
    if (record === undefined) return;
    record.policy = policy;
    record.policyVersion = ++this.versionCounter;
    this.observer?.({ op: 'policy', key, policy: policy ?? null });
  }

  /** Removes the policy of `key` (DELETE /v1/vhosts/:host); true when there was one. */
  clear(key: string): boolean {
    if (this.records.get(key)?.policy === undefined) return false;
    this.replace(key, undefined);
    return true;
  }

  /** The host left the table: drop its counters unless it keeps a policy. */
  forget(key: string): void {
    const record = this.records.get(key);
    if (record !== undefined && record.policy === undefined && !record.tracked) this.records.delete(key);
  }

  /** Hosts that have a policy (for listings). */
  *policies(): IterableIterator<[string, HostPolicy]> {
    for (const [key, record] of this.records) if (record.policy !== undefined) yield [key, record.policy];
  }
}

function isEmpty(policy: HostPolicy): boolean {
  return policy.maxBodyBytes === undefined && policy.maintenance === undefined;
}
