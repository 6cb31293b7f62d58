/**
 * The virtual-host table: host key → immutable HostEntry. An entry is never mutated: every change builds
 * a new frozen entry and swaps it into the map, so a request that took an entry keeps a consistent view
 * (its node list, states and weights) for its whole life while the table moves on. Replacing per entry
 * (instead of copying the whole map) keeps a change O(nodes of that host) with a million hosts.
 *
 * Lookup rule: `host:port` first, then `host` (keys are normalised by `parseHostKey`), then the static
 * entry (`--http-to` nodes serve every Host). With LookupOptions (dotsplit, mountpoints, fallback key)
 * the full order is in lookup-rules.ts. Runtime state (in-flight, failures) is not here: see
 * node-runtime.ts.
 */
import { HostKeyMap } from '@switchyard/protocol';
import { KeyShapes, type LookupOptions, lookupExtended } from './lookup-rules.js';
import { SortedKeyIndex } from './sorted-key-index.js';
import type { TableObserver } from './table-replica.js';

export type NodeProtocol = 'uwsgi' | 'http';
export type NodeSource = 'subscription' | 'static' | 'admin' | 'spawn';
export type NodeState = 'active' | 'draining';

export type UpstreamTarget =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

export interface VhostNode {
  /** The host key this node serves (`STATIC_KEY` for static nodes). */
  readonly key: string;
  /** Node identity within a host, as announced (`127.0.0.1:3031`, `/run/app.sock`, ...). */
  readonly address: string;
  readonly target: UpstreamTarget;
  readonly protocol: NodeProtocol;
  /** Balancing weight, >= 1. */
  readonly weight: number;
  /** uwsgi packet modifiers used when talking to a uwsgi node. */
  readonly modifier1: number;
  readonly modifier2: number;
  /** Backup level: 0 = primary; higher levels are used only when no lower level has a live node. */
  readonly backup: number;
  readonly source: NodeSource;
  readonly state: NodeState;
}

export interface HostEntry {
  readonly key: string;
  /** Every node, in subscription order. */
  readonly nodes: readonly VhostNode[];
  /** Active nodes of the lowest backup level that has any; what balancers pick from. */
  readonly live: readonly VhostNode[];
  /** Table version that produced this entry. */
  readonly version: number;
}

/** Key of the catch-all entry holding `--http-to` static nodes. */
export const STATIC_KEY = '*';

export type LookupRule = 'port' | 'host' | 'static' | 'wildcard' | 'fallback' | 'mountpoint';
export interface LookupResult {
  readonly entry: HostEntry;
  readonly rule: LookupRule;
}

export class VhostTable {
  /** Sharded: a plain Map's rehash at a million hosts stalls the event loop for ~30 ms (host-key-map.ts). */
  private readonly hosts = new HostKeyMap<HostEntry>();
  private staticEntry: HostEntry | undefined;
  private versionCounter = 0;
  private nodeTotal = 0;
  private readonly lookupOptions: LookupOptions;
  private readonly extended: boolean;
  private readonly shapes = new KeyShapes();
  /** Host keys in sorted order, for paging the admin API (sorted-key-index.ts); static entry excluded. */
  readonly keys = new SortedKeyIndex();

  constructor(lookupOptions: LookupOptions = {}) {
    this.lookupOptions = Object.freeze({ ...lookupOptions });
    this.extended =
      lookupOptions.dotsplit === true || lookupOptions.mountpoints === true || lookupOptions.fallbackKey !== undefined;
  }

  /** Monotonic version, bumped by every change. */
  get version(): number {
    return this.versionCounter;
  }

  get hostCount(): number {
    return this.hosts.size;
  }

  get nodeCount(): number {
    return this.nodeTotal + (this.staticEntry?.nodes.length ?? 0);
  }

  /**
   * Finds the entry for a request. `hostPort` is the normalised `host:port` key (undefined when the Host
   * carried no port), `host` the normalised host, `target` the request target (for mountpoints).
   */
  lookup(host: string | undefined, hostPort: string | undefined, target?: string): LookupResult | undefined {
    if (this.extended) {
      const portSuffix = hostPort === undefined || host === undefined ? '' : hostPort.slice(host.length);
      const found = lookupExtended((k) => this.hosts.get(k), this.shapes, this.lookupOptions, host, portSuffix, target);
      if (found !== undefined) return found;
      return this.staticEntry === undefined ? undefined : { entry: this.staticEntry, rule: 'static' };
    }
    if (hostPort !== undefined) {
      const byPort = this.hosts.get(hostPort);
      if (byPort !== undefined) return { entry: byPort, rule: 'port' };
    }
    if (host !== undefined) {
      const byHost = this.hosts.get(host);
      if (byHost !== undefined) return { entry: byHost, rule: 'host' };
    }
    if (this.staticEntry !== undefined) return { entry: this.staticEntry, rule: 'static' };
    return undefined;
  }

