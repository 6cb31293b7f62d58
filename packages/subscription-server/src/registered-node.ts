/**
 * RegisteredNode and TableEvent: what the registry publishes and the router consumes. A node is
 * identified by (key, address).
 *
 * A RegisteredNode is a frozen snapshot built on demand from the registry's compact columns
 * (node-columns.ts) for each event and each `get()`: the registry keeps no object per node, so two
 * snapshots of one unchanged node are equal in value (deepEqual) but not the same object. A snapshot never
 * changes; the node may (a later snapshot has a later lastSeen). Compare fields, not references.
 *
 * Event contract:
 *  - 'added'      a subscribe for an unknown (key, address);
 *  - 'updated'    a refresh that changed a routing field (weight, protocol, backup, algo, modifier1/2), or
 *                 that brought a draining node back to active; carries the previous node;
 *  - 'refreshed'  a refresh that changed only lastSeen, cores, load or the rare fields (notify, sni_*,
 *                 vassal, clear);
 *  - 'draining'   an unsubscribe: stop picking the node, let in-flight requests finish;
 *  - 'removed'    deleted: 'drained' (router reported no in-flight left), 'drain-timeout', or 'admin';
 *  - 'expired'    deleted: an active node silent for longer than the tolerance.
 */
import { type Announcement, EMPTY_EXTRA, type NodeProtocol } from './announcement.js';
import type { NodeRare } from './node-columns.js';

export type NodeState = 'active' | 'draining';

/** One node of one host: a frozen snapshot. */
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
  /**
   * The last accepted subscribe, rebuilt from what the registry keeps: every field except `unix` and
   * `extra`, which describe one packet rather than the node (a replay timestamp, ignored unknown
   * fields) and read as undefined / empty here. Built on each read.
   */
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

/** The snapshot class behind RegisteredNode (one shared hidden class; `announcement` is a prototype getter). */
export class NodeSnapshot implements RegisteredNode {
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
  readonly firstSeen: number;
  readonly lastSeen: number;
  readonly #rare: NodeRare | undefined;

  constructor(
    key: string,
    address: string,
    protocol: NodeProtocol,
    weight: number,
    modifier1: number,
    modifier2: number,
    cores: number,
    load: number,
    backup: number,
    state: NodeState,
    firstSeen: number,
    lastSeen: number,
    rare: NodeRare | undefined,
  ) {
    this.key = key;
    this.address = address;
    this.protocol = protocol;
    this.weight = weight;
    this.modifier1 = modifier1;
    this.modifier2 = modifier2;
    this.cores = cores;
    this.load = load;
    this.backup = backup;
    this.algo = rare?.algo;
    this.state = state;
    this.firstSeen = firstSeen;
    this.lastSeen = lastSeen;
    this.#rare = rare;
    Object.freeze(this);
  }

  get announcement(): Announcement {
    const rare = this.#rare;
    return Object.freeze({
      command: 'subscribe',
      key: this.key,
      address: this.address,
      protocol: this.protocol,
      weight: this.weight,
      modifier1: this.modifier1,
      modifier2: this.modifier2,
      cores: this.cores,
      load: this.load,
      backup: this.backup,
      algo: rare?.algo,
      notify: rare?.notify,
      sniKey: rare?.sniKey,
      sniCrt: rare?.sniCrt,
      sniCa: rare?.sniCa,
      unix: undefined,
      vassal: rare?.vassal,
      clear: rare?.clear ?? false,
      extra: EMPTY_EXTRA,
    });
  }
}

/** The rare fields of an announcement; undefined when it has none (the common case). */
export function rareFieldsOf(a: Announcement): NodeRare | undefined {
  if (
    a.algo === undefined &&
    a.notify === undefined &&
    a.sniKey === undefined &&
    a.sniCrt === undefined &&
    a.sniCa === undefined &&
    a.vassal === undefined &&
    !a.clear
  ) {
    return undefined;
  }
  return Object.freeze({
    algo: a.algo,
    notify: a.notify,
    sniKey: a.sniKey,
    sniCrt: a.sniCrt,
    sniCa: a.sniCa,
    vassal: a.vassal,
    clear: a.clear,
  });
}

/** Do `rare` and the rare fields of `a` agree? (Both absent counts as agreeing.) */
export function sameRareFields(rare: NodeRare | undefined, a: Announcement): boolean {
  if (rare === undefined) {
    return (
      a.algo === undefined &&
      a.notify === undefined &&
      a.sniKey === undefined &&
      a.sniCrt === undefined &&
      a.sniCa === undefined &&
      a.vassal === undefined &&
      !a.clear
    );
  }
  return (
    rare.algo === a.algo &&
    rare.notify === a.notify &&
    rare.sniKey === a.sniKey &&
    rare.sniCrt === a.sniCrt &&
    rare.sniCa === a.sniCa &&
    rare.vassal === a.vassal &&
    rare.clear === a.clear
  );
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
