import { mkdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ProtocolError } from '../protocol/errors.js';
import { fingerprint } from '../protocol/keys.js';
import { openPluginData, PluginData, PluginEnvelope, readPluginEnvelope } from '../protocol/plugin-data.js';
import { Bundle, SavedFile } from './bundle-reader.js';
import { BundleSource } from './download/bundle-source.js';
import { ConfirmOptions, ConfirmOutcome, ConfirmRequest, confirmationFrame, confirmationsUrl } from './confirm-client.js';
import { DcxError, errnoCode, messageOf, unusableBundle, usageError } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { DcxHome, originOf, PinnedServer, safeOrigin } from './home.js';
import { KeptInOutbox, outboxEntryOf } from './outbox.js';
import { byteProgress } from './progress.js';

/**
 * Whose signature a bundle may carry:
 * - `pinned`: only a pinned server's (`dcx open`);
 * - `trust`: any, and the server is pinned once the bundle verified (`dcx open --trust`);
 * - `first-use`: a pinned server's, or any when nothing is pinned for `origin` yet, which is then
 *   pinned (`dcx fetch`, trust on first use; a different key for a pinned origin is refused);
 * - `origin`: only the key pinned for `origin` (`dcx inbox`, a personal link: the enrolled server's).
 */
export type PinPolicy = { kind: 'pinned' } | { kind: 'trust' } | { kind: 'first-use'; origin: string } | { kind: 'origin'; origin: string };

export interface AcceptOptions {
  outDir: string;
  /** How messages name the bundle (default: its path). */
  label?: string;
  pinPolicy: PinPolicy;
  /** Informational lines (pins made); never the result. */
  notice: (line: string) => void;
  progress?: boolean;
  /** How the default confirmation travels (via, timeouts, retries). */
  confirm?: ConfirmOptions;
  /**
   * Sends the confirmation and checks its answer; default: the outbox entry's frame over the port or HTTPS
   * (Outbox.send). The agent passes its own (the ack of POST /api/inbox/next).
   */
  confirmWith?: (request: ConfirmRequest) => Promise<ConfirmOutcome>;
  now?: Date;
}

export interface DeliveryResult {
  deliveryId: string;
  status: 'accepted' | 'already_confirmed';
  files: SavedFile[];
  receipt: Buffer;
  receiptPath: string;
  message: string;
}

/** Verified, opened plug-in data and what is known about its server. */
export interface OpenedBundle {
  bundle: Bundle;
  envelope: PluginEnvelope;
  data: PluginData;
  /** The pin the bundle's signing key matches, or null. */
  pinned: PinnedServer | null;
  serverFingerprint: string;
}

/**
 * Verifies the signature, lets `beforeOpen` judge the signing key against the pins (PROTOCOL.md §3,
 * step 6), then opens the sealed part with this installation's identity. `input`: a bundle file's
 * path, or a downloaded bundle.
 */
export async function openBundle(
  input: string | BundleSource,
  home: DcxHome,
  beforeOpen?: (envelope: PluginEnvelope, pinned: PinnedServer | null) => Promise<void>,
  label?: string,
): Promise<OpenedBundle> {
  const bundle = await Bundle.open(input, label);
  const envelope = protocolStep('the plug-in data', () => readPluginEnvelope(bundle.pluginRecord));
  const pinned = await home.pins().findByKey(envelope.signPublicKey);
  await beforeOpen?.(envelope, pinned);
  const identity = await home.identity();
  const { data } = protocolStep('the plug-in data', () => openPluginData(bundle.pluginRecord, { identity }));
  return { bundle, envelope, data, pinned, serverFingerprint: fingerprint(envelope.signPublicKey) };
}

/**
 * The output directory, made if missing; checked before anything is downloaded or issued, so that a
 * wrong `--out` costs neither a delivery nor a download.
 */
export async function prepareOutputDir(dir: string): Promise<string> {
  const path = resolve(dir);
  try {
    await mkdir(path, { recursive: true });
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'EEXIST' || code === 'ENOTDIR') throw usageError(`--out ${dir} is not a directory`);
    throw new DcxError(ExitCode.Failure, `cannot use --out ${dir}: ${messageOf(error)}`);
  }
  return path;
}

