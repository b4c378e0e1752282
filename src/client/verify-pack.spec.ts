// `dcx verify-receipt --pack`: real ZIPs (archiver, as the server's evidence.zip is written), real signed receipts.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { newDeliveryId } from '../protocol/delivery-id.js';
import { fingerprint, generateServerKeySet, ServerKeySet } from '../protocol/keys.js';
import { signReceipt } from '../protocol/receipt.js';
import { run } from './cli.js';
import { CommandContext } from './context.js';
import { ExitCode } from './exit-codes.js';
import { DcxHome } from './home.js';
import { makeZip } from './testing/bundles.js';
import { removeTempDirs, tempDir } from './testing/temp-dirs.js';

afterAll(removeTempDirs);

const keys = generateServerKeySet();
const other = generateServerKeySet();

function receiptFor(deliveryId: string, by: ServerKeySet = keys): Buffer {
  return signReceipt(
    {
      keyId: by.keyId,
      deliveryId,
      clientFingerprint: 'cd'.repeat(32),
      requesterAddress: '192.0.2.9',
      issuedAt: new Date('2026-12-01T09:00:00Z'),
      sentAt: new Date('2026-12-01T09:00:01Z'),
      confirmedAt: new Date('2026-12-01T09:00:02Z'),
      files: [{ name: 'policy.pdf', size: 10, sha256: 'ab'.repeat(32) }],
    },
    by,
  );
}

const wellKnown = (k: ServerKeySet) =>
  Buffer.from(
    JSON.stringify({ serverKey: k.signPublicKey.toString('base64url'), sealKey: k.sealPublicKey.toString('base64url'), keyId: k.keyId }),
  );

async function homePinning(k: ServerKeySet): Promise<DcxHome> {
  const home = new DcxHome(join(await tempDir(), 'home'));
  await home.pins().pin({
    origin: 'http://dcx.test',
    url: 'http://dcx.test',
    signKey: k.signPublicKey.toString('base64url'),
    sealKey: k.sealPublicKey.toString('base64url'),
    keyId: k.keyId,
    fingerprint: fingerprint(k.signPublicKey),
    confirmHost: null,
    confirmPort: null,
  });
  return home;
}

async function packOf(entries: { name: string; data: Buffer }[]): Promise<string> {
  const path = join(await tempDir(), 'evidence.zip');
  await writeFile(path, await makeZip([...entries, { name: 'README.txt', data: Buffer.from('how to check') }]));
  return path;
}

async function verify(home: DcxHome, args: string[]): Promise<{ code: number; error?: string; stdout: string }> {
  let stdout = '';
  const ctx: CommandContext = { home, out: (t) => (stdout += `${t}\n`), notice: () => undefined, progress: false };
  return { ...(await run(['verify-receipt', ...args], ctx, {})), stdout };
}

