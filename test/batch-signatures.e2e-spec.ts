import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
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
  return (await unzipper.Open.buffer(bundle)).files[0].buffer();
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
    const published = await dcx(['publish', join(work, 'report.pdf'), '--server', server.url, '--json'], {
      DCX_HOME: await newClientHome(),
      DCX_ADMIN_TOKEN: server.adminToken,
    });
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
      for (let round = 0; round < 5 && !batched; round++)
        batched = (await requestTogether(bundleUrl, 8)).find(({ record }) => record[4] === 2);
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
    test('bundles issued together and confirmations decided together are each signed on their own (version 1)', async () => {
      const database = new pg.Client({ connectionString: server.databaseUrl });
      await database.connect();
      try {
        /** The most of the `type` events of `ids` recorded by one transaction (one batch): rows a statement inserted share its xmin. */
        const largestBatch = async (ids: string[], type: string) =>
          (
            await database.query<{ n: number }>(
              'SELECT coalesce(max(n), 0)::int AS n FROM (SELECT count(*) AS n FROM delivery_events WHERE delivery_id = ANY($1) AND type = $2 GROUP BY xmin::text) AS batches',
              [ids, type],
            )
          ).rows[0].n;
        const digest = createHash('sha256').update(original).digest('hex');

        // Which requests and confirmations share a batch depends on when they arrive: a few rounds at most,
        // until both the issuing and the confirming were seen to put several in one batch.
        const seen = { issued: 0, confirmed: 0 };
        for (let round = 0; round < 5 && (seen.issued < 2 || seen.confirmed < 2); round++) {
          const issued = await requestTogether(bundleUrl, 12);
          const opened = issued.map(({ identity, record }) => ({ identity, data: openPluginData(record, { identity }).data }));
          const ids = opened.map(({ data }) => data.deliveryId);
          seen.issued = Math.max(seen.issued, await largestBatch(ids, 'issued'));
          expect(issued.map(({ record }) => record[4])).toEqual(issued.map(() => 1));

          const answers = await Promise.all(
            opened.map(({ identity, data }) =>
              exchange(
                server.confirmPort,
                encodeConfirmation(
                  { deliveryId: data.deliveryId, clientFingerprint: identity.fingerprint, digests: [digest] },
                  data.confirmSecret,
                ),
              ),
            ),
          );
          expect(answers.map(([answer]) => answer.status)).toEqual(ids.map(() => AnswerStatus.Accepted));
          expect(answers.map(([answer]) => answer.receipt![4])).toEqual(ids.map(() => 1));
          seen.confirmed = Math.max(seen.confirmed, await largestBatch(ids, 'confirmed'));
        }
        expect(seen.issued).toBeGreaterThanOrEqual(2);
        expect(seen.confirmed).toBeGreaterThanOrEqual(2);
      } finally {
        await database.end();
      }
    });
  }
});
