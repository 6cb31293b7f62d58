/**
 * `GET /metrics`: Prometheus text from the router's own prom-client Registry (never the global one).
 * Every switchyard_* family is a collector that reads plain counters at scrape time (request-metrics.ts,
 * router stats, health hooks, the composition's subscription counters): the request path never calls
 * prom-client. Node process metrics and event-loop lag come from prom-client's default collectors.
 *
 * Families (label values are bounded sets):
 *  switchyard_requests_total{class}              responses by status class (1xx..5xx; 499 counts as 4xx)
 *  switchyard_request_outcomes_total{code}       OK or the SY_* code the request ended with
 *  switchyard_request_duration_seconds           histogram (DURATION_BUCKETS)
 *  switchyard_requests_in_flight                 gauge
 *  switchyard_request_body_bytes_total / switchyard_response_body_bytes_total
 *  switchyard_upstream_errors_total{code}        failed attempts on nodes (connect, reset, timeout...)
 *  switchyard_retries_total                      attempts moved to another node
 *  switchyard_ejections_total / switchyard_readmissions_total
 *  switchyard_hosts / switchyard_nodes           table size
 *  switchyard_host_requests_total{host,class}    the top-N busiest hosts (--metrics-top-hosts), others
 *                                                under host="other" (top-hosts.ts)
 *  + families from `extra` (the composition adds the subscription server's: accepted, dropped{reason})
 */
import { collectDefaultMetrics, type Metric, Registry } from 'prom-client';
import { DURATION_BUCKETS, STATUS_CLASSES } from './request-metrics.js';
import type { Router } from './router.js';

export interface MetricSample {
  readonly labels?: Readonly<Record<string, string | number>>;
  readonly value: number;
  /** Full series name when it differs from the family's (histogram `_bucket`, `_sum`, `_count`). */
  readonly metricName?: string;
}

export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly values: readonly MetricSample[];
}

export class MetricsExporter {
  readonly registry = new Registry();
  private readonly router: Router;
  private readonly extra: () => readonly MetricFamily[];
  private scraping: MetricFamily[] | undefined;

  private readonly remote: RemoteFamilies | undefined;

