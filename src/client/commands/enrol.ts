import { CommandContext } from '../context.js';
import { DcxError, usageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { Enrolment, PinnedServer } from '../home.js';
import { httpFailure, parseHttpUrl } from '../http.js';
import { RequestSigner, signedFailure } from '../signed-request.js';
import { pinLines, pinState, readServerKeys, savePin } from './trust.js';

export interface EnrolOptions {
  code: string;
  name?: string;
  json?: boolean;
}

export const ENROL_PATH = '/api/recipients/enrol';

/** Why the server refuses an enrolment code, by status (docs/design/recipients-distributions.md). */
const REFUSALS: Record<number, string> = {
  404: 'is unknown to the server (check it, or ask for a new one)',
  410: 'has expired; ask for a new one',
  // Used by another installation, or this installation is enrolled already (with another code): the server says which.
  409: 'is refused',
};

/**
 * `dcx enrol <server-url> --code <code>`: makes this installation a named recipient of the server.
 * The server's keys are read as `dcx trust` reads them, the enrolment is signed with them, and only
 * once the server accepted it are the pin and the enrolment saved: a refused code leaves nothing.
 */
export async function enrolCommand(urlText: string, options: EnrolOptions, ctx: CommandContext): Promise<Enrolment> {
  const url = parseHttpUrl(urlText, 'server URL');
  // As the code is printed (XXXX-XXXX), whatever the case or a missing hyphen.
  const code = options.code
    .trim()
    .toUpperCase()
    .replace(/^(\w{4})(\w{4})$/, '$1-$2');
  if (!/^[0-9A-Z]{4}-[0-9A-Z]{4}$/.test(code))
    throw usageError(`--code ${JSON.stringify(options.code)} is not an enrolment code (XXXX-XXXX)`);
  if (options.name !== undefined && options.name.trim() === '') throw usageError('--name cannot be empty');

  const server = await readServerKeys(url);
  const identity = await ctx.home.identity();
  const signer = new RequestSigner(identity, { ...server, pinnedAt: '' });
  const enrolUrl = new URL(ENROL_PATH, url.origin);
  const response = await signer.json('POST', enrolUrl, { code, ...(options.name !== undefined ? { name: options.name.trim() } : {}) });
  if (REFUSALS[response.status]) {
    const failure = await httpFailure(response, `enrolling at ${url.origin}`);
    throw new DcxError(ExitCode.Refused, `the enrolment code ${code} ${REFUSALS[response.status]} (${failure.message})`);
  }
  if (response.status === 400) {
    // The code is malformed, or names no recipient yet and no --name was given: the server says which.
    const failure = await httpFailure(response, `enrolling at ${url.origin}`);
    throw new DcxError(ExitCode.Usage, `${failure.message}${options.name === undefined ? '; pass --name <name>?' : ''}`);
  }
  if (response.status !== 200 && response.status !== 201) throw await signedFailure(response, `enrolling at ${url.origin}`);
  const answer = parseEnrolAnswer(await response.json().catch(() => null), enrolUrl.href);
  if (answer.fingerprint !== identity.fingerprint) {
    throw new DcxError(
      ExitCode.Failure,
      `${enrolUrl.href} enrolled installation ${answer.fingerprint}, not this one (${identity.fingerprint}): nothing saved`,
    );
  }

  const { pinned, before } = await savePin(ctx, server);
  const enrolment: Enrolment = { origin: pinned.origin, ...answer, enrolledAt: new Date().toISOString() };
  await ctx.home.enrolments().record(enrolment);
  ctx.out(options.json ? JSON.stringify({ ...enrolment, server: pinned }) : enrolText(enrolment, pinned, before));
  return enrolment;
}

function parseEnrolAnswer(body: unknown, where: string): Pick<Enrolment, 'recipientId' | 'name' | 'fingerprint'> {
  const answer = (body ?? {}) as Record<string, unknown>;
  const { recipientId, name, fingerprint } = answer;
  if (typeof recipientId !== 'string' || typeof fingerprint !== 'string' || (name !== null && typeof name !== 'string')) {
    throw new DcxError(ExitCode.Failure, `${where} answered without {recipientId, name, fingerprint}: nothing saved`);
  }
  return { recipientId, name: name ?? '', fingerprint };
}

function enrolText(enrolment: Enrolment, pin: PinnedServer, before: PinnedServer | null): string {
  return [
    `enrolled at ${enrolment.origin} as ${enrolment.name ? JSON.stringify(enrolment.name) : 'a recipient'} (recipient ${enrolment.recipientId})`,
    `  installation    ${enrolment.fingerprint}`,
    `server ${pinState(before, pin.fingerprint)}`,
    ...pinLines(pin),
    'compare the server fingerprint with the one the operator publishes, and give yours if asked',
    `deliveries addressed to you: dcx inbox ${enrolment.origin} --out <dir>`,
  ].join('\n');
}
