import { ExitCode } from './exit-codes.js';

/** A failure the CLI reports as one line `dcx: <message>` and exits with `exitCode`. */
export class DcxError extends Error {
  /** The HTTP status of the server's answer this failure reports, if it is one. */
  readonly status?: number;

  constructor(
    readonly exitCode: ExitCode,
    message: string,
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, options);
    this.name = 'DcxError';
    this.status = options?.status;
  }
}

export function usageError(message: string): DcxError {
  return new DcxError(ExitCode.Usage, message);
}

export function unusableBundle(message: string, cause?: unknown): DcxError {
  return new DcxError(ExitCode.UnusableBundle, message, { cause });
}

export function unreachable(message: string, cause?: unknown): DcxError {
  return new DcxError(ExitCode.ServerUnreachable, message, { cause });
}

/** The message of anything thrown, on one line. */
export function messageOf(error: unknown): string {
  // Duck-typed: errors from another realm (Node's fetch under a test VM) fail `instanceof Error`.
  const text =
    typeof error === 'object' && error !== null && 'message' in error && typeof error.message === 'string' ? error.message : String(error);
  return text.replace(/\s*\n\s*/g, ' ').trim() || 'unknown error';
}

/** Node's errno code (`ENOENT`, `EEXIST`, …) of a thrown error, if any. */
export function errnoCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}
