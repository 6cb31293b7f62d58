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
    code === 'SY_BAD_CERTIFICATE'
    ? 2
    : 1;
}
