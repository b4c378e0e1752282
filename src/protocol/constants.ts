// Every size and code of the DCX wire formats (docs/PROTOCOL.md is the prose version).

export const PROTOCOL_VERSION = 1;

/** The bundle: a ZIP whose first entry is the plug-in data. */
export const BUNDLE_MEDIA_TYPE = 'application/vnd.dcx.bundle+zip';
export const BUNDLE_EXTENSION = '.dcx';
export const PLUGIN_ENTRY_NAME = 'dcx-plugin-data.bin';

/** Confirmation over HTTPS (POST /api/confirmations): one confirmation frame in, one answer frame out. */
export const CONFIRMATION_MEDIA_TYPE = 'application/vnd.dcx.confirmation';
export const ANSWER_MEDIA_TYPE = 'application/vnd.dcx.answer';
export const CONFIRMATIONS_PATH = '/api/confirmations';

/** HTTP headers a client sends when it asks for a bundle. */
export const CLIENT_KEY_HEADER = 'dcx-client-key';
export const ACCESS_TOKEN_HEADER = 'dcx-access-token';

// Field sizes in bytes.
export const LENGTH_SIZE = 4;
export const VERSION_SIZE = 1;
export const TYPE_SIZE = 1;
export const DELIVERY_ID_SIZE = 16;
export const KEY_ID_SIZE = 8;
export const PUBLIC_KEY_SIZE = 32;
export const FINGERPRINT_SIZE = 32;
export const SALT_SIZE = 16;
export const NONCE_SIZE = 12;
export const TAG_SIZE = 16;
export const ED25519_SIGNATURE_SIZE = 64;
export const SECRET_SIZE = 32;
export const SHA256_SIZE = 32;
export const AES_KEY_SIZE = 32;

/** Upper bounds that keep a malicious peer from making us buffer or loop without end. */
export const MAX_PLUGIN_DATA_SIZE = 64 * 1024;
export const DEFAULT_MAX_FRAME_SIZE = 64 * 1024;
export const MAX_FILES = 1024;
export const MAX_STRING_BYTES = 1024;

/**
 * Records signed together (receipts, plug-in data): the leaves of a Merkle tree (RFC 9162 2.1) whose
 * root is signed once. Each ends with its inclusion path, then this proof (path length u8, leaf index
 * u16, tree size u16), then the batch's signature.
 */
export const BATCH_PROOF_SIZE = 1 + 2 + 2;
/** Records signed together at most (u16 index and size), and so hashes in an inclusion path at most. */
export const MAX_BATCH_SIZE = 65_535;
export const MAX_INCLUSION_PATH = 16;

/** Receipt versions: 1 signed alone, 2 one of a batch signed together. */
export const RECEIPT_VERSION_SINGLE = 1;
export const RECEIPT_VERSION_BATCH = 2;
/** A batch receipt's random salt, hashed into its leaf after the statement. */
export const RECEIPT_SALT_SIZE = 16;

/** Plug-in data versions: 1 signed alone, 2 one of a batch of bundles issued together. */
export const PLUGIN_VERSION_SINGLE = 1;
export const PLUGIN_VERSION_BATCH = 2;

/** Plug-in data header: length, version, mode, key id, server keys, recipient, salt, nonce. */
export const PLUGIN_HEADER_SIZE =
  LENGTH_SIZE + VERSION_SIZE + 1 + KEY_ID_SIZE + PUBLIC_KEY_SIZE * 2 + FINGERPRINT_SIZE + SALT_SIZE + NONCE_SIZE;

export const enum SealMode {
  /** Sealed with the server's published bundle key: any pinned client can open it; bound to the requester's IP. */
  Anonymous = 1,
  /** Sealed with X25519 to one client's key: only that client can open it. */
  Client = 2,
}

/** TCP frame header: length (counting itself), version, type. */
export const FRAME_HEADER_SIZE = LENGTH_SIZE + VERSION_SIZE + TYPE_SIZE;

export const enum FrameType {
  Confirmation = 1,
  Answer = 2,
}

/** Domain-separation labels for HKDF and signatures, so no key or signature serves two purposes. */
export const LABEL_PLUGIN_CLIENT = 'dcx/1 plug-in data, client seal';
export const LABEL_PLUGIN_ANONYMOUS = 'dcx/1 plug-in data, bundle key';
export const LABEL_PLUGIN_SIGNATURE = 'dcx/1 plug-in data signature';
export const LABEL_PLUGIN_BATCH_SIGNATURE = 'dcx/1 plug-in data batch signature';
export const LABEL_CONFIRMATION = 'dcx/1 confirmation';
export const LABEL_RECEIPT_SIGNATURE = 'dcx/1 receipt signature';
export const LABEL_RECEIPT_BATCH_SIGNATURE = 'dcx/1 receipt batch signature';
export const LABEL_REQUEST_AUTH = 'dcx/1 request authentication';

/** Signed requests of an enrolled installation (src/protocol/request-auth.ts). */
export const REQUEST_AUTH_HEADER = 'dcx-auth';
export const REQUEST_AUTH_SCHEME = 'DCX1';
export const REQUEST_AUTH_NONCE_SIZE = 16;
export const REQUEST_AUTH_MAC_SIZE = 32;
/** How far a signed request's timestamp may be from the server's clock, either way. */
export const REQUEST_AUTH_MAX_SKEW_MS = 5 * 60_000;