/**
 * What `open` and `fetch` do with a bundle file: verify and open the plug-in data, check the server
 * against the pins, save and verify every content file in `outDir`, confirm (the TCP port, else HTTPS; an
 * outbox entry until the server decided), keep the receipt.
 */
export async function acceptBundle(input: string | BundleSource, home: DcxHome, options: AcceptOptions): Promise<DeliveryResult> {
  const outDir = await prepareOutputDir(options.outDir);
  const opened = await openBundle(
    input,
    home,
    (envelope, pinned) => checkKeyBeforeOpening(envelope, pinned, home, options.pinPolicy),
    options.label,
  );
  const { bundle, data } = opened;
  // Decided now (a conflicting pin refuses the bundle at once), written only once the delivery is
  // confirmed: a bundle that fails pins nothing, and a failure prints nothing but its one error line.
  const pin = await pinToMake(opened, home, options.pinPolicy);

  // The server's clock decides expiry: a bundle that looks expired here is still confirmed, so that the
  // server records the late confirmation (or accepts it, when this machine's clock is ahead). If the
  // server refuses it, nothing is kept and the bundle is unusable (exit 3), as before.
  const now = options.now ?? new Date();
  const looksExpired = data.expiresAt.getTime() <= now.getTime();
  const parts = bundle.match(data.files);

  const total = parts.reduce((sum, p) => sum + p.info.size, 0);
  const progress = byteProgress('saving  ', total, options.progress);
  const saved: SavedFile[] = [];
  try {
    for (const part of parts) saved.push(await bundle.extract(part, outDir, (n) => progress.add(n)));
  } catch (error) {
    // Nothing partial: a delivery that cannot be saved whole leaves none of its files (a file that was
    // already there before this save is not ours to remove).
    await Promise.all(saved.filter((f) => !f.alreadySaved).map((f) => rm(f.path, { force: true })));
    throw error;
  } finally {
    progress.stop();
  }

  const { outcome, receiptPath } = await confirmSaved(opened, saved, home, options, looksExpired);
  if (pin) await savePin(pin, home, options.notice);
  return {
    deliveryId: data.deliveryId,
    status: outcome.status,
    files: saved,
    receipt: outcome.receipt,
    receiptPath,
    message: outcome.message,
  };
}

/**
 * Confirms the saved files: an outbox entry first (a confirmation that cannot be sent at all is not lost: exit 6,
 * kept), then `confirmWith` or the entry sent as `options.confirm` says; the receipt stored.
 */
async function confirmSaved(
  { envelope, data }: OpenedBundle,
  saved: SavedFile[],
  home: DcxHome,
  options: AcceptOptions,
  looksExpired: boolean,
): Promise<{ outcome: ConfirmOutcome; receiptPath: string }> {
  const identity = await home.identity();
  const request: ConfirmRequest = {
    target: { host: data.server.host, port: data.server.confirmPort, tls: isHttps(data.server.url) },
    httpsUrl: confirmationsUrl(data.server.url),
    deliveryId: data.deliveryId,
    confirmSecret: data.confirmSecret,
    clientFingerprint: identity.fingerprint,
    digests: saved.map((f) => f.sha256),
    serverSignPublicKey: envelope.signPublicKey,
  };
  const outbox = home.outbox();
  const files = saved.map(({ path, size, sha256 }) => ({ path, size, sha256 }));
  const entry = await outbox.add(outboxEntryOf(request, confirmationFrame(request), files));
  let outcome: ConfirmOutcome;
  try {
    outcome = options.confirmWith ? await options.confirmWith(request) : await outbox.send(entry, options.confirm);
  } catch (error) {
    if (!looksExpired && error instanceof DcxError && error.exitCode === ExitCode.ServerUnreachable) throw new KeptInOutbox(error);
    await outbox.remove(data.deliveryId);
    if (!looksExpired) throw error;
    await Promise.all(saved.filter((f) => !f.alreadySaved).map((f) => rm(f.path, { force: true })));
    throw unusableBundle(
      `delivery ${data.deliveryId} expired at ${data.expiresAt.toISOString()} (${messageOf(error)}); fetch it again`,
      error,
    );
  }
  // Outbox.send stored the receipt and removed the entry; an outcome of confirmWith is stored here.
  if (!options.confirmWith) return { outcome, receiptPath: home.receiptPath(data.deliveryId) };
  const receiptPath = await home.saveReceipt(data.deliveryId, outcome.receipt);
  await outbox.remove(data.deliveryId);
  return { outcome, receiptPath };
}