describe('dcx verify-receipt --pack', () => {
  const ids = [newDeliveryId(), newDeliveryId(), newDeliveryId()];
  const valid = ids.map((id) => ({ name: `receipts/${id}.receipt`, data: receiptFor(id) }));

  test('every receipt valid against the pin: exit 0, a summary, the pack key compared with the pin', async () => {
    const pack = await packOf([...valid, { name: 'server-keys.json', data: wellKnown(keys) }]);
    const result = await verify(await homePinning(keys), ['--pack', pack]);
    expect([result.code, result.error]).toEqual([ExitCode.Confirmed, undefined]);
    expect(result.stdout).toBe("the pack's server key is the one pinned for http://dcx.test\n3 receipts: 3 valid, 0 invalid\n");
    const json = await verify(await homePinning(keys), ['--pack', pack, '--json']);
    expect(JSON.parse(json.stdout)).toEqual({
      pack,
      receipts: 3,
      valid: 3,
      invalid: [],
      serverKeys: { fingerprint: fingerprint(keys.signPublicKey), pinnedAs: 'http://dcx.test', note: expect.any(String) },
    });
  });

  test('one flipped byte, one receipt filed under another delivery, one by an unpinned key: exit 7 naming each', async () => {
    const flipped = Buffer.from(valid[1].data);
    flipped[flipped.length - 5] ^= 0x01;
    const moved = newDeliveryId();
    const pack = await packOf([
      valid[0],
      { name: valid[1].name, data: flipped },
      { name: `receipts/${moved}.receipt`, data: receiptFor(ids[2]) },
      { name: `receipts/${ids[2]}.receipt`, data: receiptFor(ids[2], other) },
      { name: 'server-keys.json', data: wellKnown(keys) },
    ]);
    const result = await verify(await homePinning(keys), ['--pack', pack]);
    expect(result.code).toBe(ExitCode.InvalidReceipt);
    expect(result.error).toBe(`3 of 4 receipts in ${pack} are not valid; first: ${valid[1].name}`);
    expect(result.stdout.split('\n')).toEqual([
      `INVALID ${valid[1].name}: the receipt ${valid[1].name} is not valid: its signature verifies against no pinned server key (1 pinned)`,
      `INVALID receipts/${moved}.receipt: the receipt receipts/${moved}.receipt is not valid: it is signed for delivery ${ids[2]}, but filed as ${moved}.receipt`,
      `INVALID receipts/${ids[2]}.receipt: the receipt receipts/${ids[2]}.receipt is not valid: its signature verifies against no pinned server key (1 pinned)`,
      "the pack's server key is the one pinned for http://dcx.test",
      '4 receipts: 1 valid, 3 invalid',
      '',
    ]);
  });

  test("the pack's own keys never make a receipt valid: a pack signed and keyed by another server is refused, the mismatch shown", async () => {
    const id = newDeliveryId();
    const pack = await packOf([
      { name: `receipts/${id}.receipt`, data: receiptFor(id, other) },
      { name: 'server-keys.json', data: wellKnown(other) },
    ]);
    const result = await verify(await homePinning(keys), ['--pack', pack, '--json']);
    expect(result.code).toBe(ExitCode.InvalidReceipt);
    const report = JSON.parse(result.stdout) as { valid: number; serverKeys: { note: string; pinnedAs: string | null } };
    expect(report.valid).toBe(0);
    expect(report.serverKeys.pinnedAs).toBeNull();
    expect(report.serverKeys.note).toMatch(
      new RegExp(`^MISMATCH: the pack's server key ${fingerprint(other.signPublicKey)} is not a pinned key \\(pinned: http://dcx.test `),
    );
  });

  test('bad input: not a ZIP (1), no such file (2), no receipts (1), no pin (1), a file and --pack (2), neither (2)', async () => {
    const home = await homePinning(keys);
    const notZip = join(await tempDir(), 'evidence.zip');
    await writeFile(notZip, 'just text');
    expect(await verify(home, ['--pack', notZip])).toMatchObject({
      code: ExitCode.Failure,
      error: `${notZip} is not an evidence pack: not a readable ZIP file (no ZIP central directory; not a ZIP, or cut short)`,
    });
    expect(await verify(home, ['--pack', join(notZip, '..', 'missing.zip')])).toMatchObject({ code: ExitCode.Usage });
    const empty = await packOf([{ name: 'server-keys.json', data: wellKnown(keys) }]);
    expect(await verify(home, ['--pack', empty])).toMatchObject({
      code: ExitCode.Failure,
      error: `${empty} holds no receipts (receipts/<deliveryId>.receipt)`,
    });
    const pack = await packOf(valid);
    const unpinned = new DcxHome(join(await tempDir(), 'home'));
    expect(await verify(unpinned, ['--pack', pack])).toMatchObject({
      code: ExitCode.InvalidReceipt,
      error: expect.stringMatching(/no server is pinned/),
    });
    expect(await verify(home, ['--pack', pack])).toMatchObject({
      code: ExitCode.Confirmed,
      stdout: expect.stringMatching(/has no server-keys\.json/),
    });
    expect(await verify(home, ['some.receipt', '--pack', pack])).toMatchObject({
      code: ExitCode.Usage,
      error: expect.stringMatching(/not both/),
    });
    expect(await verify(home, [])).toMatchObject({ code: ExitCode.Usage });
  });
});
