import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import unzipper from 'unzipper';
import { AnswerStatus } from '../src/protocol/answer.js';
import { encodeConfirmation } from '../src/protocol/confirmation.js';
import { CLIENT_KEY_HEADER } from '../src/protocol/constants.js';
import { ClientIdentity, generateClientIdentity, serializeClientIdentity } from '../src/protocol/keys.js';
import { openPluginData } from '../src/protocol/plugin-data.js';
import { dcx, newClientHome } from './support/cli-process.js';
import { http } from './support/http.js';
import { RunningServer, startServer } from './support/server-process.js';
import { exchange } from './support/tcp.js';

/** The plug-in data record of a bundle (its first entry). */
async function pluginRecordOf(bundle: Buffer): Promise<Buffer> {
  return (await unzipper.Open.buffer(bundle)).files[0]!.buffer();
}

/** Bundles of one content requested at once, each by its own client: the server issues them together. */
async function requestTogether(bundleUrl: string, count: number): Promise<{ identity: ClientIdentity; bundle: Buffer; record: Buffer }[]> {
  const identities = Array.from({ length: count }, () => generateClientIdentity());
  return Promise.all(
    identities.map(async (identity) => {
      const response = await http(bundleUrl, { headers: { [CLIENT_KEY_HEADER]: identity.publicKey.toString('base64url') } });
      expect(response.status).toBe(200);
      const bundle = Buffer.from(await response.arrayBuffer());
      return { identity, bundle, record: await pluginRecordOf(bundle) };
    }),
  );
}

describe.each([true, false])('batch signatures over HTTP, TCP and the real dcx (BATCH_SIGNATURES=%s)', (batchSignatures) => {
  let server: RunningServer;
  let work: string;
  let original: Buffer;
  let bundleUrl: string;

  beforeAll(async () => {
    server = await startServer('postgres', { BATCH_SIGNATURES: String(batchSignatures) });
    work = await mkdtemp(join(tmpdir(), 'dcx-batch-'));
    original = randomBytes(64 * 1024 + 3);
    await writeFile(join(work, 'report.pdf'), original);
    const published = await dcx(['publish', join(work, 'report.pdf'), '--server', server.url, '--json'], { DCX_HOME: await newClientHome(), DCX_ADMIN_TOKEN: server.adminToken });
    expect(published.code).toBe(0);
    bundleUrl = (JSON.parse(published.stdout) as { bundleUrl: string }).bundleUrl;
  });

  afterAll(async () => {
    await server?.stop();
  });

  if (batchSignatures) {
    test('a bundle issued with others is batch-signed (version 2): the real dcx opens it, saves the content and confirms it', async () => {
      // Which requests share a batch depends on when they arrive: a few rounds at most.
      let batched: { identity: ClientIdentity; bundle: Buffer } | undefined;
      for (let round = 0; round < 5 && !batched; round++) batched = (await requestTogether(bundleUrl, 8)).find(({ record }) => record[4] === 2);
      expect(batched).toBeDefined();

      const home = await newClientHome();
      await writeFile(join(home, 'identity.json'), serializeClientIdentity(batched!.identity));
      const bundlePath = join(work, 'batched.dcx');
      await writeFile(bundlePath, batched!.bundle);
      const out = await mkdtemp(join(tmpdir(), 'dcx-out-'));
      const opened = await dcx(['open', bundlePath, '--out', out, '--trust', '--json'], { DCX_HOME: home });
      expect(opened.code).toBe(0);
      const report = JSON.parse(opened.stdout) as { status: string; deliveryId: string };
      expect(report.status).toBe('accepted');
      expect((await readFile(join(out, 'report.pdf'))).equals(original)).toBe(true);
      const delivery = (await (await server.admin(`/api/deliveries/${report.deliveryId}`)).json()) as { status: string };
      expect(delivery.status).toBe('confirmed');
    });
  } else {
    test('every bundle and every receipt is signed on its own (version 1), however many arrive together', async () => {
      const issued = await requestTogether(bundleUrl, 12);
      expect(issued.map(({ record }) => record[4])).toEqual(issued.map(() => 1));
      const digest = createHash('sha256').update(original).digest('hex');
      const answers = await Promise.all(
        issued.map(async ({ identity, record }) => {
          const { data } = openPluginData(record, { identity });
          const frame = encodeConfirmation({ deliveryId: data.deliveryId, clientFingerprint: identity.fingerprint, digests: [digest] }, data.confirmSecret);
          return (await exchange(server.confirmPort, frame))[0]!;
        }),
      );
      expect(answers.map(({ status }) => status)).toEqual(issued.map(() => AnswerStatus.Accepted));
      expect(answers.map(({ receipt }) => receipt![4])).toEqual(issued.map(() => 1));
    });
  }
});
