/**
 * Balancer names (the subscription `algo` key, `--balancer`, the admin API) and the catalog that turns
 * a name into a shared Balancer instance.
 *
 * Names: uWSGI's `wrr`, `lrc` (least requests), `wlrc` (weighted least requests), `iphash` (consistent
 * hash on the client address), and ours: `least-requests` (= wlrc), `p2c-ewma`, `hash-ip` (= iphash),
 * `hash-header:NAME`, `hash-cookie:NAME`. Header names are case-insensitive (stored lower-case);
 * cookie names are case-sensitive. Aliases keep their own name so stats show what was asked for.
 *
 * One instance per name serves every host that uses it: balancer state is per pool, not per instance.
 * The catalog holds at most MAX_INSTANCES distinct names (hash-header/cookie names are open-ended).
 */
import type { Balancer, BalancerDeps } from './balancer.js';
import { ConsistentHash, type HashSource } from './consistent-hash-balancer.js';
import { LeastRequests } from './least-requests-balancer.js';
import { PeakEwmaP2C } from './p2c-ewma-balancer.js';
import { SmoothWeightedRoundRobin } from './wrr-balancer.js';

/** Every accepted name pattern, for help texts and error messages. */
export const BALANCER_NAMES: readonly string[] = Object.freeze([
  'wrr',
  'least-requests',
  'lrc',
  'wlrc',
  'p2c-ewma',
  'hash-ip',
  'iphash',
  'hash-header:NAME',
  'hash-cookie:NAME',
]);

export const DEFAULT_BALANCER = 'wrr';

export type BalancerSpec =
  | { readonly kind: 'wrr'; readonly name: string }
  | { readonly kind: 'least-requests'; readonly name: string; readonly weighted: boolean }
  | { readonly kind: 'p2c-ewma'; readonly name: string }
  | { readonly kind: 'hash'; readonly name: string; readonly source: HashSource };

/** RFC 9110 token: header field names and cookie names. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;

const MAX_INSTANCES = 256;

/** Parses a balancer name; undefined when it is not one. */
export function parseBalancerName(text: string): BalancerSpec | undefined {
  switch (text) {
    case 'wrr':
      return { kind: 'wrr', name: text };
    case 'least-requests':
    case 'wlrc':
      return { kind: 'least-requests', name: text, weighted: true };
    case 'lrc':
      return { kind: 'least-requests', name: text, weighted: false };
    case 'p2c-ewma':
      return { kind: 'p2c-ewma', name: text };
    case 'hash-ip':
    case 'iphash':
      return { kind: 'hash', name: text, source: { kind: 'ip' } };
  }
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  const prefix = text.slice(0, colon);
  const arg = text.slice(colon + 1);
  if (!TOKEN.test(arg)) return undefined;
  if (prefix === 'hash-header') {
    const name = arg.toLowerCase();
    return { kind: 'hash', name: `hash-header:${name}`, source: { kind: 'header', name } };
  }
  if (prefix === 'hash-cookie') return { kind: 'hash', name: text, source: { kind: 'cookie', name: arg } };
  return undefined;
}

/** True when `text` names a balancer. */
export function isBalancerName(text: string): boolean {
  return parseBalancerName(text) !== undefined;
}

export class BalancerCatalog {
  private readonly deps: BalancerDeps;
  private readonly instances = new Map<string, Balancer>();

  constructor(deps: BalancerDeps) {
    this.deps = deps;
  }

  /** The shared instance for `name`; undefined when the name is not a balancer. */
  get(name: string): Balancer | undefined {
    const found = this.instances.get(name);
    if (found !== undefined) return found;
    const spec = parseBalancerName(name);
    if (spec === undefined) return undefined;
    const canonical = this.instances.get(spec.name);
    if (canonical !== undefined) return canonical;
    const balancer = this.create(spec);
    if (this.instances.size < MAX_INSTANCES) this.instances.set(spec.name, balancer);
    return balancer;
  }

  private create(spec: BalancerSpec): Balancer {
    const deps = this.deps;
    switch (spec.kind) {
      case 'wrr':
        return new SmoothWeightedRoundRobin(deps, spec.name);
      case 'least-requests':
        return new LeastRequests(deps, { weighted: spec.weighted, name: spec.name });
      case 'p2c-ewma':
        return new PeakEwmaP2C(deps, spec.name);
      case 'hash':
        return new ConsistentHash(deps, spec.source, spec.name);
    }
  }
}
