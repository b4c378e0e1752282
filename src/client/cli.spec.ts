import { randomBytes } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLIENT_KEY_HEADER } from '../protocol/constants.js';
import { fingerprint, generateServerKeySet } from '../protocol/keys.js';
import { run } from './cli.js';
import { CommandContext } from './context.js';
import { ExitCode } from './exit-codes.js';
import { DcxHome } from './home.js';
import { makeBundle, makeBundleForRequest } from './testing/bundles.js';
import { ConfirmEndpoint } from './testing/confirm-endpoint.js';
import { removeTempDirs, sha256, tempDir } from './testing/temp-dirs.js';

afterAll(removeTempDirs);

const keys = generateServerKeySet();
const content = randomBytes(200_000);
let endpoint: ConfirmEndpoint;
let http: Server;
let base: string;
const seen: { url: string; headers: IncomingMessage['headers']; body: Buffer }[] = [];
let wellKnown: Record<string, unknown>;

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  seen.push({ url: req.url!, headers: req.headers, body });
  if (req.url === '/.well-known/dcx') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(wellKnown));
  } else if (req.url === '/api/contents/c1/bundle') {
    const { zip, data } = await makeBundleForRequest(req.headers, {
      keys,
      confirmPort: endpoint.port,
      files: [{ name: 'report.pdf', bytes: content }],
    });
    endpoint.expect(data);
    res.setHeader('content-type', 'application/vnd.dcx.bundle+zip');
    res.setHeader('content-length', zip.length);
    res.end(zip);
  } else if (req.url === '/login') {
    res.setHeader('content-type', 'text/html');
    res.end('<html><body>please log in</body></html>');
  } else if (req.url === '/api/contents' && req.method === 'POST') {
    if (req.headers.authorization !== 'Bearer admin-secret') {
      res.statusCode = 401;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ statusCode: 401, message: 'admin token required' }));
      return;
    }
    const form = await new Response(body, { headers: { 'content-type': req.headers['content-type']! } }).formData();
    const file = form.get('file') as File;
    res.setHeader('content-type', 'application/json');
    res.statusCode = 201;
    const access = form.get('access');
    res.end(
      JSON.stringify({
        id: 'c2',
        name: file.name,
        size: file.size,
        sha256: sha256(Buffer.from(await file.arrayBuffer())),
        access,
        bundleUrl: `${base}/api/contents/c2/bundle`,
        accessToken: access === 'token' ? 'tok-123' : null,
      }),
    );
  } else {
    res.statusCode = 404;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ statusCode: 404, message: 'no such content' }));
  }
}

beforeAll(async () => {
  endpoint = await ConfirmEndpoint.start(keys);
  http = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  wellKnown = {
    serverKey: keys.signPublicKey.toString('base64url'),
    sealKey: keys.sealPublicKey.toString('base64url'),
    keyId: keys.keyId,
    fingerprint: fingerprint(keys.signPublicKey),
    confirmHost: '127.0.0.1',
    confirmPort: endpoint.port,
    url: base,
  };
});
afterAll(async () => {
  http.closeAllConnections();
  await new Promise((resolve) => http.close(resolve));
  await endpoint.stop();
});

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

interface Captured {
  code: number;
  error?: string;
  stdout: string;
  notices: string[];
  home: DcxHome;
}

async function dcx(args: string[], options: { home?: DcxHome; env?: NodeJS.ProcessEnv } = {}): Promise<Captured> {
  const home = options.home ?? new DcxHome(join(await tempDir(), 'home'));
  let stdout = '';
  const notices: string[] = [];
  const ctx: CommandContext = { home, out: (t) => (stdout += `${t}\n`), notice: (t) => notices.push(t), progress: false };
  const { code, error } = await run(args, ctx, options.env ?? {});
  return { code, error, stdout, notices, home };
}

