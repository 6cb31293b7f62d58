/**
 * Errors and drop reasons of the subscription server.
 *
 * Every error carries a permanent `code` (callers and tests branch on it, never on the message), the
 * `source` component and `retryable` (whether the same operation could succeed later unchanged).
 *
 * Codes:
 *  - SY_BAD_PACKET        the datagram is not a well-formed subscription packet (framing, see protocol).
 *  - SY_BAD_SUBSCRIPTION  the packet is well formed but a field is missing or invalid, or the verifier
 *                         refused it, or it unsubscribes a node that is not registered.
 *  - SY_LIMIT_EXCEEDED    accepting it would exceed a registry limit (hosts, nodes per host, key length).
 *  - SY_BIND_FAILED       a UDP socket could not be bound; `address` names the bind address. Retryable
 *                         (the port may be freed later).
 *  - SY_CLOSED            `start()` was called on a server that has been closed.
 *  - SY_BAD_OPTIONS       a constructor was given invalid options (programming/config error).
 *  - SY_BAD_KEY           a configured signing key file is missing, unreadable or not a key of the
 *                         configured algorithm; `file` names it.
 *
 * Packets are never rejected by throwing: the intake counts a drop under a `DropReason`. The error
 * classes exist so that a drop can be turned into a coded error where a caller wants one
 * (`new DroppedPacketError(reason, detail)`), and for the few operations that do throw (binding).
 */
import type { BadPacketReason } from '@switchyard/protocol';

/**
 * Why a datagram was dropped. Stable identifiers: they are metric label values
 * (`subscription_dropped_total{reason="..."}`), never rename one.
 */
export type DropReason =
  // framing, from the protocol codec
  | BadPacketReason
  // field validation (announcement)
  | 'missing-key'
  | 'bad-key'
  | 'key-too-long'
  | 'missing-address'
  | 'bad-address'
  | 'bad-field'
  // registry limits and state
  | 'too-many-nodes'
  | 'too-many-hosts'
  | 'unknown-node'
  // authorisation
  | 'rejected-by-verifier'
  // source controls (before decoding)
  | 'source-not-allowed'
  | 'rate-limited'
  // node address allowlist (SSRF defence)
  | 'address-not-allowed'
  // signatures and replay defence
  | 'unsigned'
  | 'unknown-signer'
  | 'signer-not-allowed'
  | 'bad-signature'
  | 'stale-timestamp'
  | 'replayed'
  | 'nonce-cache-full';

/** Every DropReason, in a fixed order (for metric exposition and zero-initialised counters). */
export const DROP_REASONS: readonly DropReason[] = Object.freeze([
  'truncated-header',
  'wrong-modifier1',
  'size-mismatch',
  'oversized-packet',
  'truncated-pair',
  'empty-key',
  'duplicate-key',
  'oversized-value',
  'sign-not-last',
  'sig-not-last',
  'missing-key',
  'bad-key',
  'key-too-long',
  'missing-address',
  'bad-address',
  'bad-field',
  'too-many-nodes',
  'too-many-hosts',
  'unknown-node',
  'rejected-by-verifier',
  'source-not-allowed',
  'rate-limited',
  'address-not-allowed',
  'unsigned',
  'unknown-signer',
  'signer-not-allowed',
  'bad-signature',
  'stale-timestamp',
  'replayed',
  'nonce-cache-full',
] as const satisfies readonly DropReason[]);

const PACKET_REASONS: ReadonlySet<DropReason> = new Set<DropReason>([
  'truncated-header',
  'wrong-modifier1',
  'size-mismatch',
  'oversized-packet',
  'truncated-pair',
  'empty-key',
  'duplicate-key',
  'oversized-value',
  'sign-not-last',
  'sig-not-last',
]);

const LIMIT_REASONS: ReadonlySet<DropReason> = new Set<DropReason>([
  'too-many-nodes',
  'too-many-hosts',
  'key-too-long',
  'rate-limited',
  'nonce-cache-full',
]);

