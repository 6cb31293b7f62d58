/**
 * The registry's options, result and metrics types (registry.ts), and the schema its constructor checks
 * the options against.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import type { DropReason } from './errors.js';

/** What an accepted announcement did: the TableEvent it emitted ('draining' also for a repeated unsubscribe). */
export type AppliedChange = 'added' | 'refreshed' | 'updated' | 'draining';

export type ApplyResult =
  | { readonly accepted: true; readonly change: AppliedChange }
  | { readonly accepted: false; readonly reason: DropReason; readonly detail: string };

export interface RegistryOptions {
  /** ms; default Date.now. */
  clock?: () => number;
  /** Silence longer than this (ms) expires an active node. Default 17_000 (uWSGI). */
  toleranceMs?: number;
  /** A draining node is removed after this (ms) even if nobody reported it drained. Default 30_000. */
  drainTimeoutMs?: number;
  /** Period (ms) of the sweep timer started by start(). Default 1_000. */
  sweepIntervalMs?: number;
  /**
   * Largest number of nodes one timer slice removes before yielding to the event loop; it also examines
   * at most 4× as many expiry entries. Default 256.
   */
  sweepBatchSize?: number;
  /** Longest a timer slice runs (ms of wall time) before yielding to the event loop. Default 0.5. */
  sweepSliceMs?: number;
  /** Longest accepted key in bytes. Default 255. */
  maxKeyLength?: number;
  /** Default 64. */
  maxNodesPerHost?: number;
  /** Default 1_000_000. */
  maxHosts?: number;
  /** Receives listener failures; default: a silent logger. */
  logger?: Logger;
}

/** Introspection counters (also exported as metrics by the composition). */
export interface RegistryMetrics {
  readonly hosts: number;
  readonly nodes: number;
  readonly draining: number;
  /** Wheel entries looked at by sweeps since creation: stays proportional to the nodes that were due. */
  readonly sweepExamined: number;
  /** Expiry entries held, stale ones included (about one per node). */
  readonly wheelEntries: number;
  /** Node slots the columns have room for (≥ nodes; grows a page of 4 096 at a time). */
  readonly slotCapacity: number;
}

const positiveInt = z.number().int().positive();

/** The schema `RegistryOptions` are checked against (SY_BAD_OPTIONS). */
export const RegistryOptionsSchema = z.strictObject({
  clock: z.custom<() => number>((v) => typeof v === 'function', 'clock must be a function').optional(),
  toleranceMs: positiveInt.optional(),
  drainTimeoutMs: positiveInt.optional(),
  sweepIntervalMs: positiveInt.optional(),
  sweepBatchSize: positiveInt.optional(),
  sweepSliceMs: z.number().positive().optional(),
  maxKeyLength: positiveInt.max(255).optional(),
  maxNodesPerHost: positiveInt.optional(),
  maxHosts: positiveInt.optional(),
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null, 'logger must be a pino logger').optional(),
});
