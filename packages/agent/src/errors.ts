/**
 * Errors of the agent package. Every error carries a permanent `code` (callers and tests branch on it,
 * never on the message), `source: 'agent'` and whether retrying the same operation could succeed.
 *
 * Codes:
 * - SY_BAD_OPTION   an announce option or CLI argument is invalid; `option` names it. Not retryable.
 * - SY_SEND_FAILED  a subscription datagram could not be handed to the kernel (DNS failure or timeout,
 *                   socket error). Retryable: the next refresh tries again.
 * - SY_AGENT_CLOSED the handle was closed; no more announcements are sent. Not retryable.
 */

export type AgentErrorCode = 'SY_BAD_OPTION' | 'SY_SEND_FAILED' | 'SY_AGENT_CLOSED';

export class AgentError extends Error {
  readonly code: AgentErrorCode;
  readonly source = 'agent' as const;
  readonly retryable: boolean;
  constructor(code: AgentErrorCode, message: string, retryable: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AgentError';
    this.code = code;
    this.retryable = retryable;
  }
}

/** SY_BAD_OPTION: `option` is the offending option name (`weight`, `server`, or a CLI flag like `--weight`). */
export class BadOptionError extends AgentError {
  readonly option: string;
  constructor(option: string, message: string) {
    super('SY_BAD_OPTION', message, false);
    this.name = 'BadOptionError';
    this.option = option;
  }
}

/** SY_SEND_FAILED: sending one datagram failed; `command` says whether it was a subscribe or an unsubscribe. */
export class SendFailedError extends AgentError {
  readonly command: 'subscribe' | 'unsubscribe';
  constructor(command: 'subscribe' | 'unsubscribe', message: string, cause: unknown) {
    super('SY_SEND_FAILED', message, true, { cause });
    this.name = 'SendFailedError';
    this.command = command;
  }
}

/** SY_AGENT_CLOSED: `announceNow()` was called after `close()`. */
export class AgentClosedError extends AgentError {
  constructor() {
    super('SY_AGENT_CLOSED', 'the agent is closed', false);
    this.name = 'AgentClosedError';
  }
}

/**
 * The one mapping from agent errors to process exit codes (the agent has no HTTP surface):
 * 2 = usage error (bad option), 1 = anything else.
 */
export function exitCodeFor(error: unknown): number {
  return error instanceof AgentError && error.code === 'SY_BAD_OPTION' ? 2 : 1;
}
