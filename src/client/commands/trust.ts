import { PUBLIC_KEY_SIZE } from '../../protocol/constants.js';
import { fingerprint } from '../../protocol/keys.js';
import { CommandContext } from '../context.js';
import { DcxError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { PinnedServer } from '../home.js';
import { httpFailure, httpRequest, parseHttpUrl } from '../http.js';

export interface TrustOptions {
  json?: boolean;
}

/** GET <url>/.well-known/dcx */
export interface ServerInfo {
  serverKey: string;
  sealKey: string;
  keyId: string;
  fingerprint?: string;
  confirmHost?: string;
  confirmPort?: number;
  url?: string;
}

export const WELL_KNOWN_PATH = '/.well-known/dcx';

/** `dcx trust <server-url>`: pins the key the server publishes and shows its fingerprint for comparison. */
export async function trustCommand(urlText: string, options: TrustOptions, ctx: CommandContext): Promise<PinnedServer> {
  const url = parseHttpUrl(urlText, 'server URL');
  const { pinned, before } = await savePin(ctx, await readServerKeys(url));
  const computed = pinned.fingerprint;
  if (options.json) {
    ctx.out(JSON.stringify({ ...pinned, previousFingerprint: before && before.fingerprint !== computed ? before.fingerprint : null }));
  } else {
    ctx.out(
      [
        `${pinState(before, computed)} ${url.origin}`,
        ...pinLines(pinned),
        'compare the fingerprint with the one the server operator publishes',
      ].join('\n'),
    );
  }
  return pinned;
}

/** What `dcx trust` pins for `url`: the keys from its /.well-known/dcx, checked; nothing is saved yet. */
export async function readServerKeys(url: URL): Promise<Omit<PinnedServer, 'pinnedAt'>> {
  const infoUrl = new URL(url.href.replace(/\/+$/, '') + WELL_KNOWN_PATH);
  const response = await httpRequest(infoUrl, { headers: { accept: 'application/json' } });
  if (!response.ok) throw await httpFailure(response, `reading ${infoUrl.href}`);
  const info = parseServerInfo(await response.json().catch(() => null), infoUrl.href);

  const signKey = rawKey(info.serverKey, 'serverKey', infoUrl.href);
  const sealKey = rawKey(info.sealKey, 'sealKey', infoUrl.href);
  const computed = fingerprint(signKey);
  if (info.fingerprint !== undefined && info.fingerprint.toLowerCase() !== computed) {
    throw new DcxError(
      ExitCode.Failure,
      `${infoUrl.href} announces fingerprint ${info.fingerprint}, but its key's fingerprint is ${computed}: not pinned`,
    );
  }
  return {
    origin: url.origin,
    url: info.url ?? url.origin,
    signKey: signKey.toString('base64url'),
    sealKey: sealKey.toString('base64url'),
    keyId: info.keyId,
    fingerprint: computed,
    confirmHost: info.confirmHost ?? null,
    confirmPort: info.confirmPort ?? null,
  };
}

/** Pins `server` (replacing the pin of its origin); the pin as saved, and the one it replaced. */
export async function savePin(
  ctx: CommandContext,
  server: Omit<PinnedServer, 'pinnedAt'>,
): Promise<{ pinned: PinnedServer; before: PinnedServer | null }> {
  const pins = ctx.home.pins();
  const before = await pins.pin(server);
  return { pinned: (await pins.findByOrigin(server.origin))!, before };
}

export function pinState(before: PinnedServer | null, fingerprintNow: string): string {
  return !before ? 'pinned' : before.fingerprint === fingerprintNow ? 'already pinned' : `pinned (REPLACING key ${before.fingerprint})`;
}

/** The pin's fingerprint, key id and confirmation port, indented, for the text output. */
export function pinLines(pin: PinnedServer): string[] {
  return [
    `  key fingerprint ${pin.fingerprint}`,
    `  key id          ${pin.keyId}`,
    ...(pin.confirmHost ? [`  confirmations   ${pin.confirmHost}:${pin.confirmPort}`] : []),
  ];
}

function parseServerInfo(body: unknown, where: string): ServerInfo {
  const info = body as Partial<ServerInfo> | null;
  if (
    !info ||
    typeof info !== 'object' ||
    typeof info.serverKey !== 'string' ||
    typeof info.sealKey !== 'string' ||
    typeof info.keyId !== 'string'
  ) {
    throw new DcxError(ExitCode.Failure, `${where} is not a DCX server description (needs serverKey, sealKey, keyId)`);
  }
  return info as ServerInfo;
}

function rawKey(text: string, field: string, where: string): Buffer {
  const key = /^[A-Za-z0-9_-]+={0,2}$/.test(text) ? Buffer.from(text, 'base64url') : Buffer.alloc(0);
  if (key.length !== PUBLIC_KEY_SIZE)
    throw new DcxError(ExitCode.Failure, `${where}: ${field} is not a ${PUBLIC_KEY_SIZE}-byte key in base64url`);
  return key;
}