function isHttps(url: string): boolean {
  return url.toLowerCase().startsWith('https:');
}

/** Refuses an unpinned key before anything sealed is opened, unless the policy lets it be pinned. */
async function checkKeyBeforeOpening(
  envelope: PluginEnvelope,
  pinned: PinnedServer | null,
  home: DcxHome,
  policy: PinPolicy,
): Promise<void> {
  const short = fingerprint(envelope.signPublicKey).slice(0, 16);
  if (policy.kind === 'origin') {
    const expected = await home.pins().findByOrigin(policy.origin);
    if (expected && expected.signKey === envelope.signPublicKey.toString('base64url')) return;
    throw unusableBundle(
      `the bundle from ${originOf(policy.origin)} is signed with key ${short}…, not its pinned key ` +
        `${expected ? `${expected.fingerprint.slice(0, 16)}…` : '(none)'}; if the server changed its key, run \`dcx trust ${originOf(policy.origin)}\``,
    );
  }
  if (pinned) return;
  if (policy.kind === 'pinned') {
    throw unusableBundle(
      `the bundle's server (key ${short}…) is not pinned; run \`dcx trust <server-url>\` or pass --trust (\`dcx inspect\` ` +
        `shows the server)`,
    );
  }
  if (policy.kind === 'first-use') await refuseOtherKey(home, policy.origin, short);
}

async function refuseOtherKey(home: DcxHome, origin: string | null, short: string): Promise<void> {
  if (!origin) return;
  const existing = await home.pins().findByOrigin(origin);
  if (existing) {
    throw unusableBundle(
      `the bundle from ${existing.origin} is signed with key ${short}…, not the pinned key ` +
        `${existing.fingerprint.slice(0, 16)}…; if the server changed its key, run \`dcx trust ${existing.origin}\``,
    );
  }
}

/** Trust on first use / --trust: the pin to make for a server not pinned yet, or null. */
async function pinToMake(opened: OpenedBundle, home: DcxHome, policy: PinPolicy): Promise<Omit<PinnedServer, 'pinnedAt'> | null> {
  if (opened.pinned || policy.kind === 'pinned' || policy.kind === 'origin') return null;
  const { envelope, data, serverFingerprint } = opened;
  const serverOrigin = safeOrigin(data.server.url);
  // fetch: the server's own URL must not be pinned to another key either.
  if (policy.kind === 'first-use') await refuseOtherKey(home, serverOrigin, serverFingerprint.slice(0, 16));
  return {
    origin: policy.kind === 'first-use' ? policy.origin : (serverOrigin ?? data.server.url),
    url: data.server.url,
    signKey: envelope.signPublicKey.toString('base64url'),
    sealKey: envelope.sealPublicKey.toString('base64url'),
    keyId: envelope.keyId,
    fingerprint: serverFingerprint,
    confirmHost: data.server.host,
    confirmPort: data.server.confirmPort,
  };
}

async function savePin(pin: Omit<PinnedServer, 'pinnedAt'>, home: DcxHome, notice: (line: string) => void): Promise<void> {
  const replaced = await home.pins().pin(pin);
  notice(
    `pinned server ${originOf(pin.origin)} (key fingerprint ` +
      `${pin.fingerprint})${replaced ? `, replacing key ${replaced.fingerprint.slice(0, 16)}…` : ''}`,
  );
}

/** Runs a protocol call; its ProtocolError becomes "unusable bundle" with the protocol's own reason. */
export function protocolStep<T>(what: string, step: () => T): T {
  try {
    return step();
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    if (error.code === 'NOT_FOR_THIS_CLIENT') {
      throw unusableBundle(
        `${what} is sealed for another client installation, not this one (${error.message}); fetch the bundle again with this client`,
        error,
      );
    }
    throw unusableBundle(`${what} is unusable: ${error.message}`, error);
  }
}
