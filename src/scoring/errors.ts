/**
 * Error codes that callers can branch on. The command-line tool maps every
 * code but `INTERNAL` to exit status 2 (bad input or usage); a server maps
 * them to 400.
 */
export type ErrorCode =
  | 'INVALID_INPUT'
  | 'INVALID_PARAMETER'
  | 'DIMENSION_MISMATCH'
  | 'NON_FINITE_VALUE'
  | 'EMPTY_INPUT'
  | 'UNSUPPORTED_FORMAT'
  | 'UNKNOWN_ID'
  | 'READ_FAILED'
  | 'WRITE_FAILED'
  | 'INTERNAL';

/** An error caused by the caller's input, with a code and a one-line message. */
export class AttnScoreError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AttnScoreError';
    this.code = code;
  }
}

/** Returns true when `error` was raised for bad input rather than a bug. */
export function isInputError(error: unknown): error is AttnScoreError {
  return error instanceof AttnScoreError && error.code !== 'INTERNAL';
}