const REASON_SET: ReadonlySet<string> = new Set<string>(DROP_REASONS);

/** True when `value` is one of the DropReason identifiers. */
export function isDropReason(value: string): value is DropReason {
  return REASON_SET.has(value);
}

export type SubscriptionErrorCode =
  | 'SY_BAD_PACKET'
  | 'SY_BAD_SUBSCRIPTION'
  | 'SY_LIMIT_EXCEEDED'
  | 'SY_BIND_FAILED'
  | 'SY_CLOSED'
  | 'SY_BAD_OPTIONS'
  | 'SY_BAD_KEY';

/** Which error code a drop reason belongs to. */
export function dropReasonCode(reason: DropReason): 'SY_BAD_PACKET' | 'SY_BAD_SUBSCRIPTION' | 'SY_LIMIT_EXCEEDED' {
  if (PACKET_REASONS.has(reason)) return 'SY_BAD_PACKET';
  if (LIMIT_REASONS.has(reason)) return 'SY_LIMIT_EXCEEDED';
  return 'SY_BAD_SUBSCRIPTION';
}

/** Base class of every error thrown or built by this package. */
export class SubscriptionError extends Error {
  readonly code: SubscriptionErrorCode;
  readonly source = 'subscription-server' as const;
  readonly retryable: boolean;
  constructor(code: SubscriptionErrorCode, message: string, retryable: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SubscriptionError';
    this.code = code;
    this.retryable = retryable;
  }
}

/** A dropped packet as an error: SY_BAD_PACKET, SY_BAD_SUBSCRIPTION or SY_LIMIT_EXCEEDED by `reason`. */
export class DroppedPacketError extends SubscriptionError {
  readonly reason: DropReason;
  readonly detail: string;
  constructor(reason: DropReason, detail: string) {
    const code = dropReasonCode(reason);
    // A limit may clear up later (a host expires); a malformed or refused packet stays refused.
    super(code, `subscription dropped (${reason}): ${detail}`, code === 'SY_LIMIT_EXCEEDED');
    this.name = 'DroppedPacketError';
    this.reason = reason;
    this.detail = detail;
  }
}

/** SY_BIND_FAILED: binding the UDP socket for `address` failed (`cause` is the system error). */
export class BindFailedError extends SubscriptionError {
  readonly address: string;
  constructor(address: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super('SY_BIND_FAILED', `cannot bind subscription socket ${address}: ${why}`, true, { cause });
    this.name = 'BindFailedError';
    this.address = address;
  }
}

/** SY_CLOSED: the component was closed and cannot be started again. */
export class ClosedError extends SubscriptionError {
  constructor(what: string) {
    super('SY_CLOSED', `${what} is closed`, false);
    this.name = 'ClosedError';
  }
}

/** SY_BAD_OPTIONS: invalid constructor options; `issues` lists `path: message` for each problem. */
export class InvalidOptionsError extends SubscriptionError {
  readonly issues: readonly string[];
  constructor(component: string, issues: readonly string[]) {
    super('SY_BAD_OPTIONS', `invalid ${component} options: ${issues.join('; ')}`, false);
    this.name = 'InvalidOptionsError';
    this.issues = issues;
  }

  static fromZod(component: string, error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }) {
    return new InvalidOptionsError(
      component,
      error.issues.map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`),
    );
  }
}

/** SY_BAD_KEY: a configured key file cannot be used (`file` names it; `cause` is the underlying error). */
export class BadKeyError extends SubscriptionError {
  readonly file: string;
  constructor(file: string, why: string, cause?: unknown) {
    super('SY_BAD_KEY', `signing key ${file}: ${why}`, false, cause === undefined ? undefined : { cause });
    this.name = 'BadKeyError';
    this.file = file;
  }
}

/** A counter per DropReason, all zero, with a null prototype. */
export function emptyDropCounters(): Record<DropReason, number> {
  const counters = Object.create(null) as Record<DropReason, number>;
  for (const reason of DROP_REASONS) counters[reason] = 0;
  return counters;
}
