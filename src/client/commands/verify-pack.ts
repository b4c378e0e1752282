import { basename } from 'node:path';
import unzipper from 'unzipper';
import { fingerprint } from '../../protocol/keys.js';
import { CommandContext } from '../context.js';
import { DcxError, errnoCode, messageOf } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { PinnedServer } from '../home.js';
import { invalid, pinsToCheck, verifyAgainstPins, VerifyReceiptOptions } from './verify-receipt.js';

/** A receipt is a few hundred bytes; an entry far larger is not one (and is not read into memory). */
const MAX_RECEIPT_SIZE = 64 * 1024;
const RECEIPT_ENTRY = /^receipts\/([^/]+)\.receipt$/;
export const PACK_KEYS_ENTRY = 'server-keys.json';

export interface PackReport {
  pack: string;
  receipts: number;
  valid: number;
  invalid: { entry: string; reason: string }[];
  /** The pack's own copy of the server's keys, shown for comparison only: receipts are checked against the pins. */
  serverKeys: { fingerprint: string | null; pinnedAs: string | null; note: string };
}

/**
 * `dcx verify-receipt --pack evidence.zip`: every `receipts/<deliveryId>.receipt` of a distribution's
 * evidence pack, checked offline against the PINNED keys (never the pack's own server-keys.json, which
 * whoever made the pack also wrote). Exit 0 when all are valid, 7 when any is not.
 */
export async function verifyPackCommand(pack: string, options: VerifyReceiptOptions, ctx: CommandContext): Promise<PackReport> {
  const files = await openPack(pack);
  const entries = files.filter((f) => f.type === 'File' && RECEIPT_ENTRY.test(f.path));
  if (entries.length === 0) throw new DcxError(ExitCode.Failure, `${pack} holds no receipts (receipts/<deliveryId>.receipt)`);
  const pins = await pinsToCheck(options, ctx);

  const report: PackReport = { pack, receipts: entries.length, valid: 0, invalid: [], serverKeys: await packKeys(files, pins) };
  for (const entry of entries) {
    try {
      await checkEntry(entry, pins);
      report.valid++;
    } catch (error) {
      if (!(error instanceof DcxError) || error.exitCode !== ExitCode.InvalidReceipt) throw error;
      report.invalid.push({ entry: entry.path, reason: error.message });
    }
  }

  ctx.out(options.json ? JSON.stringify(report) : packText(report));
  if (report.invalid.length > 0) {
    throw new DcxError(
      ExitCode.InvalidReceipt,
      `${report.invalid.length} of ${report.receipts} receipts in ${pack} are not valid; first: ${report.invalid[0].entry}`,
    );
  }
  return report;
}

async function openPack(pack: string): Promise<unzipper.File[]> {
  try {
    return (await unzipper.Open.file(pack)).files;
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT') throw new DcxError(ExitCode.Usage, `no such file: ${pack}`);
    if (code === 'EISDIR') throw new DcxError(ExitCode.Usage, `${pack} is a directory, not an evidence pack`);
    // unzipper's FILE_ENDED: no end-of-central-directory record.
    const why = messageOf(error) === 'FILE_ENDED' ? 'no ZIP central directory; not a ZIP, or cut short' : messageOf(error);
    throw new DcxError(ExitCode.Failure, `${pack} is not an evidence pack: not a readable ZIP file (${why})`, { cause: error });
  }
}

/** Verifies one receipt entry; it must also be filed under the delivery it names. Throws exit 7. */
async function checkEntry(entry: unzipper.File, pins: PinnedServer[]): Promise<void> {
  if (entry.uncompressedSize > MAX_RECEIPT_SIZE) throw invalid(entry.path, `${entry.uncompressedSize} bytes, larger than any receipt`);
  let bytes: Buffer;
  try {
    bytes = await entry.buffer();
  } catch (error) {
    throw invalid(entry.path, `cannot be read from the pack (${messageOf(error)})`, error);
  }
  const { fields } = verifyAgainstPins(entry.path, bytes, pins);
  const filedAs = RECEIPT_ENTRY.exec(entry.path)![1].toLowerCase();
  if (fields.deliveryId !== filedAs) {
    throw invalid(entry.path, `it is signed for delivery ${fields.deliveryId}, but filed as ${basename(entry.path)}`);
  }
}

/** The pack's server-keys.json against the pins: for the reader's comparison, never for the verdict. */
async function packKeys(files: unzipper.File[], pins: PinnedServer[]): Promise<PackReport['serverKeys']> {
  const entry = files.find((f) => f.path === PACK_KEYS_ENTRY);
  if (!entry) return { fingerprint: null, pinnedAs: null, note: `the pack has no ${PACK_KEYS_ENTRY}` };
  let key: Buffer;
  try {
    if (entry.uncompressedSize > MAX_RECEIPT_SIZE) throw new Error('too large');
    const info = JSON.parse((await entry.buffer()).toString('utf8')) as { serverKey?: unknown };
    key = typeof info.serverKey === 'string' ? Buffer.from(info.serverKey, 'base64url') : Buffer.alloc(0);
    if (key.length !== 32) throw new Error('no 32-byte serverKey');
  } catch (error) {
    return { fingerprint: null, pinnedAs: null, note: `the pack's ${PACK_KEYS_ENTRY} is unreadable (${messageOf(error)})` };
  }
  const packFingerprint = fingerprint(key);
  const pin = pins.find((p) => p.signKey === key.toString('base64url'));
  if (pin) return { fingerprint: packFingerprint, pinnedAs: pin.origin, note: `the pack's server key is the one pinned for ${pin.origin}` };
  return {
    fingerprint: packFingerprint,
    pinnedAs: null,
    note: `MISMATCH: the pack's server key ${packFingerprint} is not a pinned key (pinned: ${pins.map((p) => `${p.origin} ${p.fingerprint.slice(0, 16)}…`).join(', ')})`,
  };
}

function packText(report: PackReport): string {
  return [
    ...report.invalid.map((i) => `INVALID ${i.entry}: ${i.reason}`),
    report.serverKeys.note,
    `${report.receipts} receipts: ${report.valid} valid, ${report.invalid.length} invalid`,
  ].join('\n');
}
