/**
 * The `dcx` exit codes. Scripts (CI jobs, containers) branch on these, so they are part of the
 * CLI's contract: never renumber one, only add.
 */
export const ExitCode = {
  /** The delivery is confirmed (also when the server says it was already confirmed). */
  Confirmed: 0,
  /** Anything not covered below. */
  Failure: 1,
  /** Bad command line: unknown option, missing argument, malformed URL. */
  Usage: 2,
  /** Unusable bundle: not a ZIP, plug-in data missing/tampered/unverifiable, untrusted server, path tricks, expired. */
  UnusableBundle: 3,
  /** A saved file's SHA-256 differs from the plug-in data; the file was removed. */
  DigestMismatch: 4,
  /** The server answered the confirmation with anything but accepted / already confirmed. */
  ConfirmationRefused: 5,
  /** The server could not be reached (HTTP or TCP connect failure or timeout). */
  ServerUnreachable: 6,
  /** `dcx verify-receipt`: the receipt is malformed or not signed by a pinned server key. */
  InvalidReceipt: 7,
  /**
   * The server refused this installation: an enrolment code unknown, expired or used by another
   * installation; a signed request of an installation not enrolled, revoked, or not the recipient.
   */
  Refused: 8,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
