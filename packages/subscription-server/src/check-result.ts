/**
 * The outcome of one authorisation check in the intake pipeline (source policy, node address policy,
 * signature schemes): pass, or refuse with the DropReason the server counts and a detail for its log.
 */
import type { DropReason } from './errors.js';

export type CheckResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: DropReason; readonly detail: string };

export const PASS: CheckResult = Object.freeze({ ok: true });

export function refuse(reason: DropReason, detail: string): CheckResult {
  return { ok: false, reason, detail };
}
