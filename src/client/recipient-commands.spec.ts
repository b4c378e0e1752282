// dcx enrol, dcx inbox and signed `dcx fetch` against an HTTP server that checks every signature as the
// server's guard does (parseRequestAuth, requestAuthKey of the real X25519 secret, checkSignedRequest, one use
// per nonce), serves real sealed bundles with Range, and a real TCP confirmation port.
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CLIENT_KEY_HEADER, REQUEST_AUTH_HEADER } from '../protocol/constants.js';
import { newDeliveryId } from '../protocol/delivery-id.js';
import { fingerprint, generateClientIdentity, generateServerKeySet } from '../protocol/keys.js';
import { clientSealSecret } from '../protocol/plugin-data.js';
import { checkSignedRequest, parseRequestAuth, requestAuthKey } from '../protocol/request-auth.js';
import { run } from './cli.js';
import { CommandContext } from './context.js';
import { ExitCode } from './exit-codes.js';
import { DcxHome, PinnedServer } from './home.js';
import { RequestSigner } from './signed-request.js';
import { makeBundle } from './testing/bundles.js';
import { ConfirmEndpoint } from './testing/confirm-endpoint.js';
import { removeTempDirs, sha256, tempDir } from './testing/temp-dirs.js';

afterAll(removeTempDirs);

const keys = generateServerKeySet();
let endpoint: ConfirmEndpoint;
let http: Server;
let base: string;

interface Seen {
  method: string;
  url: string;
  /** null: a valid signature of an enrolled key (or any key, for the enrolment); else why it was refused. */
  refusal: string | null;
  nonce: string | null;
  range: string | undefined;
}
const seen: Seen[] = [];
const usedNonces = new Set<string>();
/** Enrolment codes: the fingerprint that used each, or null. */
const codes = new Map<string, string | null>();
const enrolled = new Map<string, { recipientId: string; name: string }>();
let inboxItems: { deliveryId: string; name: string; size: number; bundleUrl: string }[] = [];
const bundles = new Map<string, Buffer>();
/** Cuts the next bundle response after this many body bytes. */
let cutNext: number | null = null;

/** Why the server's guard would refuse this request, or null. */
function refusal(req: IncomingMessage, body: Buffer, enrolment: boolean): { why: string | null; nonce: string | null } {
  const header = req.headers[REQUEST_AUTH_HEADER] as string | undefined;
  const clientKey = Buffer.from((req.headers[CLIENT_KEY_HEADER] as string | undefined) ?? '', 'base64url');
  if (!header || clientKey.length !== 32) return { why: 'missing DCX-Auth', nonce: null };
  const fields = parseRequestAuth(header);
  const nonce = fields.nonce.toString('base64url');
  if (fields.keyId !== keys.keyId) return { why: `unknown server key id ${fields.keyId}`, nonce };
  const key = requestAuthKey(clientSealSecret(keys, clientKey), clientKey);
  const bad = checkSignedRequest(key, fields, { method: req.method!, path: req.url!, body });
  if (bad) return { why: bad, nonce };
  if (usedNonces.has(nonce)) return { why: 'nonce already used', nonce };
  usedNonces.add(nonce);
  if (!enrolment && !enrolled.has(fingerprint(clientKey))) return { why: 'this installation is not enrolled', nonce };
  return { why: null, nonce };
}

function answer(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  if (req.url === '/.well-known/dcx') {
    return answer(res, 200, {
      serverKey: keys.signPublicKey.toString('base64url'),
      sealKey: keys.sealPublicKey.toString('base64url'),
      keyId: keys.keyId,
      confirmHost: '127.0.0.1',
      confirmPort: endpoint.port,
    });
  }
  const { why, nonce } = refusal(req, body, req.url === '/api/recipients/enrol');
  seen.push({ method: req.method!, url: req.url!, refusal: why, nonce, range: req.headers.range });
  if (why) return answer(res, 401, { statusCode: 401, message: why });
  const clientKey = Buffer.from(req.headers[CLIENT_KEY_HEADER] as string, 'base64url');
  if (req.url === '/api/recipients/enrol' && req.method === 'POST')
    return enrol(res, clientKey, JSON.parse(body.toString()) as { code: string; name?: string });
  if (req.url === '/api/inbox') return answer(res, 200, { items: inboxItems });
  const match = /^\/api\/inbox\/([0-9a-f-]{36})\/bundle$/.exec(req.url!);
  if (!match || !bundles.has(match[1])) return answer(res, 403, { statusCode: 403, message: 'addressed to another recipient' });
  return sendBundle(req, res, match[1], clientKey);
}