  get(key: string): HostEntry | undefined {
    return key === STATIC_KEY ? this.staticEntry : this.hosts.get(key);
  }

  entries(): IterableIterator<HostEntry> {
    return this.hosts.values();
  }

  /** Told every change after it is made (table-replica.ts: the cluster primary mirrors it to workers). */
  observer: TableObserver | undefined;

  /** Adds the node, or replaces the node with the same address under the same key. */
  upsert(node: VhostNode): HostEntry {
    const frozen = frozenNode(node, node.state);
    const current = this.get(node.key);
    let nodes: VhostNode[];
    if (current === undefined) {
      nodes = [frozen];
      if (node.key !== STATIC_KEY) this.nodeTotal++;
    } else {
      const index = current.nodes.findIndex((n) => n.address === node.address);
      // Exact-size arrays (slice/concat): push() would leave ~16 spare slots in each host's array.
      if (index >= 0) {
        nodes = current.nodes.slice();
        nodes[index] = frozen;
      } else {
        nodes = current.nodes.concat(frozen);
        if (node.key !== STATIC_KEY) this.nodeTotal++;
      }
    }
    const entry = this.store(node.key, nodes);
    this.observer?.({ op: 'node', node: frozen });
    return entry;
  }

  /** Changes a node's state; returns the new node or undefined when there is no such node. */
  setState(key: string, address: string, state: NodeState): VhostNode | undefined {
    const current = this.get(key);
    const index = current?.nodes.findIndex((n) => n.address === address) ?? -1;
    if (current === undefined || index < 0) return undefined;
    const old = current.nodes[index]!;
    if (old.state === state) return old;
    const next = frozenNode(old, state);
    const nodes = current.nodes.slice();
    nodes[index] = next;
    this.store(key, nodes);
    this.observer?.({ op: 'state', key, address, state });
    return next;
  }

  /** Removes a node (and the host with its last node); returns the removed node. */
  remove(key: string, address: string): VhostNode | undefined {
    const current = this.get(key);
    const index = current?.nodes.findIndex((n) => n.address === address) ?? -1;
    if (current === undefined || index < 0) return undefined;
    const removed = current.nodes[index]!;
    const nodes = current.nodes.filter((_, i) => i !== index);
    if (key !== STATIC_KEY) this.nodeTotal--;
    this.store(key, nodes);
    this.observer?.({ op: 'remove', key, address });
    return removed;
  }

  /** Finds a node by key and address. */
  node(key: string, address: string): VhostNode | undefined {
    return this.get(key)?.nodes.find((n) => n.address === address);
  }

  private store(key: string, nodes: VhostNode[]): HostEntry {
    this.versionCounter++;
    const live = liveNodes(nodes);
    const frozenNodes = Object.freeze(nodes);
    const entry: HostEntry = Object.freeze({
      key,
      nodes: frozenNodes,
      // Usually every node is live: share the array (a million hosts, one array each saved).
      live: live.length === nodes.length ? frozenNodes : Object.freeze(live),
      version: this.versionCounter,
    });
    if (key === STATIC_KEY) this.staticEntry = nodes.length > 0 ? entry : undefined;
    else if (nodes.length === 0) {
      if (this.hosts.delete(key)) {
        this.shapes.removed(key);
        this.keys.delete(key);
      }
    } else {
      if (!this.hosts.has(key)) {
        this.shapes.added(key);
        this.keys.add(key);
      }
      this.hosts.set(key, entry);
    }
    return entry;
  }
}

/**
 * A frozen copy of `node` with `state`, built field by field: `Object.freeze({ ...node })` gives every
 * object its own V8 hidden class (~400 bytes each, measured with a million hosts).
 */
function frozenNode(node: VhostNode, state: NodeState): VhostNode {
  return Object.freeze({
    key: node.key,
    address: node.address,
    target: node.target,
    protocol: node.protocol,
    weight: node.weight,
    modifier1: node.modifier1,
    modifier2: node.modifier2,
    backup: node.backup,
    source: node.source,
    state,
  });
}

/** Active nodes of the lowest backup level that has at least one active node. */
function liveNodes(nodes: readonly VhostNode[]): VhostNode[] {
  let level = Number.POSITIVE_INFINITY;
  for (const n of nodes) if (n.state === 'active' && n.backup < level) level = n.backup;
  return nodes.filter((n) => n.state === 'active' && n.backup === level);
}
