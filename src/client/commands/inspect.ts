import { CommandContext } from '../context.js';
import { openBundle } from '../accept-bundle.js';

export interface InspectOptions {
  json?: boolean;
}

export interface InspectReport {
  deliveryId: string;
  mode: 'client' | 'anonymous';
  keyId: string;
  server: { host: string; confirmPort: number; url: string; fingerprint: string; pinned: boolean; pinnedAs: string | null };
  client: { fingerprint: string | null; address: string };
  issuedAt: string;
  expiresAt: string;
  expired: boolean;
  files: { name: string; size: number; sha256: string }[];
}

/** `dcx inspect <file.dcx>`: verifies and shows a bundle; saves and confirms nothing, pins nothing. */
export async function inspectCommand(file: string, options: InspectOptions, ctx: CommandContext): Promise<InspectReport> {
  const { bundle, envelope, data, pinned, serverFingerprint } = await openBundle(file, ctx.home);
  bundle.match(data.files);
  const report: InspectReport = {
    deliveryId: data.deliveryId,
    mode: envelope.mode,
    keyId: envelope.keyId,
    server: {
      host: data.server.host,
      confirmPort: data.server.confirmPort,
      url: data.server.url,
      fingerprint: serverFingerprint,
      pinned: pinned !== null,
      pinnedAs: pinned?.origin ?? null,
    },
    client: data.client,
    issuedAt: data.issuedAt.toISOString(),
    expiresAt: data.expiresAt.toISOString(),
    expired: data.expiresAt.getTime() <= Date.now(),
    files: data.files.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256 })),
  };
  ctx.out(options.json ? JSON.stringify(report) : inspectText(report));
  return report;
}

function inspectText(r: InspectReport): string {
  const lines = [
    `delivery  ${r.deliveryId}`,
    `server    ${r.server.url}`,
    `  confirm ${r.server.host}:${r.server.confirmPort}`,
    `  key     ${r.server.fingerprint} (key id ${r.keyId})`,
    `  pinned  ${r.server.pinned ? `yes (as ${r.server.pinnedAs})` : 'NO: `dcx open` needs --trust or `dcx trust <server-url>` first'}`,
    `client    ${r.mode === 'client' ? `this installation (${r.client.fingerprint})` : 'anonymous'}, requested from ${r.client.address}`,
    `issued    ${r.issuedAt}`,
    `expires   ${r.expiresAt}${r.expired ? ' (EXPIRED)' : ''}`,
    `contents  ${r.files.length} file${r.files.length === 1 ? '' : 's'}`,
    ...r.files.map((f) => `  ${f.name}  ${f.size} bytes  sha256 ${f.sha256}`),
  ];
  return lines.join('\n');
}