function enrol(res: ServerResponse, clientKey: Buffer, request: { code: string; name?: string }): void {
  const fp = fingerprint(clientKey);
  if (request.code === 'NONE-0000' && !request.name)
    return answer(res, 400, { statusCode: 400, message: 'the code names no recipient: a name is needed' });
  if (request.code === 'GONE-0000') return answer(res, 410, { statusCode: 410, message: 'enrolment code expired' });
  if (!codes.has(request.code)) return answer(res, 404, { statusCode: 404, message: 'unknown enrolment code' });
  const usedBy = codes.get(request.code);
  if (usedBy && usedBy !== fp) return answer(res, 409, { statusCode: 409, message: 'enrolment code already used by another installation' });
  codes.set(request.code, fp);
  const recipient = enrolled.get(fp) ?? {
    recipientId: randomBytes(16)
      .toString('hex')
      .replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-'),
    name: request.name ?? 'Recipient',
  };
  enrolled.set(fp, recipient);
  answer(res, usedBy ? 200 : 201, { ...recipient, fingerprint: fp });
}

/** The delivery's bundle, sealed to the requesting key on first pull; Range + If-Range as the server does. */
async function sendBundle(req: IncomingMessage, res: ServerResponse, deliveryId: string, clientKey: Buffer): Promise<void> {
  let zip = bundles.get(deliveryId)!;
  if (zip.length === 0) {
    const bytes = randomBytes(300_000);
    const built = await makeBundle({
      keys,
      files: [{ name: `${deliveryId.slice(0, 8)}.bin`, bytes }],
      confirmPort: endpoint.port,
      clientPublicKey: clientKey,
      shape: 'server',
      data: {
        deliveryId,
        client: { fingerprint: fingerprint(clientKey), address: '127.0.0.1' },
        server: { host: '127.0.0.1', confirmPort: endpoint.port, url: base },
      },
    });
    endpoint.expect(built.data);
    zip = built.zip;
    bundles.set(deliveryId, zip);
  }
  const etag = `"${deliveryId}"`;
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = range && req.headers['if-range'] === etag ? Number(range[1]) : 0;
  const headers = { 'content-length': zip.length - start, etag, 'content-location': req.url!, 'dcx-delivery-id': deliveryId };
  if (start > 0) res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${zip.length - 1}/${zip.length}` });
  else res.writeHead(200, headers);
  if (cutNext !== null) {
    const cut = cutNext;
    cutNext = null;
    return void res.write(zip.subarray(start, start + cut), () => setTimeout(() => res.destroy(), 20));
  }
  res.end(zip.subarray(start));
}

beforeAll(async () => {
  endpoint = await ConfirmEndpoint.start(keys);
  http = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});
afterAll(async () => {
  http.closeAllConnections();
  await new Promise((resolve) => http.close(resolve));
  await endpoint.stop();
});

async function dcx(args: string[], home?: DcxHome): Promise<{ code: number; error?: string; stdout: string; home: DcxHome }> {
  const h = home ?? new DcxHome(join(await tempDir(), 'home'));
  let stdout = '';
  const ctx: CommandContext = { home: h, out: (t) => (stdout += `${t}\n`), notice: () => undefined, progress: false };
  return { ...(await run(args, ctx, {})), stdout, home: h };
}

function newCode(): string {
  const code = `${randomBytes(2).toString('hex')}-${randomBytes(2).toString('hex')}`.toUpperCase();
  codes.set(code, null);
  return code;
}

async function enrolledHome(name: string): Promise<DcxHome> {
  const result = await dcx(['enrol', base, '--code', newCode(), '--name', name]);
  expect([result.code, result.error]).toEqual([0, undefined]);
  return result.home;
}

function addDelivery(name: string): string {
  const deliveryId = newDeliveryId();
  bundles.set(deliveryId, Buffer.alloc(0));
  inboxItems.push({ deliveryId, name, size: 300_000, bundleUrl: `${base}/api/inbox/${deliveryId}/bundle` });
  return deliveryId;
}

describe('RequestSigner', () => {
  const identity = generateClientIdentity();
  const pin = {
    origin: 'http://dcx.test',
    sealKey: keys.sealPublicKey.toString('base64url'),
    keyId: keys.keyId,
  } as PinnedServer;
  const serverKey = requestAuthKey(clientSealSecret(keys, identity.publicKey), identity.publicKey);

  test('signs method, path with query and body so that the server side verifies it; a fresh nonce each time', () => {
    const signer = new RequestSigner(identity, pin);
    const body = Buffer.from('{"code":"K7QF-2M9X"}');
    const url = new URL('http://dcx.test/api/inbox?limit=5&after=x');
    const one = signer.headers('GET', url);
    const two = signer.headers('POST', new URL('http://dcx.test/api/recipients/enrol'), body);
    expect(one[CLIENT_KEY_HEADER]).toBe(identity.publicKey.toString('base64url'));
    expect(
      checkSignedRequest(serverKey, parseRequestAuth(one[REQUEST_AUTH_HEADER]), { method: 'GET', path: '/api/inbox?limit=5&after=x' }),
    ).toBeNull();
    expect(checkSignedRequest(serverKey, parseRequestAuth(one[REQUEST_AUTH_HEADER]), { method: 'GET', path: '/api/inbox' })).toBe(
      'bad signature',
    );
    const fields = parseRequestAuth(two[REQUEST_AUTH_HEADER]);
    expect(checkSignedRequest(serverKey, fields, { method: 'POST', path: '/api/recipients/enrol', body })).toBeNull();
    expect(checkSignedRequest(serverKey, fields, { method: 'POST', path: '/api/recipients/enrol', body: Buffer.from('{}') })).toBe(
      'bad signature',
    );
    expect(fields.nonce.equals(parseRequestAuth(one[REQUEST_AUTH_HEADER]).nonce)).toBe(false);
    expect(fields.keyId).toBe(keys.keyId);
  });

  test('a URL on another origin gets the client key only, never a signature', () => {
    const headers = new RequestSigner(identity, pin).headers('GET', new URL('http://elsewhere.test/api/inbox'));
    expect(headers).toEqual({ [CLIENT_KEY_HEADER]: identity.publicKey.toString('base64url') });
  });
});

describe('dcx enrol', () => {
  test('pins the server, enrols with a signed request, records the enrolment (0600); the same code again is fine', async () => {
    const code = newCode();
    const result = await dcx(['enrol', base, '--code', code.toLowerCase().replace('-', ''), '--name', ' Ada Lovelace ']);
    expect([result.code, result.error]).toEqual([0, undefined]);
    const identity = await result.home.identity();
    const serverFingerprint = fingerprint(keys.signPublicKey);
    expect(result.stdout).toContain(`enrolled at ${base} as "Ada Lovelace" (recipient `);
    expect(result.stdout).toContain(`  installation    ${identity.fingerprint}\nserver pinned\n  key fingerprint ${serverFingerprint}`);
    expect(seen.at(-1)).toMatchObject({ method: 'POST', url: '/api/recipients/enrol', refusal: null });
    expect(codes.get(code)).toBe(identity.fingerprint);
    const [enrolment] = await result.home.enrolments().list();
    expect(enrolment).toMatchObject({
      origin: base,
      name: 'Ada Lovelace',
      fingerprint: identity.fingerprint,
      recipientId: expect.any(String),
    });
    expect((await stat(result.home.enrolmentsPath)).mode & 0o777).toBe(0o600);
    expect((await result.home.pins().findByOrigin(base))?.fingerprint).toBe(serverFingerprint);

    const again = await dcx(['enrol', base, '--code', code, '--json'], result.home);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({
      recipientId: enrolment.recipientId,
      fingerprint: identity.fingerprint,
      server: { fingerprint: serverFingerprint },
    });
  });

  test('unknown (404), expired (410), used by another installation (409): exit 8, and nothing saved', async () => {
    const used = newCode();
    await dcx(['enrol', base, '--code', used]);
    for (const [code, reason] of [
      ['ZZZZ-ZZZZ', 'is unknown to the server'],
      ['GONE-0000', 'has expired'],
      [used, 'is refused'],
    ]) {
      const result = await dcx(['enrol', base, '--code', code]);
      expect([result.code, result.stdout]).toEqual([ExitCode.Refused, '']);
      expect(result.error).toMatch(new RegExp(`^the enrolment code ${code} ${reason}.* \\(enrolling at ${base} failed: 4\\d\\d `));
      expect((await readdir(result.home.dir)).sort()).toEqual(['identity.json']);
    }
    const nameless = await dcx(['enrol', base, '--code', 'NONE-0000']);
    expect([nameless.code, nameless.error]).toEqual([
      ExitCode.Usage,
      `enrolling at ${base} failed: 400 Bad Request (the code names no recipient: a name is needed); pass --name <name>?`,
    ]);
    expect((await readdir(nameless.home.dir)).sort()).toEqual(['identity.json']);
  });

  test('a malformed code or empty name is a usage error before any request; an unreachable server is exit 6', async () => {
    const before = seen.length;
    expect(await dcx(['enrol', base, '--code', 'not a code'])).toMatchObject({
      code: ExitCode.Usage,
      error: expect.stringMatching(/is not an enrolment code/),
    });
    expect(await dcx(['enrol', base, '--code', 'ABCD-EFGH', '--name', ' '])).toMatchObject({
      code: ExitCode.Usage,
      error: '--name cannot be empty',
    });
    expect(await dcx(['enrol', base])).toMatchObject({ code: ExitCode.Usage, error: expect.stringMatching(/--code <code>/) });
    expect(seen.length).toBe(before);
    const closed = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    expect(await dcx(['enrol', `http://127.0.0.1:${closed}`, '--code', 'ABCD-EFGH'])).toMatchObject({ code: ExitCode.ServerUnreachable });
  });
});

