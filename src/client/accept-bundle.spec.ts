import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { AnswerStatus } from '../protocol/answer.js';
import { PLUGIN_ENTRY_NAME } from '../protocol/constants.js';
import { generateClientIdentity, generateServerKeySet } from '../protocol/keys.js';
import { verifyReceipt } from '../protocol/receipt.js';
import { acceptBundle, AcceptOptions, PinPolicy } from './accept-bundle.js';
import { DcxError } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { DcxHome } from './home.js';
import { BundleSpec, makeBundle } from './testing/bundles.js';
import { ConfirmEndpoint } from './testing/confirm-endpoint.js';
import { removeTempDirs, sha256, tempDir } from './testing/temp-dirs.js';

afterAll(removeTempDirs);

const keys = generateServerKeySet();
let endpoint: ConfirmEndpoint;

beforeAll(async () => {
  endpoint = await ConfirmEndpoint.start(keys);
});
afterAll(async () => {
  await endpoint.stop();
});
beforeEach(() => {
  endpoint.override = null;
  endpoint.silent = false;
});

interface Scene {
  home: DcxHome;
  out: string;
  bundlePath: string;
  notices: string[];
  run: (policy?: PinPolicy, extra?: Partial<AcceptOptions>) => ReturnType<typeof acceptBundle>;
}

async function scene(
  spec: Omit<BundleSpec, 'keys' | 'confirmPort'> & { keys?: BundleSpec['keys']; confirmPort?: number },
  home?: DcxHome,
): Promise<Scene & { data: Awaited<ReturnType<typeof makeBundle>>['data'] }> {
  const dir = await tempDir();
  const { zip, data } = await makeBundle({ keys, confirmPort: endpoint.port, ...spec });
  endpoint.expect(data);
  const bundlePath = join(dir, 'x.dcx');
  await writeFile(bundlePath, zip);
  const out = join(dir, 'out');
  const clientHome = home ?? new DcxHome(join(dir, 'home'));
  const notices: string[] = [];
  return {
    home: clientHome,
    out,
    bundlePath,
    notices,
    data,
    run: (policy = { kind: 'trust' }, extra = {}) =>
      acceptBundle(bundlePath, clientHome, {
        outDir: out,
        pinPolicy: policy,
        notice: (l) => notices.push(l),
        progress: false,
        confirm: { retryDelayMs: () => 10 },
        ...extra,
      }),
  };
}

async function failure(promise: Promise<unknown>): Promise<DcxError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(error instanceof DcxError)) throw new Error(`expected a DcxError, got ${String(error)}`);
  return error;
}

const listing = (dir: string) => readdir(dir).catch(() => [] as string[]);
const movie = randomBytes(300_000);

