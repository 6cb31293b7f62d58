/**
 * Table replication between router processes (`switchyard --workers N`): the primary's Router is the one
 * source of truth (subscriptions, admin writes, operator overrides all land there); every worker's Router
 * is a replica that receives the primary's changes, in order, and applies them as given.
 *
 * What is replicated (`TableChange`): node upserts (the effective node, after operator precedence and
 * overrides), node state changes, removals, per-host balancer choices, host policies (body limit,
 * maintenance page) and subscription certificates. What is not: runtime state (in-flight counts,
 * failures, outlier ejections, slow-start clocks, balancer positions) — each process keeps its own,
 * keyed by address, as the single-process router does.
 *
 * Contract: applying `TableFeed.snapshot()` to an empty replica and then every change observed after it,
 * in order, yields a replica whose table, balancer choices and policies equal the primary's
 * (test: table-replica.test.ts, random operation sequences). A snapshot never starts slow start for the
 * nodes it brings (they were already serving); later node additions ramp up as on the primary.
 */
import { createHash } from 'node:crypto';
import type { CertificateFiles } from './certificate-store.js';
import type { HostPolicy } from './host-policy.js';
import type { Router } from './router.js';
import { type HostEntry, type NodeState, STATIC_KEY, type VhostNode } from './vhost-table.js';

export type TableChange =
  | { readonly op: 'node'; readonly node: VhostNode }
  | { readonly op: 'state'; readonly key: string; readonly address: string; readonly state: NodeState }
  | { readonly op: 'remove'; readonly key: string; readonly address: string }
  | {
      readonly op: 'balancer';
      readonly key: string;
      /** null: the choice is cleared. */
      readonly name: string | null;
      readonly source: 'admin' | 'subscription';
    }
  | { readonly op: 'policy'; readonly key: string; readonly policy: HostPolicy | null }
  | { readonly op: 'certificate'; readonly key: string; readonly files: CertificateFiles | null };

export type TableObserver = (change: TableChange) => void;

/** Least time between two forwarded offers of the same certificate files for one key, ms. */
const CERTIFICATE_REOFFER_MS = 10_000;

/**
 * The primary's side: observes its router's table and tells `listener` every change, synchronously and
 * in the order the changes were made. Repeated subscription certificate offers (one per packet) are
 * forwarded once per CERTIFICATE_REOFFER_MS per key unless the files change.
 */
export class TableFeed {
  private readonly router: Router;
  private readonly listener: TableObserver;
  /** Certificate files per key as last forwarded, and when. */
  private readonly certificates = new Map<string, { files: CertificateFiles; at: number }>();

  constructor(router: Router, listener: TableObserver) {
    this.router = router;
    this.listener = listener;
    const observe: TableObserver = (change) => this.observe(change);
    router.table.observer = observe;
    router.balancing.observer = observe;
    router.ops.policies.observer = observe;
    router.certificates.observer = observe;
  }

  /** Stops observing (the router keeps working on its own). */
  close(): void {
    const router = this.router;
    router.table.observer = undefined;
    router.balancing.observer = undefined;
    router.ops.policies.observer = undefined;
    router.certificates.observer = undefined;
  }

  /** Changes that rebuild the current state on an empty replica. */
  snapshot(): TableChange[] {
    const router = this.router;
    const changes: TableChange[] = [];
    for (const entry of tableEntries(router)) {
      for (const node of entry.nodes) changes.push({ op: 'node', node });
    }
    for (const { key, name, source } of router.balancing.hostChoices()) {
      changes.push({ op: 'balancer', key, name, source });
    }
    for (const [key, policy] of router.ops.policies.policies()) changes.push({ op: 'policy', key, policy });
    for (const [key, { files }] of this.certificates) changes.push({ op: 'certificate', key, files });
    return changes;
  }

  private observe(change: TableChange): void {
    if (change.op === 'certificate') {
      if (change.files === null) {
        if (!this.certificates.delete(change.key)) return;
      } else {
        const now = this.router.now();
        const last = this.certificates.get(change.key);
        if (last !== undefined && sameFiles(last.files, change.files) && now - last.at < CERTIFICATE_REOFFER_MS) return;
        this.certificates.set(change.key, { files: change.files, at: now });
      }
    }
    this.listener(change);
  }
}

/**
 * The replica's side: applies one change of the primary's. `fromSnapshot`: the change rebuilds state
 * that already existed (no slow start for its nodes). Never throws for a change the primary produced.
 */
export function applyTableChange(router: Router, change: TableChange, fromSnapshot = false): void {
  switch (change.op) {
    case 'node':
      if (fromSnapshot || change.node.key === STATIC_KEY) router.table.upsert(change.node);
      else router.upsertNode(change.node);
      return;
    case 'state':
      router.applyNodeState(change.key, change.address, change.state);
      return;
    case 'remove':
      router.removeNode(change.key, change.address);
      return;
    case 'balancer':
      router.balancing.setHostBalancer(change.key, change.name ?? undefined, change.source);
      return;
    case 'policy':
      router.ops.policies.replace(change.key, change.policy ?? undefined);
      return;
    case 'certificate':
      if (change.files === null) router.certificates.withdraw(change.key);
      else router.certificates.offer(change.key, change.files);
      return;
  }
}

/**
 * A digest of everything replicated except certificates (nodes with their identity, state and weight,
 * host balancer choices, host policies), independent of insertion order: equal on a primary and a
 * replica that has caught up.
 */
export function tableDigest(router: Router): string {
  const lines: string[] = [];
  for (const entry of tableEntries(router)) {
    for (const n of entry.nodes) {
      lines.push(
        `n ${n.key} ${n.address} ${n.state} ${n.weight} ${n.protocol} ${n.backup} ${n.source} ${n.modifier1} ${n.modifier2} ${JSON.stringify(n.target)}`,
      );
    }
  }
  for (const { key, name, source } of router.balancing.hostChoices()) lines.push(`b ${key} ${name} ${source}`);
  for (const [key, policy] of router.ops.policies.policies()) lines.push(`p ${key} ${JSON.stringify(policy)}`);
  lines.sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

/** Every host entry, and the static (`--http-to`) entry, which `VhostTable.entries()` leaves out. */
function* tableEntries(router: Router): IterableIterator<HostEntry> {
  yield* router.table.entries();
  const statics = router.table.get(STATIC_KEY);
  if (statics !== undefined) yield statics;
}

function sameFiles(a: CertificateFiles, b: CertificateFiles): boolean {
  return a.cert === b.cert && a.key === b.key && a.ca === b.ca;
}
