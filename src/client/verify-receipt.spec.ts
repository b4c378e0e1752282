import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fingerprint, generateServerKeySet, ServerKeySet } from '../protocol/keys.js';
import { signReceipt } from '../protocol/receipt.js';
import { run } from './cli.js';
import { CommandContext } from './context.js';
import { ExitCode } from './exit-codes.js';
import { DcxHome } from './home.js';
import { removeTempDirs, tempDir } from './testing/temp-dirs.js';

afterAll(removeTempDirs);

const keys = generateServerKeySet();
const deliveryId = '00112233-4455-6677-8899-aabbccddeeff';
const receipt = signReceipt(
  {
    keyId: keys.keyId,
    deliveryId,
    clientFingerprint: null,
    requesterAddress: '192.0.2.7',
    issuedAt: new Date('2026-11-02T09:00:00Z'),
    sentAt: new Date('2026-11-02T09:00:01Z'),
    confirmedAt: new Date('2026-11-02T09:00:02Z'),
    files: [{ name: 'policy.pdf', size: 10, sha256: 'ab'.repeat(32) }],
  },
  keys,
);

async function homePinning(...pinned: ServerKeySet[]): Promise<DcxHome> {
  const home = new DcxHome(join(await tempDir(), 'home'));
  for (const [i, k] of pinned.entries()) {
    await home.pins().pin({
      origin: `http://server${i}.test`,
      url: `http://server${i}.test`,
      signKey: k.signPublicKey.toString('base64url'),
      sealKey: k.sealPublicKey.toString('base64url'),
      keyId: k.keyId,
      fingerprint: fingerprint(k.signPublicKey),
      confirmHost: null,
      confirmPort: null,
    });
  }
  return home;
}

async function verify(
  home: DcxHome,
  bytes: Buffer | string,
  extra: string[] = [],
): Promise<{ code: number; error?: string; stdout: string }> {
  const file = join(await tempDir(), 'r.receipt');
  await writeFile(file, bytes);
  let stdout = '';
  const ctx: CommandContext = { home, out: (t) => (stdout += t), notice: () => undefined, progress: false };
  return { ...(await run(['verify-receipt', file, ...extra], ctx, {})), stdout };
}

describe('dcx verify-receipt', () => {
  test('a raw receipt signed by a pinned key is valid (exit 0), whichever pin it is', async () => {
    const home = await homePinning(generateServerKeySet(), keys);
    const result = await verify(home, receipt, ['--json']);
    expect(result.code).toBe(ExitCode.Confirmed);
    expect(JSON.parse(result.stdout)).toMatchObject({
      valid: true,
      deliveryId,
      server: 'http://server1.test',
      requesterAddress: '192.0.2.7',
    });
  });

  test('the JSON of the receipt endpoint is accepted, and must agree with the signed bytes', async () => {
    const home = await homePinning(keys);
    const json = { deliveryId, contentSha256: 'ab'.repeat(32), receipt: receipt.toString('base64') };
    expect((await verify(home, JSON.stringify(json))).code).toBe(ExitCode.Confirmed);
    const lying = await verify(home, JSON.stringify({ ...json, contentSha256: 'cd'.repeat(32) }));
    expect(lying.code).toBe(ExitCode.InvalidReceipt);
    expect(lying.error).toMatch(/contentSha256/);
  });

  test('every flipped byte makes it invalid (exit 7)', async () => {
    const home = await homePinning(keys);
    for (const at of [0, 5, 13, 40, receipt.length - 70, receipt.length - 1]) {
      const bad = Buffer.from(receipt);
      bad[at] ^= 0x01;
      const result = await verify(home, bad);
      expect(result.code).toBe(ExitCode.InvalidReceipt);
      expect(result.error).toMatch(/is not valid/);
    }
  });

  test('a receipt of an unpinned server is invalid; with nothing pinned it cannot be checked (exit 7 too)', async () => {
    expect((await verify(await homePinning(generateServerKeySet()), receipt)).code).toBe(ExitCode.InvalidReceipt);
    const none = await verify(await homePinning(), receipt);
    expect(none.code).toBe(ExitCode.InvalidReceipt);
    expect(none.error).toMatch(/dcx trust/);
    expect((await verify(await homePinning(keys), receipt, ['--server', 'http://other.test'])).code).toBe(ExitCode.InvalidReceipt);
  });
});
