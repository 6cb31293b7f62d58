/**
 * Table lag of `--workers`: the time from the first change of a batch being made on the primary to a
 * worker having applied the batch, measured one way on a clock both share (worker-messages.ts
 * sharedNow) and reported by the worker. Every batch of every worker is one observation, so p99 covers
 * the slowest worker.
 *
 * Exported as the histogram `switchyard_worker_table_lag_seconds` (LAG_BUCKETS) and summarised from the
 * last RECENT observations (`summary()`: p50, p99, max in ms).
 */
import type { MetricFamily, MetricSample } from '@switchyard/router';

/** Histogram bucket upper bounds, seconds. */
export const LAG_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1] as const;
const RECENT = 1024;

export class LagRecorder {
  private readonly counts = new Array<number>(LAG_BUCKETS.length + 1).fill(0);
  private sumSeconds = 0;
  private readonly recent: number[] = [];
  private next = 0;

  /** One lag observation, ms. */
  observe(ms: number): void {
    const seconds = ms / 1000;
    let i = 0;
    while (i < LAG_BUCKETS.length && seconds > LAG_BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.sumSeconds += seconds;
    if (this.recent.length < RECENT) this.recent.push(ms);
    else this.recent[this.next] = ms;
    this.next = (this.next + 1) % RECENT;
  }

  /** Over the last RECENT observations, ms (undefined before any). */
  summary(): { samples: number; p50Ms?: number; p99Ms?: number; maxMs?: number } {
    if (this.recent.length === 0) return { samples: 0 };
    const sorted = [...this.recent].sort((a, b) => a - b);
    const at = (q: number): number => round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    return { samples: this.total(), p50Ms: at(0.5), p99Ms: at(0.99), maxMs: round(sorted[sorted.length - 1]!) };
  }

  family(): MetricFamily {
    const name = 'switchyard_worker_table_lag_seconds';
    const values: MetricSample[] = [];
    let cumulative = 0;
    for (let i = 0; i < LAG_BUCKETS.length; i++) {
      cumulative += this.counts[i]!;
      values.push({ metricName: `${name}_bucket`, labels: { le: LAG_BUCKETS[i]! }, value: cumulative });
    }
    cumulative += this.counts[LAG_BUCKETS.length]!;
    values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: cumulative });
    values.push({ metricName: `${name}_sum`, value: this.sumSeconds });
    values.push({ metricName: `${name}_count`, value: cumulative });
    return {
      name,
      help: 'Time from a table change on the primary to a worker having applied it.',
      type: 'histogram',
      values,
    };
  }

  private total(): number {
    return this.counts.reduce((a, b) => a + b, 0);
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
