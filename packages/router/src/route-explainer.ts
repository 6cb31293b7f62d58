/**
 * `GET /v1/route?host=&path=&client=`: what the router would do with such a request right now, without
 * doing it — no request is sent, no balancer state advances, no counter moves.
 *
 * The answer walks the request path in order:
 *  1. `host`: the Host as normalised (or why it is refused: 400 SY_BAD_HOST);
 *  2. `match`: which table rule matched (port | host | wildcard | mountpoint | fallback | static) and the
 *     entry key, or none (404 SY_NO_VHOST);
 *  3. `policy`: the host's maintenance page and body limit (maintenance answers before any node);
 *  4. `balancer`: name, where the choice comes from (admin | subscription | default), the balancer's own
 *     reason, panic mode; `candidates` in the order they would be tried (first = the pick), each with
 *     effective weight (slow start), lifecycle, ejection status and in-flight count;
 *  5. `nodes`: every node of the entry with why it is or is not a candidate (draining, ejected, backup);
 *  6. `outcome`: `proxy` to the pick, or the status and code the router would answer.
 */
import { parseHostKey } from '@switchyard/protocol';
import type { BalancerContext } from './balancer.js';
import type { CandidateExplanation } from './balancing.js';
import type { Router } from './router.js';

export interface ExplainInput {
  readonly host: string;
  readonly path?: string | undefined;
  readonly client?: string | undefined;
  /** Request headers for hashing balancers (`hash-header:NAME`, `hash-cookie:NAME`), lower-case names. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

export type Outcome =
  | { readonly action: 'proxy'; readonly node: string; readonly fallbacks: readonly string[] }
  | { readonly action: 'error'; readonly status: number; readonly code: string; readonly reason: string }
  | { readonly action: 'maintenance'; readonly status: number; readonly code: 'SY_MAINTENANCE' };

export interface NodeVerdict {
  readonly address: string;
  readonly state: string;
  readonly source: string;
  readonly backup: number;
  readonly weight: number;
  /** Position in the candidate list (0 = the pick), null when not a candidate. */
  readonly position: number | null;
  /** Why the node is not a candidate (null when it is). */
  readonly excluded: string | null;
}

export interface RouteExplanationView {
  readonly input: { host: string; path: string; client: string };
  readonly host: { key: string; host: string; port: number | null } | null;
  readonly match: { rule: string; key: string } | null;
  readonly policy: { maintenance: boolean; maxBodyBytes: number | null } | null;
  readonly balancer: { name: string; source: string; reason: string; panic: boolean } | null;
  readonly candidates: readonly CandidateExplanation[];
  readonly nodes: readonly NodeVerdict[];
  readonly outcome: Outcome;
}

export function explainRoute(router: Router, input: ExplainInput): RouteExplanationView {
  const path = input.path === undefined || input.path === '' ? '/' : input.path;
  const client = input.client ?? '127.0.0.1';
  const headers = input.headers ?? {};
  const echo = { host: input.host, path, client };
  const parsed = parseHostKey(input.host);
  if (parsed === undefined) {
    return empty(echo, null, { action: 'error', status: 400, code: 'SY_BAD_HOST', reason: 'malformed Host' });
  }
  const host = { key: parsed.key, host: parsed.host, port: parsed.port ?? null };
  const found = router.table.lookup(parsed.host, parsed.port === undefined ? undefined : parsed.key, path);
  const policies = router.ops.policies;
  const record =
    found !== undefined
      ? policies.peek(found.entry.key)
      : [policies.peek(parsed.key), policies.peek(parsed.host)].find((r) => r?.policy !== undefined);
  const policy = record?.policy;
  const policyView =
    policy === undefined
      ? null
      : { maintenance: policy.maintenance !== undefined, maxBodyBytes: policy.maxBodyBytes ?? null };
  const maintenance: Outcome | undefined =
    policy?.maintenance === undefined
      ? undefined
      : { action: 'maintenance', status: policy.maintenance.status, code: 'SY_MAINTENANCE' };
  if (found === undefined) {
    const outcome = maintenance ?? {
      action: 'error',
      status: 404,
      code: 'SY_NO_VHOST',
      reason: `no entry for ${parsed.key}${parsed.port === undefined ? '' : ` or ${parsed.host}`} and no static node`,
    };
    return { ...empty(echo, host, outcome), policy: policyView };
  }
  const entry = found.entry;
  const context: BalancerContext = { clientAddress: client, header: (name) => headers[name.toLowerCase()] };
  const explained = router.balancing.explain(entry, context);
  const order = explained.candidates.map((c) => c.address);
  const now = router.now();
  const nodes: NodeVerdict[] = entry.nodes.map((node) => {
    const position = order.indexOf(node.address);
    let excluded: string | null = null;
    if (position < 0) {
      const ejection = router.ops.health.describe(entry.key, node.address);
      if (node.state === 'draining') excluded = 'draining';
      else if (ejection?.ejected === true) {
        excluded = `ejected${ejection.reason === undefined ? '' : ` (${ejection.reason})`}${
          ejection.until === undefined ? '' : ` for ${Math.max(0, ejection.until - now)} ms more`
        }`;
      } else if (node.backup > 0)
        excluded = `backup level ${node.backup}: used only when lower levels have no live node`;
      else excluded = 'not eligible';
    }
    return {
      address: node.address,
      state: node.state,
      source: node.source,
      backup: node.backup,
      weight: node.weight,
      position: position < 0 ? null : position,
      excluded,
    };
  });
  const outcome: Outcome =
    maintenance ??
    (order.length === 0
      ? { action: 'error', status: 503, code: 'SY_NO_LIVE_NODE', reason: 'every node is draining or ejected' }
      : { action: 'proxy', node: order[0]!, fallbacks: order.slice(1, router.maxAttempts) });
  return {
    input: echo,
    host,
    match: { rule: found.rule, key: entry.key },
    policy: policyView,
    balancer: {
      name: explained.balancer,
      source: explained.balancerSource,
      reason: explained.reason,
      panic: explained.panic,
    },
    candidates: explained.candidates,
    nodes,
    outcome,
  };
}

function empty(
  input: RouteExplanationView['input'],
  host: RouteExplanationView['host'],
  outcome: Outcome,
): RouteExplanationView {
  return { input, host, match: null, policy: null, balancer: null, candidates: [], nodes: [], outcome };
}
