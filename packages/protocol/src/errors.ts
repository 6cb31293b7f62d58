/**
 * Errors of the protocol package. Every error carries a permanent `code` (tests and callers branch on it,
 * never on the message), the `source` component and whether retrying the same input could succeed.
 */

/** Why a byte string is not a valid uwsgi / subscription packet. Stable identifiers: they label metrics. */
export type BadPacketReason =
  | 'truncated-header'
  | 'wrong-modifier1'
  | 'size-mismatch'
  | 'oversized-packet'
  | 'truncated-pair'
  | 'empty-key'
  | 'duplicate-key'
  | 'oversized-value'
  | 'sign-not-last'
  | 'sig-not-last';

export class ProtocolError extends Error {
  readonly code: string;
  readonly source = 'protocol' as const;
  readonly retryable = false;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
  }
}

/** SY_BAD_PACKET: the bytes are not a well-formed packet; `reason` says which rule failed. */
export class BadPacketError extends ProtocolError {
  readonly reason: BadPacketReason;
  constructor(reason: BadPacketReason, message: string) {
    super('SY_BAD_PACKET', message);
    this.name = 'BadPacketError';
    this.reason = reason;
  }
}

/** SY_VARS_TOO_LARGE: an encoded vars block would exceed the 65535-byte uwsgi limit. */
export class VarsTooLargeError extends ProtocolError {
  readonly size: number;
  constructor(size: number) {
    super('SY_VARS_TOO_LARGE', `uwsgi vars block of ${size} bytes exceeds 65535`);
    this.name = 'VarsTooLargeError';
    this.size = size;
  }
}
