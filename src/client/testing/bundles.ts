// Real ZIPs (archiver, or laid out as the server writes them) and real plug-in data for the client specs.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ZipArchive } from 'archiver';
import { IncomingHttpHeaders } from 'node:http';
import { CLIENT_KEY_HEADER, PLUGIN_ENTRY_NAME } from '../../protocol/constants.js';
import { ServerKeySet } from '../../protocol/keys.js';
import { newDeliveryId } from '../../protocol/delivery-id.js';
import { fingerprint } from '../../protocol/keys.js';
import { PluginData, sealPluginData } from '../../protocol/plugin-data.js';
import { renderLayout } from '../../protocol/testing/zip-bytes.js';
import { bufferEntry, layoutZip } from '../../protocol/zip-layout.js';
import { sha256 } from './temp-dirs.js';

const FIXED_DATE = new Date('2026-01-01T12:00:00Z');

export interface ZipEntryInput {
  name: string;
  data: Buffer | Readable;
}

/**
 * A ZIP laid out as the server writes bundles (src/protocol/zip-layout.ts): stored entries with CRC-32
 * and sizes in their local headers, so that `dcx fetch` keeps their data apart as it downloads.
 */
export function makeServerZip(entries: { name: string; data: Buffer }[]): Buffer {
  return renderLayout(
    layoutZip(
      entries.map((e) => bufferEntry(e.name, e.data)),
      FIXED_DATE,
    ),
  );
}

/** A ZIP as archiver writes it (streams get data descriptors; buffers do not). */
export async function makeZip(entries: ZipEntryInput[]): Promise<Buffer> {
  const archive = new ZipArchive({ store: true });
  const chunks: Buffer[] = [];
  archive.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<void>((resolve, reject) => {
    archive.on('end', () => resolve());
    archive.on('error', reject);
  });
  // A fixed date keeps the bytes (apart from content) the same on every run.
  for (const entry of entries) archive.append(entry.data, { name: entry.name, date: FIXED_DATE });
  await archive.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface BundleSpec {
  keys: ServerKeySet;
  files: { name: string; bytes: Buffer }[];
  confirmPort: number;
  clientPublicKey?: Buffer | null;
  /** Overrides of the plug-in data (expiry, file list, …). */
  data?: Partial<PluginData>;
  /** Replaces the ZIP entries after the plug-in data (for tampering). */
  entries?: ZipEntryInput[];
  /** 'archiver' (default): content entries with data descriptors; 'server': laid out as the server does. */
  shape?: 'archiver' | 'server';
}

export interface BuiltBundle {
  zip: Buffer;
  data: PluginData;
}

export async function makeBundle(spec: BundleSpec): Promise<BuiltBundle> {
  const now = Date.now();
  const data: PluginData = {
    deliveryId: newDeliveryId(),
    client: { fingerprint: null, address: '127.0.0.1' },
    server: { host: '127.0.0.1', confirmPort: spec.confirmPort, url: 'http://127.0.0.1:3999' },
    confirmSecret: randomBytes(32),
    files: spec.files.map((f) => ({ name: f.name, size: f.bytes.length, sha256: sha256(f.bytes) })),
    issuedAt: new Date(now),
    expiresAt: new Date(now + 3600_000),
    ...spec.data,
  };
  const record = sealPluginData(data, spec.keys, spec.clientPublicKey ?? null);
  if (spec.shape === 'server') {
    const entries = spec.entries ?? spec.files.map((f) => ({ name: f.name, data: f.bytes }));
    if (!entries.every((e): e is { name: string; data: Buffer } => Buffer.isBuffer(e.data)))
      throw new Error('server-shaped bundles take buffers');
    return { zip: makeServerZip([{ name: PLUGIN_ENTRY_NAME, data: record }, ...entries]), data };
  }
  const entries = spec.entries ?? spec.files.map((f) => ({ name: f.name, data: Readable.from([f.bytes]) }));
  const zip = await makeZip([{ name: PLUGIN_ENTRY_NAME, data: record }, ...entries]);
  return { zip, data };
}

/** A bundle as the server answers a request: sealed to the client key its headers carry (if any), naming that client. */
export function makeBundleForRequest(
  headers: IncomingHttpHeaders,
  spec: Omit<BundleSpec, 'clientPublicKey' | 'data'>,
): Promise<BuiltBundle> {
  const key = headers[CLIENT_KEY_HEADER] as string | undefined;
  const clientKey = key ? Buffer.from(key, 'base64url') : null;
  return makeBundle({
    ...spec,
    clientPublicKey: clientKey,
    data: { client: { fingerprint: clientKey ? fingerprint(clientKey) : null, address: '127.0.0.1' } },
  });
}

/**
 * archiver cleans entry names ("../../x" becomes "x"), so a malicious ZIP is made by writing a
 * placeholder name of the same length and patching it in the local header and central directory.
 */
export function patchEntryName(zip: Buffer, placeholder: string, name: string): Buffer {
  const from = Buffer.from(placeholder);
  const to = Buffer.from(name);
  if (from.length !== to.length) throw new Error('placeholder and name must have the same byte length');
  const out = Buffer.from(zip);
  let count = 0;
  for (let at = out.indexOf(from); at !== -1; at = out.indexOf(from, at + 1)) {
    to.copy(out, at);
    count++;
  }
  if (count < 2) throw new Error(`placeholder found ${count} times, expected the local header and the central directory`);
  return out;
}
