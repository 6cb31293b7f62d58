/**
 * RegisteredNode and TableEvent: what the registry publishes and the router consumes. A node is
 * identified by (key, address); its object is frozen and replaced, never mutated, on every change, so a
 * consumer can compare references to detect a change and keep old snapshots safely.
 *
 * Event contract:
 *  - 'added'      a subscribe for an unknown (key, address);
 *  - 'updated'    a refresh that changed a routing field (weight, protocol, backup, algo, modifier1/2), or
 *                 that brought a draining node back to active; carries the previous node;
 *  - 'refreshed'  a refresh that changed only lastSeen, cores or load;
 *  - 'draining'   an unsubscribe: stop picking the node, let in-flight requests finish;
 *  - 'removed'    deleted: 'drained' (router reported no in-flight left), 'drain-timeout', or 'admin';
 *  - 'expired'    deleted: an active node silent for longer than the tolerance.
 */
import type { Announcement, NodeProtocol } from './announcement.js';

export type NodeState = 'active' | 'draining';

/** One node of one host. Frozen; a new object replaces it on every change. */
export interface RegisteredNode {
  readonly key: string;
  readonly address: string;
  readonly protocol: NodeProtocol;
  readonly weight: number;
  readonly modifier1: number;
  readonly modifier2: number;
  readonly cores: number;
  readonly load: number;
  readonly backup: number;
  readonly algo: string | undefined;
  readonly state: NodeState;
  /** ms, injected clock: when the node was added. */
  readonly firstSeen: number;
  /** ms, injected clock: the last accepted subscribe (an unsubscribe does not change it). */
  readonly lastSeen: number;
  /** The last accepted subscribe announcement (an unsubscribe only changes `state`). */
  readonly announcement: Announcement;
}

export type RemoveReason = 'drained' | 'drain-timeout' | 'admin';

export type TableEvent =
  | { readonly type: 'added'; readonly node: RegisteredNode }
  | { readonly type: 'updated'; readonly node: RegisteredNode; readonly previous: RegisteredNode }
  | { readonly type: 'refreshed'; readonly node: RegisteredNode }
  | { readonly type: 'draining'; readonly node: RegisteredNode }
  | { readonly type: 'removed'; readonly node: RegisteredNode; readonly reason: RemoveReason }
  | { readonly type: 'expired'; readonly node: RegisteredNode };

export type TableListener = (event: TableEvent) => void;

/** Builds a frozen node from an announcement. */
export function makeNode(a: Announcement, state: NodeState, firstSeen: number, lastSeen: number): RegisteredNode {
  return Object.freeze({
    key: a.key,
    address: a.address,
    protocol: a.protocol,
    weight: a.weight,
    modifier1: a.modifier1,
    modifier2: a.modifier2,
    cores: a.cores,
    load: a.load,
    backup: a.backup,
    algo: a.algo,
    state,
    firstSeen,
    lastSeen,
    announcement: a,
  });
}

/** Fields a balancer or the proxy uses: a change is an 'updated', not a 'refreshed'. */
export function routingChanged(before: RegisteredNode, after: RegisteredNode): boolean {
  return (
    before.weight !== after.weight ||
    before.protocol !== after.protocol ||
    before.backup !== after.backup ||
    before.algo !== after.algo ||
    before.modifier1 !== after.modifier1 ||
    before.modifier2 !== after.modifier2
  );
}