describe('acceptBundle (open / fetch after download)', () => {
  test('an unpinned server is refused without --trust: nothing saved, nothing confirmed', async () => {
    const s = await scene({ files: [{ name: 'movie.mp4', bytes: movie }] });
    const before = endpoint.received.length;
    const error = await failure(s.run({ kind: 'pinned' }));
    expect(error.exitCode).toBe(ExitCode.UnusableBundle);
    expect(error.message).toMatch(/not pinned; run `dcx trust <server-url>` or pass --trust/);
    expect(await listing(s.out)).toEqual([]);
    expect(endpoint.received.length).toBe(before);
  });

  test('--trust pins, saves, confirms and keeps a receipt that verifies; a repeat is "already confirmed"', async () => {
    const s = await scene({ files: [{ name: 'movie.mp4', bytes: movie }] });
    const result = await s.run({ kind: 'trust' });
    expect(result.status).toBe('accepted');
    expect(result.deliveryId).toBe(s.data.deliveryId);
    expect(result.files).toEqual([{ path: join(s.out, 'movie.mp4'), size: movie.length, sha256: sha256(movie) }]);
    expect((await readFile(join(s.out, 'movie.mp4'))).equals(movie)).toBe(true);
    expect(s.notices.join('\n')).toMatch(/pinned server http:\/\/127\.0\.0\.1:3999/);
    expect(await s.home.pins().findByKey(keys.signPublicKey)).not.toBeNull();

    const confirmation = endpoint.received.at(-1)!.confirmation;
    expect(confirmation.deliveryId).toBe(s.data.deliveryId);
    expect(confirmation.clientFingerprint).toBe((await s.home.identity()).fingerprint);
    expect(confirmation.digests).toEqual([sha256(movie)]);

    const stored = await readFile(result.receiptPath);
    expect(result.receiptPath).toBe(join(s.home.dir, 'receipts', `${s.data.deliveryId}.receipt`));
    expect(stored.equals(result.receipt)).toBe(true);
    expect(verifyReceipt(stored, keys.signPublicKey).deliveryId).toBe(s.data.deliveryId);

    // Pinned now: plain `open` works, and the server says it was already confirmed.
    const again = await s.run({ kind: 'pinned' });
    expect(again.status).toBe('already_confirmed');
    // The same content, already saved: recognised, not written again as `movie (1).mp4`.
    expect(again.files[0]).toMatchObject({ path: join(s.out, 'movie.mp4'), alreadySaved: true });
  });

  test('a bundle sealed to this client opens; one sealed to another client is unusable', async () => {
    const dir = await tempDir();
    const home = new DcxHome(join(dir, 'home'));
    const me = await home.identity();
    const mine = await scene(
      {
        files: [{ name: 'a.txt', bytes: Buffer.from('mine') }],
        clientPublicKey: me.publicKey,
        data: { client: { fingerprint: me.fingerprint, address: '127.0.0.1' } },
      },
      home,
    );
    expect((await mine.run()).status).toBe('accepted');

    const other = generateClientIdentity();
    const theirs = await scene({ files: [{ name: 'a.txt', bytes: Buffer.from('theirs') }], clientPublicKey: other.publicKey }, home);
    const error = await failure(theirs.run());
    expect(error.exitCode).toBe(ExitCode.UnusableBundle);
    expect(error.message).toMatch(/another client/);
    expect(await listing(theirs.out)).toEqual([]);
  });

  test('tampered plug-in data is unusable', async () => {
    const s = await scene({ files: [{ name: 'a.txt', bytes: Buffer.from('x') }] });
    const zip = await readFile(s.bundlePath);
    // The plug-in data starts after the first local header (30 bytes + its name).
    zip[30 + PLUGIN_ENTRY_NAME.length + 120] ^= 0x01;
    await writeFile(s.bundlePath, zip);
    const error = await failure(s.run());
    expect(error.exitCode).toBe(ExitCode.UnusableBundle);
    expect(error.message).toMatch(/plug-in data is unusable/);
    expect(await listing(s.out)).toEqual([]);
  });

  test('an expired bundle is unusable and saves nothing', async () => {
    const s = await scene({ files: [{ name: 'a.txt', bytes: Buffer.from('x') }], data: { expiresAt: new Date(Date.now() - 1000) } });
    const error = await failure(s.run());
    expect(error.exitCode).toBe(ExitCode.UnusableBundle);
    expect(error.message).toMatch(/expired/);
    expect(await listing(s.out)).toEqual([]);
  });

  test('a digest mismatch (exit 4) leaves no file, also none of the files saved before it, and confirms nothing', async () => {
    const good = Buffer.from('good file');
    const s = await scene({
      files: [
        { name: 'first.txt', bytes: good },
        { name: 'second.txt', bytes: Buffer.from('what the server meant') },
      ],
      entries: [
        { name: 'first.txt', data: Readable.from([good]) },
        { name: 'second.txt', data: Readable.from([Buffer.from('what the attacker put')]) },
      ],
    });
    const before = endpoint.received.length;
    const error = await failure(s.run());
    expect(error.exitCode).toBe(ExitCode.DigestMismatch);
    expect(error.message).toMatch(/second\.txt.*removed/);
    expect(await listing(s.out)).toEqual([]);
    expect(endpoint.received.length).toBe(before);
  });

  test("a refused confirmation is exit 5 with the server's reason; the verified file stays", async () => {
    const s = await scene({ files: [{ name: 'a.txt', bytes: Buffer.from('x') }] });
    endpoint.override = (c) => ({
      status: AnswerStatus.ClientMismatch,
      deliveryId: c.deliveryId,
      message: 'not the client it was sent to',
      receipt: null,
    });
    const error = await failure(s.run());
    expect(error.exitCode).toBe(ExitCode.ConfirmationRefused);
    expect(error.message).toBe('the server refused the confirmation: client_mismatch (not the client it was sent to)');
    expect(await listing(s.out)).toEqual(['a.txt']);
  });

  test('"try later" is retried', async () => {
    const s = await scene({ files: [{ name: 'a.txt', bytes: Buffer.from('x') }] });
    let calls = 0;
    endpoint.override = (c) =>
      ++calls < 3 ? { status: AnswerStatus.TryLater, deliveryId: c.deliveryId, message: 'busy', receipt: null } : null;
    expect((await s.run()).status).toBe('accepted');
    expect(calls).toBe(3);
  });

  test('a receipt not signed by the pinned key is not accepted', async () => {
    const s = await scene({ files: [{ name: 'a.txt', bytes: Buffer.from('x') }] });
    const { signReceipt } = await import('../protocol/receipt.js');
    endpoint.override = (c) => ({
      status: AnswerStatus.Accepted,
      deliveryId: c.deliveryId,
      message: 'ok',
      receipt: signReceipt(
        {
          keyId: keys.keyId,
          deliveryId: c.deliveryId,
          clientFingerprint: null,
          requesterAddress: '127.0.0.1',
          issuedAt: new Date(),
          sentAt: null,
          confirmedAt: new Date(),
          files: s.data.files,
        },
        generateServerKeySet(),
      ),
    });
    const error = await failure(s.run());
    expect(error.exitCode).toBe(ExitCode.Failure);
    expect(error.message).toMatch(/receipt is not valid/);
  });

  test('an unreachable confirmation port is exit 6', async () => {
    const closed = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const s = await scene({ files: [{ name: 'a.txt', bytes: Buffer.from('x') }], confirmPort: closed });
    const error = await failure(s.run());
    expect(error.exitCode).toBe(ExitCode.ServerUnreachable);
    expect(error.message).toMatch(/cannot reach the confirmation server 127\.0\.0\.1:\d+/);
  });

  test('a server that never answers times out with exit 6', async () => {
    const s = await scene({ files: [{ name: 'a.txt', bytes: Buffer.from('x') }] });
    endpoint.silent = true;
    const error = await failure(s.run({ kind: 'trust' }, { confirm: { answerMs: 200 } }));
    expect(error.exitCode).toBe(ExitCode.ServerUnreachable);
    expect(error.message).toMatch(/did not answer/);
  });

  test('fetch pins on first use, and refuses another key for an origin already pinned', async () => {
    const s = await scene({ files: [{ name: 'a.txt', bytes: Buffer.from('x') }] });
    expect((await s.run({ kind: 'first-use', origin: 'http://localhost:3999' })).status).toBe('accepted');
    expect(s.notices).toHaveLength(1);
    expect((await s.home.pins().findByOrigin('http://localhost:3999'))?.signKey).toBe(keys.signPublicKey.toString('base64url'));

    const impostor = generateServerKeySet();
    const forged = await scene({ keys: impostor, files: [{ name: 'a.txt', bytes: Buffer.from('x') }] }, s.home);
    const error = await failure(forged.run({ kind: 'first-use', origin: 'http://localhost:3999' }));
    expect(error.exitCode).toBe(ExitCode.UnusableBundle);
    expect(error.message).toMatch(/not the pinned key/);
    expect(await listing(forged.out)).toEqual([]);
  });
});

describe('pinning happens only for a confirmed delivery', () => {
  test('--trust on a bundle that fails pins nothing and says nothing but the error', async () => {
    const s = await scene({ files: [{ name: 'a.txt', bytes: Buffer.from('x') }], data: { expiresAt: new Date(Date.now() - 1) } });
    await failure(s.run({ kind: 'trust' }));
    const refused = await scene({ files: [{ name: 'b.txt', bytes: Buffer.from('y') }] }, s.home);
    endpoint.override = (c) => ({ status: AnswerStatus.Expired, deliveryId: c.deliveryId, message: 'too late', receipt: null });
    expect((await failure(refused.run({ kind: 'first-use', origin: 'http://example.test' }))).exitCode).toBe(ExitCode.ConfirmationRefused);
    expect(s.notices).toEqual([]);
    expect(refused.notices).toEqual([]);
    expect(await s.home.pins().list()).toEqual([]);
  });
});
