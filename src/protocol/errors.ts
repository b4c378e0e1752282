export type ProtocolErrorCode =
  'TRUNCATED' | 'MALFORMED' | 'TOO_LARGE' | 'UNSUPPORTED_VERSION' | 'BAD_SIGNATURE' | 'SEAL_INVALID' | 'NOT_FOR_THIS_CLIENT';

/** A wire-format or crypto failure: the bytes are unusable, with a precise reason. */
export class ProtocolError extends Error {
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}
