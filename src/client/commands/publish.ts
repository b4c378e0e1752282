import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { CommandContext } from '../context.js';
import { DcxError, errnoCode, messageOf, usageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { httpFailure, httpRequest, parseHttpUrl } from '../http.js';
import { multipartFileBody } from '../multipart-body.js';
import { byteProgress } from '../progress.js';

export const CONTENTS_PATH = '/api/contents';

export interface PublishOptions {
  server: string;
  access?: 'public' | 'token';
  json?: boolean;
}

export interface PublishResult {
  id: string;
  bundleUrl: string;
  accessToken?: string | null;
  [field: string]: unknown;
}

/**
 * `dcx publish <file> --server URL`: uploads a content (admin token from DCX_ADMIN_TOKEN) as a
 * multipart form streamed from disk; prints the content id, the bundle URL and, for token access, the token.
 */
export async function publishCommand(
  file: string,
  options: PublishOptions,
  ctx: CommandContext,
  env: NodeJS.ProcessEnv = process.env,
): Promise<PublishResult> {
  const server = parseHttpUrl(options.server, 'server URL');
  const token = env.DCX_ADMIN_TOKEN;
  if (!token) throw usageError('publish needs the admin token in the environment variable DCX_ADMIN_TOKEN');
  const access = options.access ?? 'public';

  let size: number;
  try {
    const info = await stat(file);
    if (!info.isFile()) throw usageError(`${file} is not a regular file`);
    size = info.size;
  } catch (error) {
    if (error instanceof DcxError) throw error;
    if (errnoCode(error) === 'ENOENT') throw usageError(`no such file: ${file}`);
    throw new DcxError(ExitCode.Failure, `cannot read ${file}: ${messageOf(error)}`);
  }

  // Streamed from disk, never read into memory; the bar counts bytes handed to the connection (issue 21: a 1 GB
  // upload showed nothing). The server then hashes and stores what it got before it answers.
  const progress = byteProgress('uploading', size, ctx.progress);
  const form = multipartFileBody({ access }, { field: 'file', path: file, name: basename(file), size, onRead: (n) => progress.add(n) });
  const endpoint = new URL(server.href.replace(/\/+$/, '') + CONTENTS_PATH);
  let response: Response;
  try {
    response = await httpRequest(endpoint, {
      method: 'POST',
      body: form.body,
      duplex: 'half',
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        'content-type': form.contentType,
        'content-length': String(form.contentLength),
      },
    });
  } finally {
    progress.stop();
  }
  if (!response.ok) throw await httpFailure(response, `publishing ${basename(file)} to ${server.origin}`);
  const body = (await response.json().catch(() => null)) as Partial<PublishResult> | null;
  if (!body || typeof body.id !== 'string') throw new DcxError(ExitCode.Failure, `${endpoint.href} answered without a content id`);
  const result: PublishResult = {
    ...body,
    id: body.id,
    bundleUrl: typeof body.bundleUrl === 'string' ? body.bundleUrl : `${server.href.replace(/\/+$/, '')}${CONTENTS_PATH}/${body.id}/bundle`,
  };

  if (options.json) {
    ctx.out(JSON.stringify(result));
  } else {
    const lines = [`content ${result.id}`, `bundle  ${result.bundleUrl}`];
    if (typeof result.accessToken === 'string')
      lines.push(`access token ${result.accessToken}  (send it as DCX-Access-Token, or: dcx fetch --access-token)`);
    ctx.out(lines.join('\n'));
  }
  return result;
}