  /**
   * `remote`: the router families of other processes serving traffic for this one (`--workers`); their
   * samples are added to this router's, except the table-size gauges every process shares.
   */
  constructor(router: Router, extra: () => readonly MetricFamily[] = () => [], remote?: RemoteFamilies) {
    this.router = router;
    this.extra = extra;
    this.remote = remote;
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
    for (const name of FAMILY_NAMES) this.register(name);
    // Families named by `extra` are registered on first scrape (their names are only known then).
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text of every family. */
  async scrape(): Promise<string> {
    const own = routerMetricFamilies(this.router);
    const families = [...(this.remote === undefined ? own : sumFamilies(own, await this.remote())), ...this.extra()];
    for (const family of families) {
      if (this.registry.getSingleMetric(family.name) === undefined) this.register(family.name);
    }
    this.scraping = families;
    try {
      return await this.registry.metrics();
    } finally {
      this.scraping = undefined;
    }
  }

  /** Registers a collector object that serves `name` from the families of the current scrape. */
  private register(name: string): void {
    const metric = {
      name,
      get: async () => {
        const family = this.scraping?.find((f) => f.name === name);
        return family === undefined
          ? { name, help: name, type: 'gauge', values: [], aggregator: 'sum' }
          : { ...family, aggregator: 'sum' };
      },
    };
    this.registry.registerMetric(metric as unknown as Metric);
  }
}

/** Families other processes report, one list per process. */
export type RemoteFamilies = () => Promise<readonly (readonly MetricFamily[])[]>;

/** Families that describe the shared table, not traffic: never summed across processes. */
const SHARED_FAMILIES = new Set(['switchyard_hosts', 'switchyard_nodes']);

/** `own` with every sample of `others` added (same family, series name and labels). */
export function sumFamilies(
  own: readonly MetricFamily[],
  others: readonly (readonly MetricFamily[])[],
): MetricFamily[] {
  const byName = new Map<string, { family: MetricFamily; series: Map<string, MetricSample> }>();
  const out: MetricFamily[] = [];
  const add = (family: MetricFamily, isOwn: boolean): void => {
    if (!isOwn && SHARED_FAMILIES.has(family.name)) return;
    let slot = byName.get(family.name);
    if (slot === undefined) {
      slot = { family: { ...family, values: [] }, series: new Map() };
      byName.set(family.name, slot);
      out.push(slot.family);
    }
    for (const sample of family.values) {
      const id = `${sample.metricName ?? ''}\u0000${JSON.stringify(sample.labels ?? {})}`;
      const seen = slot.series.get(id);
      slot.series.set(id, seen === undefined ? { ...sample } : { ...seen, value: seen.value + sample.value });
    }
  };
  for (const family of own) add(family, true);
  for (const list of others) for (const family of list) add(family, false);
  return out.map((family) => ({ ...family, values: [...byName.get(family.name)!.series.values()] }));
}

/** The router's families (request counters, histogram, table size, health, tunnels), read now. */
export function routerMetricFamilies(router: Router): MetricFamily[] {
  const m = router.ops.metrics;
  const stats = router.ownStats();
  const classes = STATUS_CLASSES.map((cls, i) => ({ labels: { class: cls }, value: m.classes[i]! }));
  const outcomes: MetricSample[] = [{ labels: { code: 'OK' }, value: m.ok }];
  for (const [code, n] of m.outcomes) outcomes.push({ labels: { code }, value: n });
  const histogram: MetricSample[] = [];
  let cumulative = 0;
  for (let i = 0; i < DURATION_BUCKETS.length; i++) {
    cumulative += m.durationCounts[i]!;
    histogram.push({
      metricName: 'switchyard_request_duration_seconds_bucket',
      labels: { le: DURATION_BUCKETS[i]! },
      value: cumulative,
    });
  }
  cumulative += m.durationCounts[DURATION_BUCKETS.length]!;
  histogram.push({
    metricName: 'switchyard_request_duration_seconds_bucket',
    labels: { le: '+Inf' },
    value: cumulative,
  });
  histogram.push({ metricName: 'switchyard_request_duration_seconds_sum', value: m.durationSumMs / 1000 });
  histogram.push({ metricName: 'switchyard_request_duration_seconds_count', value: cumulative });
  const upstream: MetricSample[] = [];
  for (const [code, n] of m.upstreamErrors) upstream.push({ labels: { code }, value: n });
  const perHost: MetricSample[] = [];
  for (const record of m.topHosts.select()) {
    for (let i = 0; i < STATUS_CLASSES.length; i++) {
      perHost.push({ labels: { host: record.key, class: STATUS_CLASSES[i]! }, value: record.classes[i]! });
    }
  }
  for (let i = 0; i < STATUS_CLASSES.length; i++) {
    perHost.push({ labels: { host: 'other', class: STATUS_CLASSES[i]! }, value: m.otherHostClasses[i]! });
  }
  const health = router.ops.health;
  const tunnels = router.tunnels.stats();
  return [
    { name: 'switchyard_requests_total', help: 'Responses by status class.', type: 'counter', values: classes },
    {
      name: 'switchyard_request_outcomes_total',
      help: 'Requests by outcome: OK or the SY_* error code.',
      type: 'counter',
      values: outcomes,
    },
    {
      name: 'switchyard_request_duration_seconds',
      help: 'Request duration, head received to response end.',
      type: 'histogram',
      values: histogram,
    },
    {
      name: 'switchyard_requests_in_flight',
      help: 'Requests being served.',
      type: 'gauge',
      values: [{ value: stats.inFlight }],
    },
    {
      name: 'switchyard_request_body_bytes_total',
      help: 'Request body bytes read from clients.',
      type: 'counter',
      values: [{ value: m.bytesIn }],
    },
    {
      name: 'switchyard_response_body_bytes_total',
      help: 'Response body bytes written to clients.',
      type: 'counter',
      values: [{ value: m.bytesOut }],
    },
    {
      name: 'switchyard_upstream_errors_total',
      help: 'Failed attempts on nodes by code (SY_UPSTREAM_CONNECT, _RESET, _TIMEOUT...).',
      type: 'counter',
      values: upstream,
    },
    {
      name: 'switchyard_retries_total',
      help: 'Attempts moved to another node.',
      type: 'counter',
      values: [{ value: stats.retries }],
    },
    {
      name: 'switchyard_ejections_total',
      help: 'Nodes ejected by passive health checking.',
      type: 'counter',
      values: [{ value: health.ejections }],
    },
    {
      name: 'switchyard_readmissions_total',
      help: 'Ejected nodes readmitted.',
      type: 'counter',
      values: [{ value: health.readmissions }],
    },
    {
      name: 'switchyard_hosts',
      help: 'Virtual hosts in the table.',
      type: 'gauge',
      values: [{ value: stats.hosts }],
    },
    { name: 'switchyard_nodes', help: 'Nodes in the table.', type: 'gauge', values: [{ value: stats.nodes }] },
    {
      name: 'switchyard_websockets_open',
      help: 'WebSocket tunnels open (each also counts as a request in flight).',
      type: 'gauge',
      values: [{ value: tunnels.open }],
    },
    {
      name: 'switchyard_websocket_going_away_total',
      help: 'WebSocket tunnels the router closed with 1001 Going Away, by reason (shutdown, drain, idle).',
      type: 'counter',
      values: Object.entries(tunnels.goingAway).map(([reason, value]) => ({ labels: { reason }, value })),
    },
    {
      name: 'switchyard_host_requests_total',
      help: 'Responses by host and status class, for the busiest hosts; the rest under host="other".',
      type: 'counter',
      values: perHost,
    },
  ];
}

const FAMILY_NAMES = [
  'switchyard_requests_total',
  'switchyard_request_outcomes_total',
  'switchyard_request_duration_seconds',
  'switchyard_requests_in_flight',
  'switchyard_request_body_bytes_total',
  'switchyard_response_body_bytes_total',
  'switchyard_upstream_errors_total',
  'switchyard_retries_total',
  'switchyard_ejections_total',
  'switchyard_readmissions_total',
  'switchyard_hosts',
  'switchyard_nodes',
  'switchyard_websockets_open',
  'switchyard_websocket_going_away_total',
  'switchyard_host_requests_total',
];