describe('dcx inbox', () => {
  beforeEach(() => {
    inboxItems = [];
  });

  test('not enrolled at the server: exit 8 before any request', async () => {
    const before = seen.length;
    const result = await dcx(['inbox', base, '--out', await tempDir()]);
    expect([result.code, result.error]).toEqual([
      ExitCode.Refused,
      `this installation is not enrolled at ${base}; run \`dcx enrol ${base} --code <code>\``,
    ]);
    expect(seen.length).toBe(before);
  });

  test('an empty inbox: "nothing waiting", exit 0', async () => {
    const home = await enrolledHome('Empty');
    expect(await dcx(['inbox', base, '--out', await tempDir()], home)).toMatchObject({ code: 0, stdout: 'nothing waiting\n' });
    expect(JSON.parse((await dcx(['inbox', base, '--out', await tempDir(), '--json'], home)).stdout)).toEqual({
      server: base,
      confirmed: 0,
      failed: 0,
      items: [],
    });
  });

  test('each item pulled with its own signature, saved, confirmed; one refused item: the summary names it, exit 8', async () => {
    const home = await enrolledHome('Grace');
    const first = addDelivery('first.bin');
    inboxItems.push({ deliveryId: newDeliveryId(), name: 'not-yours.bin', size: 1, bundleUrl: `/api/inbox/${newDeliveryId()}/bundle` });
    const third = addDelivery('third.bin');
    const out = await tempDir();
    const from = seen.length;
    const result = await dcx(['inbox', base, '--out', out], home);
    expect(result.code).toBe(ExitCode.Refused);
    expect(result.error).toMatch(
      /^1 of 3 deliveries failed; first: not-yours\.bin: downloading .* failed: 403 Forbidden \(addressed to another recipient\)$/,
    );
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^confirmed first\\.bin: ${join(out, first.slice(0, 8))}\\.bin \\(receipt `));
    expect(lines[1]).toMatch(/^FAILED {4}not-yours\.bin \(delivery .*403 Forbidden/);
    expect(lines[3]).toBe('2 confirmed, 1 failed: not-yours.bin');
    expect((await readdir(out)).sort()).toEqual([`${first.slice(0, 8)}.bin`, `${third.slice(0, 8)}.bin`].sort());
    const requests = seen.slice(from);
    expect(requests.map((r) => [r.method, r.url, r.refusal])).toEqual([
      ['GET', '/api/inbox', null],
      ['GET', `/api/inbox/${first}/bundle`, null],
      ['GET', expect.stringMatching(/^\/api\/inbox\/.*\/bundle$/), null],
      ['GET', `/api/inbox/${third}/bundle`, null],
    ]);
    expect(new Set(requests.map((r) => r.nonce)).size).toBe(4);
    expect(endpoint.received.filter((c) => [first, third].includes(c.confirmation.deliveryId))).toHaveLength(2);

    inboxItems = inboxItems.filter((i) => i.deliveryId !== third && bundles.has(i.deliveryId));
    const json = await dcx(['inbox', base, '--out', out, '--json'], home);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ confirmed: 1, failed: 0, items: [{ deliveryId: first, status: 'already_confirmed' }] });
  });
});

describe('dcx fetch of a personal link', () => {
  test('signed at an enrolled origin; cut off, it resumes by Range with a fresh signature: same delivery, confirmed once', async () => {
    const home = await enrolledHome('Hedy');
    const deliveryId = addDelivery('resumed.bin');
    const link = `${base}/api/inbox/${deliveryId}/bundle`;
    const out = await tempDir();
    cutNext = 200_000;
    const from = seen.length;
    const first = await dcx(['fetch', link, '--out', out], home);
    expect([first.code, first.error]).toEqual([
      ExitCode.ServerUnreachable,
      expect.stringMatching(/interrupted.*running the same command again resumes it$/),
    ]);
    const second = await dcx(['fetch', link, '--out', out, '--json'], home);
    expect([second.code, second.error]).toEqual([0, undefined]);
    const requests = seen.slice(from);
    expect(requests.map((r) => [r.url, r.refusal, r.range])).toEqual([
      [`/api/inbox/${deliveryId}/bundle`, null, undefined],
      [`/api/inbox/${deliveryId}/bundle`, null, expect.stringMatching(/^bytes=\d+-$/)],
    ]);
    expect(requests[0].nonce).not.toBe(requests[1].nonce);
    const report = JSON.parse(second.stdout) as { deliveryId: string; files: { path: string; sha256: string }[] };
    expect(report.deliveryId).toBe(deliveryId);
    expect(sha256(await readFile(report.files[0].path))).toBe(report.files[0].sha256);
    expect(endpoint.received.filter((c) => c.confirmation.deliveryId === deliveryId)).toHaveLength(1);
  });

  test('from an installation not enrolled there: refused (exit 8) with what to do, nothing saved', async () => {
    const deliveryId = addDelivery('private.bin');
    const out = await tempDir();
    const result = await dcx(['fetch', `${base}/api/inbox/${deliveryId}/bundle`, '--out', out]);
    expect(result.code).toBe(ExitCode.Refused);
    expect(result.error).toBe(
      `downloading ${base}/api/inbox/${deliveryId}/bundle failed: 401 Unauthorized (missing DCX-Auth); this installation is not enrolled at ${base} (run \`dcx enrol ${base} --code <code>\`)`,
    );
    expect(await readdir(out)).toEqual([]);
    expect(await readdir(join(result.home.dir, 'downloads'))).toEqual([]);
  });
});
