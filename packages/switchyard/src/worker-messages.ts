/**
 * Messages between the cluster primary and its HTTP workers (`--workers N`), over the fork IPC channel
 * (JSON, ordered per worker). The primary is the only writer of the table; workers only report.
 *
 * Handshake: the worker builds its router and sends `hello`; the primary answers `snapshot` (the whole
 * table as changes, stamped with the sequence number of the last change it contains); the worker applies
 * it, binds its listeners and sends `listening` (or `failed`). From then on the primary sends `changes`
 * batches (one per event-loop turn with changes), whose changes carry consecutive sequence numbers from
 * `first`; a worker skips those at or below what it has applied (a snapshot can overtake a batch) and
 * exits on a gap (SY_WORKER_DESYNC: the primary restarts it and it gets a fresh snapshot).
 *
 * Runtime: every RUNTIME_REPORT_MS a worker sends what changed in its node runtime and its counters, so
 * the primary's admin views show cluster totals; health events are forwarded as they happen.
 *
 * Drain: a worker sends `drained` when a draining node has no request in flight in that worker, with the
 * sequence number it had applied then; the primary counts it for drains started at or before that number.
 */
import type {
  HealthEvent,
  MetricFamily,
  RouterStats,
  RuntimeChanges,
  TableChange,
  TunnelStats,
} from '@switchyard/router';

export type PrimaryMessage =
  /** One chunk (at most SNAPSHOT_CHUNK changes) of the table; `last` on the final one. */
  | { readonly t: 'snapshot'; readonly seq: number; readonly changes: readonly TableChange[]; readonly last: boolean }
  /** `at`: when the batch's first change was made, ms on the shared clock (`sharedNow`). */
  | { readonly t: 'changes'; readonly first: number; readonly at: number; readonly changes: readonly TableChange[] }
  /** `metrics`: the worker's router families; `digest`: its table digest (router/table-replica.ts). */
  | { readonly t: 'ask'; readonly id: number; readonly what: 'metrics' | 'digest' }
  | { readonly t: 'stop' };

export type WorkerMessage =
  | { readonly t: 'hello' }
  | { readonly t: 'listening'; readonly http: readonly Bound[]; readonly https: readonly Bound[] }
  | { readonly t: 'failed'; readonly code: string; readonly message: string; readonly option?: string | undefined }
  | { readonly t: 'drained'; readonly key: string; readonly address: string; readonly seq: number }
  /** `lagMs`: from the batch's `at` to the end of applying it, on the shared clock. */
  | { readonly t: 'applied'; readonly seq: number; readonly lagMs: number }
  /** About once a second: node runtime changes and the worker's router counters (cluster-runtime.ts). */
  | { readonly t: 'runtime'; readonly report: RuntimeReport }
  /** Passive health (outlier ejection) is per worker; the primary's event log shows each event. */
  | { readonly t: 'health'; readonly event: HealthEvent }
  | { readonly t: 'answer'; readonly id: number; readonly seq: number; readonly answer: WorkerAnswer };

export type WorkerAnswer =
  | { readonly what: 'metrics'; readonly families: readonly MetricFamily[] }
  | { readonly what: 'digest'; readonly digest: string };

/** What a worker reports every RUNTIME_REPORT_MS (worker-reports.ts aggregates it on the primary). */
export interface RuntimeReport {
  /** Node runtime changed since the previous report. */
  readonly changes: RuntimeChanges;
  /** The worker's router counters (totals). */
  readonly stats: RouterStats & { readonly inFlight: number };
  /** Hosts that counted requests since the previous report: [key, requests, responses by class]. */
  readonly hosts: readonly (readonly [string, number, readonly number[]])[];
  /** Request totals (`GET /v1/stats` requests section). */
  readonly requests: {
    readonly total: number;
    readonly ok: number;
    readonly outcomes: Readonly<Record<string, number>>;
    readonly bytesIn: number;
    readonly bytesOut: number;
  };
  readonly websockets: TunnelStats;
}

/**
 * Most changes per message (snapshot chunk or change batch): a million-host table goes in pieces, not as
 * one 200 MB JSON string.
 */
export const SNAPSHOT_CHUNK = 10_000;

/**
 * A clock the primary and its workers share (ms, sub-ms resolution): the process start in wall time plus
 * the monotonic time since. Lag is measured one way with it (no return trip in the figure).
 */
export function sharedNow(): number {
  return performance.timeOrigin + performance.now();
}

/** How often a worker reports its runtime figures, ms. */
export const RUNTIME_REPORT_MS = 1000;

export interface Bound {
  readonly address: string;
  readonly port: number;
  readonly family: string;
}

const PRIMARY_TYPES = new Set(['snapshot', 'changes', 'ask', 'stop']);
const WORKER_TYPES = new Set(['hello', 'listening', 'failed', 'drained', 'applied', 'answer', 'runtime', 'health']);

/** Messages come from our own processes; this only guards against foreign IPC traffic on the channel. */
export function isPrimaryMessage(value: unknown): value is PrimaryMessage {
  return typeof value === 'object' && value !== null && PRIMARY_TYPES.has((value as { t?: unknown }).t as string);
}

export function isWorkerMessage(value: unknown): value is WorkerMessage {
  return typeof value === 'object' && value !== null && WORKER_TYPES.has((value as { t?: unknown }).t as string);
}
