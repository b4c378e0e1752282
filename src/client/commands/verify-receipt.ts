import { readFile } from 'node:fs/promises';
import { ProtocolError } from '../../protocol/errors.js';
import { ReceiptFields, receiptKeyId, verifyReceipt } from '../../protocol/receipt.js';
import { CommandContext } from '../context.js';
import { DcxError, messageOf } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { PinnedServer, safeOrigin } from '../home.js';

export interface VerifyReceiptOptions {
  /** Check against this pinned server only (its origin). */
  server?: string;
  json?: boolean;
}

export interface VerifiedReceipt extends ReceiptFields {
  valid: true;
  server: string;
  serverFingerprint: string;
}

export function invalid(file: string, why: string, cause?: unknown): DcxError {
  return new DcxError(ExitCode.InvalidReceipt, `the receipt ${file} is not valid: ${why}`, { cause });
}

/**
 * The receipt bytes of a file: the raw receipt the client keeps (DCX_HOME/receipts/<id>.receipt), or
 * JSON with a base64 `receipt` (GET /api/deliveries/:id/receipt, `dcx fetch --json`). A raw receipt
 * never starts with `{`: its first byte is the top of a u32 length below 64 KiB.
 */
function receiptOf(file: string, bytes: Buffer): { receipt: Buffer; claims: Record<string, unknown> } {
  if (bytes[0] !== 0x7b) return { receipt: bytes, claims: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw invalid(file, `not a receipt and not JSON (${messageOf(error)})`, error);
  }
  const claims = (parsed ?? {}) as Record<string, unknown>;
  if (typeof claims.receipt !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(claims.receipt)) {
    throw invalid(file, 'the JSON has no base64 "receipt" field');
  }
  return { receipt: Buffer.from(claims.receipt, 'base64'), claims };
}

/**
 * `dcx verify-receipt FILE`: checks a receipt offline against the pinned server keys (exit 0), or
 * refuses it (exit 7). JSON from the server must also agree with what the signed bytes say.
 */
export async function verifyReceiptCommand(file: string, options: VerifyReceiptOptions, ctx: CommandContext): Promise<VerifiedReceipt> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new DcxError(ExitCode.Failure, `cannot read ${file}: ${messageOf(error)}`, { cause: error });
  }
  const { receipt, claims } = receiptOf(file, bytes);
  const pins = await pinsToCheck(options, ctx);
  const { fields, pin } = verifyAgainstPins(file, receipt, pins);
  const mismatch = claimMismatch(claims, fields);
  if (mismatch) throw invalid(file, `the JSON says ${mismatch}, the signed receipt does not`);

  const result: VerifiedReceipt = { valid: true, server: pin.origin, serverFingerprint: pin.fingerprint, ...fields };
  ctx.out(options.json ? JSON.stringify(result) : receiptText(result));
  return result;
}

/**
 * A receipt that no pinned key can check is not shown valid: exit 7 like any receipt that fails, so a script
 * branching on "receipt not verified" needs one code (issue 21: it was 1).
 */
function unverifiable(why: string): DcxError {
  return new DcxError(ExitCode.InvalidReceipt, `cannot verify the receipt: ${why}`);
}

/** The pins a receipt may be signed by: all, or those of `--server`. */
export async function pinsToCheck(options: VerifyReceiptOptions, ctx: CommandContext): Promise<PinnedServer[]> {
  let pins = await ctx.home.pins().list();
  if (options.server !== undefined) {
    const origin = safeOrigin(options.server);
    if (!origin) throw new DcxError(ExitCode.Usage, `--server ${JSON.stringify(options.server)} is not a URL`);
    pins = pins.filter((p) => p.origin === origin);
    if (pins.length === 0) throw unverifiable(`${origin} is not pinned; run \`dcx trust ${origin}\` first`);
  }
  if (pins.length === 0) throw unverifiable('no server is pinned; run `dcx trust <server-url>` first');
  return pins;
}

/** The receipt's fields and the pin whose key signed it; exit 7 naming `file` when none did. */
export function verifyAgainstPins(file: string, receipt: Buffer, pins: PinnedServer[]): { fields: ReceiptFields; pin: PinnedServer } {
  // Pins with the receipt's key id first; any pinned key may have signed it.
  const keyId = receiptKeyId(receipt);
  const ordered = [...pins.filter((p) => p.keyId === keyId), ...pins.filter((p) => p.keyId !== keyId)];
  let lastError: unknown = null;
  for (const pin of ordered) {
    try {
      return { fields: verifyReceipt(receipt, Buffer.from(pin.signKey, 'base64url')), pin };
    } catch (error) {
      lastError = error;
      // A malformed receipt is malformed for every key.
      if (error instanceof ProtocolError && error.code !== 'BAD_SIGNATURE') break;
    }
  }
  const why =
    lastError instanceof ProtocolError && lastError.code === 'BAD_SIGNATURE'
      ? `its signature verifies against no pinned server key (${pins.length} pinned)`
      : messageOf(lastError);
  throw invalid(file, why, lastError);
}

/** A JSON field that contradicts the signed bytes, described; null when all agree. */
function claimMismatch(claims: Record<string, unknown>, fields: ReceiptFields): string | null {
  if (claims.deliveryId !== undefined && claims.deliveryId !== fields.deliveryId) return `deliveryId ${JSON.stringify(claims.deliveryId)}`;
  if (claims.contentSha256 !== undefined && claims.contentSha256 !== (fields.files[0]?.sha256 ?? null))
    return `contentSha256 ${JSON.stringify(claims.contentSha256)}`;
  if (claims.clientFingerprint !== undefined && claims.clientFingerprint !== fields.clientFingerprint)
    return `clientFingerprint ${JSON.stringify(claims.clientFingerprint)}`;
  if (typeof claims.confirmedAt === 'string' && Date.parse(claims.confirmedAt) !== fields.confirmedAt.getTime())
    return `confirmedAt ${claims.confirmedAt}`;
  return null;
}

function receiptText(r: VerifiedReceipt): string {
  return [
    `receipt valid: delivery ${r.deliveryId} confirmed at ${r.confirmedAt.toISOString()}`,
    `  server    ${r.server} (key ${r.serverFingerprint.slice(0, 16)}…, key id ${r.keyId})`,
    `  client    ${r.clientFingerprint ?? 'anonymous'}, requested from ${r.requesterAddress}`,
    `  issued    ${r.issuedAt.toISOString()}`,
    `  sent      ${r.sentAt?.toISOString() ?? '(confirmation came first)'}`,
    ...r.files.map((f) => `  file      ${f.name}  ${f.size} bytes  sha256 ${f.sha256}`),
  ].join('\n');
}
