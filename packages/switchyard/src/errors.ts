/**
 * Errors of the switchyard CLI and composition. `SY_BAD_OPTION` (exit code 2) names the option and the
 * fix; errors from the composed components keep their own codes.
 */
export class CliError extends Error {
  readonly code: 'SY_BAD_OPTION';
  readonly source = 'cli' as const;
  readonly retryable = false;
  /** The option at fault, e.g. `--http`. */
  readonly option: string | undefined;
  /** `file:line` of the offending ini line (`--ini`), when there is one. */
  readonly location: string | undefined;
  constructor(message: string, option?: string, location?: string) {
    super(message);
    this.name = 'CliError';
    this.code = 'SY_BAD_OPTION';
    this.option = option;
    this.location = location;
  }
}

/** Exit code for an error at startup: 2 for anything the user can fix (options, busy addresses), else 1. */
export function exitCodeFor(error: unknown): number {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SY_BAD_OPTION' ||
    code === 'SY_BIND_FAILED' ||
    code === 'SY_BAD_CONFIG' ||
    code === 'SY_BAD_KEY' ||
    code === 'SY_BAD_CERTIFICATE' ||
    code === 'SY_PRIVILEGE_DROP_FAILED'
    ? 2
    : 1;
}

/**
 * `--uid`/`--gid` could not be switched to (privilege-drop.ts): not root and asked for other ids, or a
 * set*id call failed. Exit code 2: the process never keeps running with ids other than those asked for.
 */
export class PrivilegeError extends Error {
  readonly code = 'SY_PRIVILEGE_DROP_FAILED' as const;
  readonly source = 'privileges' as const;
  readonly retryable = false;
  /** `--uid` or `--gid`. */
  readonly option: string;
  constructor(message: string, option: string) {
    super(message);
    this.name = 'PrivilegeError';
    this.option = option;
  }
}

export type WorkerErrorCode =
  /** A worker exited or failed before it was listening. */
  | 'SY_WORKER_FAILED'
  /** A worker saw a gap in the primary's change sequence (it exits and is restarted with a snapshot). */
  | 'SY_WORKER_DESYNC'
  /** A worker stopped answering (or never listened) and was killed to be restarted (logged code). */
  | 'SY_WORKER_STALLED';

/** Cluster (`--workers`) errors. A worker's own startup error (SY_BIND_FAILED...) keeps its code. */
export class WorkerError extends Error {
  readonly code: WorkerErrorCode | string;
  readonly source = 'cluster' as const;
  readonly retryable: boolean;
  readonly option: string | undefined;
  constructor(code: WorkerErrorCode | string, message: string, option?: string) {
    super(message);
    this.name = 'WorkerError';
    this.code = code;
    this.retryable = code === 'SY_WORKER_DESYNC';
    this.option = option;
  }
}
