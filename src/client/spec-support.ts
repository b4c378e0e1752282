// Test support for the client specs: real ZIPs (archiver), real plug-in data and a real TCP
// confirmation endpoint built from the protocol's server-side functions. Not used by the CLI.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { AddressInfo, createServer, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ZipArchive } from 'archiver';
import { Answer, AnswerStatus, encodeAnswer } from '../protocol/answer.js';
import { Confirmation, decodeConfirmationFrame, deriveConfirmKey, openConfirmation } from '../protocol/confirmation.js';
import { PLUGIN_ENTRY_NAME } from '../protocol/constants.js';
import { FrameParser } from '../protocol/frame.js';
import { newDeliveryId, ServerKeySet } from '../protocol/keys.js';
import { PluginData, sealPluginData } from '../protocol/plugin-data.js';
import { signReceipt } from '../protocol/receipt.js';
import { bufferEntry, layoutZip, sliceLayout } from '../protocol/zip-layout.js';

export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

const madeDirs: string[] = [];

/** A fresh temp directory; a spec removes them with `afterAll(removeTempDirs)`. */
export async function tempDir(prefix = 'dcx-client-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  madeDirs.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(madeDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

const FIXED_DATE = new Date('2026-01-01T12:00:00Z');

export interface ZipEntryInput {
  name: string;
  data: Buffer | Readable;
}

/** A ZIP as archiver writes it (streams get data descriptors; buffers do not). */
/**
 * A ZIP laid out as the server writes bundles (src/protocol/zip-layout.ts): stored entries with CRC-32
 * and sizes in their local headers, so that `dcx fetch` keeps their data apart as it downloads.
 */
export function makeServerZip(entries: { name: string; data: Buffer }[]): Buffer {
  const layout = layoutZip(entries.map((e) => bufferEntry(e.name, e.data)), FIXED_DATE);
  return Buffer.concat(sliceLayout(layout, 0, layout.size - 1).map((p) => (p.kind === 'bytes' ? p.bytes : p.source.subarray(p.start, p.start + p.length))));
}

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
    if (!entries.every((e): e is { name: string; data: Buffer } => Buffer.isBuffer(e.data))) throw new Error('server-shaped bundles take buffers');
    return { zip: makeServerZip([{ name: PLUGIN_ENTRY_NAME, data: record }, ...entries]), data };
  }
  const entries = spec.entries ?? spec.files.map((f) => ({ name: f.name, data: Readable.from([f.bytes]) }));
  const zip = await makeZip([{ name: PLUGIN_ENTRY_NAME, data: record }, ...entries]);
  return { zip, data };
}

export interface RecordedConfirmation {
  confirmation: Confirmation;
  remoteAddress: string;
}

/**
 * A confirmation port that knows the deliveries it was told about and answers like the server:
 * accepted (with a signed receipt), then already confirmed; or whatever `override` returns.
 */
export class ConfirmEndpoint {
  readonly received: RecordedConfirmation[] = [];
  private readonly deliveries = new Map<string, { data: PluginData; receipt: Buffer | null }>();
  private readonly sockets = new Set<Socket>();
  override: ((c: Confirmation) => Answer | null) | null = null;
  /** Accept connections but never answer. */
  silent = false;

  private constructor(
    private readonly server: Server,
    private readonly keys: ServerKeySet,
  ) {}

  static async start(keys: ServerKeySet): Promise<ConfirmEndpoint> {
    const server = createServer();
    const endpoint = new ConfirmEndpoint(server, keys);
    server.on('connection', (socket) => endpoint.serve(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return endpoint;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  expect(data: PluginData): void {
    this.deliveries.set(data.deliveryId, { data, receipt: null });
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const parser = new FrameParser();
    socket.on('data', (chunk: Buffer) => {
      parser.parse(chunk, (frame) => {
        if (this.silent) return;
        socket.end(encodeAnswer(this.answer(frame, socket.remoteAddress ?? '')));
      });
    });
  }

  private answer(frame: Parameters<typeof decodeConfirmationFrame>[0], remoteAddress: string): Answer {
    const sealed = decodeConfirmationFrame(frame);
    const known = this.deliveries.get(sealed.deliveryId);
    if (!known) return { status: AnswerStatus.Unknown, deliveryId: sealed.deliveryId, message: 'no such delivery', receipt: null };
    const confirmation = openConfirmation(sealed, deriveConfirmKey(known.data.confirmSecret, sealed.deliveryId));
    this.received.push({ confirmation, remoteAddress });
    const forced = this.override?.(confirmation);
    if (forced) return forced;
    if (known.receipt) return { status: AnswerStatus.AlreadyConfirmed, deliveryId: sealed.deliveryId, message: 'already confirmed', receipt: known.receipt };
    if (known.data.expiresAt.getTime() < Date.now()) {
      return { status: AnswerStatus.Expired, deliveryId: sealed.deliveryId, message: `the delivery expired at ${known.data.expiresAt.toISOString()}`, receipt: null };
    }
    const expected = known.data.files.map((f) => f.sha256);
    if (confirmation.digests.join() !== expected.join()) {
      return { status: AnswerStatus.DigestMismatch, deliveryId: sealed.deliveryId, message: 'digests differ', receipt: null };
    }
    known.receipt = signReceipt(
      {
        keyId: this.keys.keyId,
        deliveryId: sealed.deliveryId,
        clientFingerprint: known.data.client.fingerprint,
        requesterAddress: known.data.client.address,
        issuedAt: known.data.issuedAt,
        sentAt: new Date(),
        confirmedAt: new Date(),
        files: known.data.files,
      },
      this.keys,
    );
    return { status: AnswerStatus.Accepted, deliveryId: sealed.deliveryId, message: 'delivery confirmed', receipt: known.receipt };
  }
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