describe('dcx command line', () => {
  test.each([
    [[], /^missing command/],
    [['open'], /^missing required argument 'file'/],
    [['fetch', 'not a url'], /is not a valid URL/],
    [['fetch', 'ftp://x/y'], /must be http/],
    [['publish', 'x', '--server', base ?? 'http://x', '--access', 'everyone'], /Allowed choices are public, token/],
    [['bogus'], /^unknown command 'bogus'/],
    [['open', 'x.dcx', '--frob'], /^unknown option '--frob'/],
  ])('%j is a usage error (exit 2) with one line', async (args, message) => {
    const result = await dcx(args);
    expect(result.code).toBe(ExitCode.Usage);
    expect(result.error).toMatch(message);
    expect(result.error).not.toContain('\n');
  });

  test('--help and --version exit 0', async () => {
    const help = await dcx(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes: 0 confirmed/);
    expect((await dcx(['--version'])).code).toBe(0);
  });

  test('fetch sends its key, opens the sealed bundle, saves, confirms, pins on first use and cleans up the download', async () => {
    const out = await tempDir();
    const result = await dcx(['fetch', `${base}/api/contents/c1/bundle`, '--out', out, '--json', '--access-token', 'tok-9']);
    expect(result.error).toBeUndefined();
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      deliveryId: string;
      status: string;
      files: { path: string; size: number; sha256: string }[];
      receipt: string;
    };
    expect(report.status).toBe('accepted');
    expect(report.files).toEqual([{ path: join(out, 'report.pdf'), size: content.length, sha256: sha256(content) }]);
    expect((await readFile(join(out, 'report.pdf'))).equals(content)).toBe(true);
    expect(
      Buffer.from(report.receipt, 'base64').equals(await readFile(join(result.home.dir, 'receipts', `${report.deliveryId}.receipt`))),
    ).toBe(true);

    const request = seen.filter((r) => r.url === '/api/contents/c1/bundle').at(-1)!;
    const identity = await result.home.identity();
    expect(request.headers[CLIENT_KEY_HEADER]).toBe(identity.publicKey.toString('base64url'));
    expect(request.headers['dcx-access-token']).toBe('tok-9');
    expect(endpoint.received.at(-1)!.confirmation.clientFingerprint).toBe(identity.fingerprint);
    expect(result.notices).toEqual([expect.stringMatching(/^pinned server http:\/\/127\.0\.0\.1:\d+ \(key fingerprint [0-9a-f]{64}\)$/)]);
    expect(await readdir(join(result.home.dir, 'downloads'))).toEqual([]);

    // Second fetch: already pinned (no notice), new delivery of the same content: the saved file is
    // recognised (same SHA-256), not written again as `report (1).pdf`.
    const again = await dcx(['fetch', `${base}/api/contents/c1/bundle`, '--out', out], { home: result.home });
    expect(again.code).toBe(0);
    expect(again.notices).toEqual([]);
    expect(again.stdout).toMatch(/^already saved .*report\.pdf \(/);
    expect(await readdir(out)).toEqual(['report.pdf']);
  });

  test("fetch: HTTP 404 is exit 1 with the server's message; a closed port is exit 6", async () => {
    const missing = await dcx(['fetch', `${base}/api/contents/nope/bundle`]);
    expect(missing.code).toBe(ExitCode.Failure);
    expect(missing.error).toMatch(/404.*no such content/);
    const port = await closedPort();
    const closed = await dcx(['fetch', `http://127.0.0.1:${port}/api/contents/c1/bundle`]);
    expect(closed.code).toBe(ExitCode.ServerUnreachable);
    expect(closed.error).toBe(`cannot reach http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  test('fetch --out a regular file is a usage error before anything is requested', async () => {
    const file = join(await tempDir(), 'not-a-dir');
    await writeFile(file, 'x');
    const before = seen.length;
    const result = await dcx(['fetch', `${base}/api/contents/c1/bundle`, '--out', file]);
    expect(result.code).toBe(ExitCode.Usage);
    expect(result.error).toBe(`--out ${file} is not a directory`);
    expect(seen.length).toBe(before);
  });

  test('fetch of a web page instead of a bundle is exit 3, says it is HTML, names the URL, and leaves no download behind', async () => {
    const result = await dcx(['fetch', `${base}/login`]);
    expect(result.code).toBe(ExitCode.UnusableBundle);
    expect(result.error).toBe(
      `the bundle from ${base}/login is a web page (HTML), not a DCX bundle: use the bundle link itself (…/bundle), not the page that shows it`,
    );
    expect(await readdir(join(result.home.dir, 'downloads'))).toEqual([]);
  });

  test("trust pins the published key; open then accepts the server's bundles; inspect shows it pinned", async () => {
    const trusted = await dcx(['trust', base]);
    expect(trusted.code).toBe(0);
    expect(trusted.stdout).toContain(fingerprint(keys.signPublicKey));
    expect(await trusted.home.pins().findByKey(keys.signPublicKey)).not.toBeNull();

    const dir = await tempDir();
    const { zip, data } = await makeBundle({ keys, confirmPort: endpoint.port, files: [{ name: 'a.txt', bytes: Buffer.from('hello') }] });
    endpoint.expect(data);
    await writeFile(join(dir, 'a.dcx'), zip);

    const inspected = await dcx(['inspect', join(dir, 'a.dcx'), '--json'], { home: trusted.home });
    expect(inspected.code).toBe(0);
    expect(JSON.parse(inspected.stdout)).toMatchObject({
      deliveryId: data.deliveryId,
      mode: 'anonymous',
      server: { host: '127.0.0.1', confirmPort: endpoint.port, fingerprint: fingerprint(keys.signPublicKey), pinned: true },
      files: [{ name: 'a.txt', size: 5, sha256: sha256(Buffer.from('hello')) }],
      expired: false,
    });
    expect(await readdir(dir)).toEqual(['a.dcx']);

    const opened = await dcx(['open', join(dir, 'a.dcx'), '--out', join(dir, 'out')], { home: trusted.home });
    expect(opened.code).toBe(0);
    expect(opened.stdout).toMatch(/delivery [0-9a-f-]{36} confirmed; receipt: /);

    const again = await dcx(['trust', base], { home: trusted.home });
    expect(again.stdout).toMatch(/^already pinned/);
  });

  test('trust refuses a description whose fingerprint does not match its key', async () => {
    const saved = wellKnown.fingerprint;
    wellKnown.fingerprint = 'ab'.repeat(32);
    try {
      const result = await dcx(['trust', base]);
      expect(result.code).toBe(ExitCode.Failure);
      expect(result.error).toMatch(/fingerprint/);
      expect(await result.home.pins().list()).toEqual([]);
    } finally {
      wellKnown.fingerprint = saved;
    }
  });

  test('publish uploads the file as multipart with the admin token and prints id, bundle URL and access token', async () => {
    const dir = await tempDir();
    const file = join(dir, 'policy.pdf');
    const bytes = randomBytes(70_000);
    await writeFile(file, bytes);
    const result = await dcx(['publish', file, '--server', base, '--access', 'token', '--json'], {
      env: { DCX_ADMIN_TOKEN: 'admin-secret' },
    });
    expect(result.error).toBeUndefined();
    expect(JSON.parse(result.stdout)).toMatchObject({
      id: 'c2',
      bundleUrl: `${base}/api/contents/c2/bundle`,
      accessToken: 'tok-123',
      name: 'policy.pdf',
      size: bytes.length,
      sha256: sha256(bytes),
      access: 'token',
    });

    const text = await dcx(['publish', file, '--server', base, '--access', 'token'], { env: { DCX_ADMIN_TOKEN: 'admin-secret' } });
    expect(text.stdout).toMatch(/^content c2\nbundle {2}http:\/\/.*\/api\/contents\/c2\/bundle\naccess token tok-123/);

    const noToken = await dcx(['publish', file, '--server', base]);
    expect(noToken.code).toBe(ExitCode.Usage);
    expect(noToken.error).toMatch(/DCX_ADMIN_TOKEN/);
    const wrongToken = await dcx(['publish', file, '--server', base], { env: { DCX_ADMIN_TOKEN: 'nope' } });
    expect(wrongToken.code).toBe(ExitCode.Failure);
    expect(wrongToken.error).toMatch(/401.*admin token required/);
  });
});
