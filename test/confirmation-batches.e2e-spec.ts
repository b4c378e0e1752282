import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { jest } from '@jest/globals';
import { Test } from '@nestjs/testing';
import type { Subscription } from 'rxjs';
import { DataSource, QueryRunner } from 'typeorm';
import { Initial1795390000000 } from '../migrations/1795390000000-Initial.js';
import { DeliveryPluginData1795400000000 } from '../migrations/1795400000000-DeliveryPluginData.js';
import { ExpiryReissueWebhooks1795500000000 } from '../migrations/1795500000000-ExpiryReissueWebhooks.js';
import { DropRedundantDeliveryIndexes1795600000000 } from '../migrations/1795600000000-DropRedundantDeliveryIndexes.js';
import { Recipients1795700000000 } from '../migrations/1795700000000-Recipients.js';
import { Distributions1795710000000 } from '../migrations/1795710000000-Distributions.js';
import { Answer, AnswerStatus } from '../src/protocol/answer.js';
import { encodeConfirmation } from '../src/protocol/confirmation.js';
import { Frame, FrameParser } from '../src/protocol/frame.js';
import { ClientIdentity, generateClientIdentity } from '../src/protocol/keys.js';
import { openPluginData } from '../src/protocol/plugin-data.js';
import { verifyReceipt } from '../src/protocol/receipt.js';
import { AppModule } from '../src/server/app.module.js';
import { loadAppConfig } from '../src/server/config/app-config.js';
import { ConfirmationService } from '../src/server/confirmation/confirmation.service.js';
import { Content } from '../src/server/contents/content.entity.js';
import { buildDataSourceOptions } from '../src/server/database/database-options.js';
import { DeliveriesService } from '../src/server/deliveries/deliveries.service.js';
import { DeliveryEventsBus, RecordedEvent } from '../src/server/deliveries/delivery-events.bus.js';
import { UnitOfWork } from '../src/server/deliveries/unit-of-work.js';
import { ServerKeysService } from '../src/server/keys/server-keys.service.js';
import { createTestDatabase } from './support/database.js';

const ADDRESS = '127.0.0.1';

/**
 * ConfirmationService in the real AppModule on PostgreSQL, called directly, so that a test can change a
 * delivery between a batch's read and its write (as a "sent" mark, the expiry sweep or another replica
 * may) and can put several confirmations into one batch.
 */
describe('confirmation batches (PostgreSQL, in process)', () => {
  const saved = { ...process.env };
  let dir: string;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let app: INestApplication;
  let dataSource: DataSource;
  let service: ConfirmationService;
  let deliveries: DeliveriesService;
  let unitOfWork: UnitOfWork;
  let content: Content;
  const identity: ClientIdentity = generateClientIdentity();
  const published: RecordedEvent[] = [];
  let subscription: Subscription;
  /** Runs once, right after the next batch read its deliveries (before it decides and writes). */
  let afterRead: (() => Promise<void>) | null = null;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcx-batches-'));
    database = await createTestDatabase();
    Object.assign(process.env, {
      DATA_DIR: dir,
      DATABASE_URL: database.url,
      ADMIN_TOKEN: 'an-admin-token-for-the-batch-spec',
      LOG_LEVEL: 'silent',
      CONFIRM_PORT: '0',
    });
    // Run from source, the app's migrations glob (dist/migrations/*.js) has nothing to load: migrate first.
    const migrator = new DataSource({
      ...buildDataSourceOptions(loadAppConfig(process.env)),
      migrations: [
        Initial1795390000000,
        DeliveryPluginData1795400000000,
        ExpiryReissueWebhooks1795500000000,
        DropRedundantDeliveryIndexes1795600000000,
        Recipients1795700000000,
        Distributions1795710000000,
      ],
      logging: false,
    });
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();

    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    dataSource = app.get(DataSource);
    service = app.get(ConfirmationService);
    deliveries = app.get(DeliveriesService);
    unitOfWork = app.get(UnitOfWork);
    subscription = app.get(DeliveryEventsBus).events$.subscribe((event) => published.push(event));

    const createQueryRunner = dataSource.createQueryRunner.bind(dataSource);
    jest.spyOn(dataSource, 'createQueryRunner').mockImplementation((...args) => {
      const runner: QueryRunner = createQueryRunner(...args);
      const query = runner.query.bind(runner) as (sql: string, ...rest: unknown[]) => Promise<unknown>;
      runner.query = (async (sql: string, ...rest: unknown[]) => {
        const result = await query(sql, ...rest);
        const hook = afterRead;
        if (hook && /LEFT JOIN contents/.test(sql) && !/FOR UPDATE/.test(sql)) {
          afterRead = null;
          await hook();
        }
        return result;
      }) as QueryRunner['query'];
      return runner;
    });

    const bytes = randomBytes(1000);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const [{ id }] = await dataSource.query<{ id: string }[]>(
      `INSERT INTO contents (name, media_type, size, sha256, crc32, storage_key, access)
       VALUES ('a.bin', 'application/octet-stream', $1, $2, 0, $3, 'public') RETURNING id`,
      [bytes.length, sha256, `${sha256.slice(0, 2)}/${sha256}`],
    );
    content = (await dataSource.getRepository(Content).findOneByOrFail({ id }))!;
  }, 60_000);

  afterAll(async () => {
    subscription?.unsubscribe();
    await app?.close();
    await database?.drop();
    process.env = saved;
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    published.length = 0;
    afterRead = null;
  });

  /** A new delivery sealed to `identity`, with a good confirmation frame (or one with another digest). */
  async function issue(): Promise<{ id: string; pluginData: Buffer; frame: (digest?: string) => Frame }> {
    const { id, pluginData } = await deliveries.issue(content, { address: ADDRESS, clientKey: identity.publicKey });
    const { data } = openPluginData(pluginData, { identity });
    const frame = (digest = content.sha256) => {
      let parsed: Frame | undefined;
      new FrameParser().parse(
        encodeConfirmation({ deliveryId: id, clientFingerprint: identity.fingerprint, digests: [digest] }, data.confirmSecret),
        (f) => (parsed = f),
      );
      return parsed!;
    };
    return { id, pluginData, frame };
  }

  async function row(id: string) {
    const [found] = await dataSource.query<
      {
        status: string;
        sent_at: Date | null;
        receipt: Buffer | null;
      }[]
    >(`SELECT status, sent_at, receipt FROM deliveries WHERE id = $1`, [id]);
    return found;
  }

  async function eventTypes(id: string): Promise<string[]> {
    const rows = await dataSource.query<
      {
        type: string;
        reason: string | null;
      }[]
    >(`SELECT type, reason FROM delivery_events WHERE delivery_id = $1 ORDER BY id`, [id]);
    return rows.map(({ type, reason }) => (reason ? `${type}:${reason}` : type));
  }

  /** Confirmations handed in together: one batch. */
  const together = (frames: Frame[]): Promise<Answer[]> => Promise.all(frames.map((frame) => service.handle(frame, ADDRESS)));

  /** What the bus published, less the "issued" events of the test's own deliveries. */
  const publishedAfterIssue = () => published.filter(({ type }) => type !== 'issued');

  const signPublicKey = () => app.get(ServerKeysService).current.signPublicKey;

  test('a batch confirms, refuses and repeats in one go; the events published are the ones committed', async () => {
    const a = await issue();
    const b = await issue();
    const answers = await together([a.frame(), b.frame('00'.repeat(32)), a.frame()]);
    expect(answers.map(({ status }) => status)).toEqual([
      AnswerStatus.Accepted,
      AnswerStatus.DigestMismatch,
      AnswerStatus.AlreadyConfirmed,
    ]);
    expect(answers[2].receipt).toEqual(answers[0].receipt);
    expect(verifyReceipt(answers[0].receipt!, signPublicKey()).deliveryId).toBe(a.id);
    expect(await eventTypes(a.id)).toEqual(['issued', 'confirmed']);
    expect(await eventTypes(b.id)).toEqual(['issued', 'refused:digest_mismatch']);
    expect((await row(a.id)).receipt).toEqual(answers[0].receipt);
    expect(publishedAfterIssue().map(({ deliveryId, type }) => [deliveryId, type])).toEqual([
      [a.id, 'confirmed'],
      [b.id, 'refused'],
    ]);
  });

  test(
    'a "sent" mark between the read and the write: the confirmation is decided again on the locked row, ' +
      'with the sent time in its receipt',
    async () => {
      const { id, frame } = await issue();
      afterRead = () => deliveries.markSent(id, 1234);
      const [answer] = await together([frame()]);
      expect(answer.status).toBe(AnswerStatus.Accepted);
      const stored = await row(id);
      expect(stored.status).toBe('confirmed');
      expect(stored.receipt).toEqual(answer.receipt);
      expect(verifyReceipt(answer.receipt!, signPublicKey()).sentAt?.getTime()).toBe(Math.floor(stored.sent_at!.getTime()));
      expect(await eventTypes(id)).toEqual(['issued', 'sent', 'confirmed']);
      expect(
        publishedAfterIssue()
          .filter(({ deliveryId }) => deliveryId === id)
          .map(({ type }) => type),
      ).toEqual(['sent', 'confirmed']);
    },
  );

  test(
    'confirmed elsewhere between the read and the write: "already confirmed" with that receipt; the rest ' + 'of the batch stands',
    async () => {
      const raced = await issue();
      const other = await issue();
      const refused = await issue();
      const theirs = randomBytes(200);
      afterRead = async () => {
        await dataSource.query(`UPDATE deliveries SET status = 'confirmed', confirmed_at = now(), receipt = $2 WHERE id = $1`, [
          raced.id,
          theirs,
        ]);
      };
      const answers = await together([raced.frame(), other.frame(), refused.frame('11'.repeat(32)), raced.frame()]);
      expect(answers.map(({ status }) => status)).toEqual([
        AnswerStatus.AlreadyConfirmed,
        AnswerStatus.Accepted,
        AnswerStatus.DigestMismatch,
        AnswerStatus.AlreadyConfirmed,
      ]);
      expect(answers[0].receipt).toEqual(theirs);
      expect(answers[3].receipt).toEqual(theirs);
      expect(await eventTypes(raced.id)).toEqual(['issued']);
      expect(await eventTypes(other.id)).toEqual(['issued', 'confirmed']);
      expect(await eventTypes(refused.id)).toEqual(['issued', 'refused:digest_mismatch']);
      expect(publishedAfterIssue().map(({ deliveryId, type }) => [deliveryId, type])).toEqual([
        [other.id, 'confirmed'],
        [refused.id, 'refused'],
      ]);
    },
  );

  test('expired by the sweep between the read and the write: refused as expired, recorded once', async () => {
    const { id, frame } = await issue();
    afterRead = async () => {
      await dataSource.query(`UPDATE deliveries SET status = 'expired', expired_at = now() WHERE id = $1`, [id]);
    };
    const [answer] = await together([frame()]);
    expect(answer.status).toBe(AnswerStatus.Expired);
    expect((await row(id)).status).toBe('expired');
    expect(await eventTypes(id)).toEqual(['issued', 'refused:expired']);
  });

  test('when deciding again fails, only those confirmations are answered "try later"; the rest of the batch is committed', async () => {
    const raced = await issue();
    const other = await issue();
    afterRead = async () => {
      await deliveries.markSent(raced.id, 1);
      jest.spyOn(unitOfWork, 'transaction').mockRejectedValueOnce(new Error('connection terminated'));
    };
    const answers = await together([raced.frame(), other.frame()]);
    expect(answers.map(({ status }) => status)).toEqual([AnswerStatus.TryLater, AnswerStatus.Accepted]);
    expect((await row(raced.id)).status).toBe('sent');
    expect(await eventTypes(raced.id)).toEqual(['issued', 'sent']);
    expect(await eventTypes(other.id)).toEqual(['issued', 'confirmed']);
    // The client tries again: now it is confirmed.
    const [again] = await together([raced.frame()]);
    expect(again.status).toBe(AnswerStatus.Accepted);
  });

  test(
    'the database ends the connections between a batch\'s read and its write: "try later", nothing ' +
      'written; the next attempt gets a fresh connection',
    async () => {
      const { id, frame } = await issue();
      afterRead = async () => {
        await dataSource.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
        );
      };
      const [answer] = await together([frame()]);
      // Alone in its batch, so not retried by GroupCommit: the client is asked to try later, nothing was written.
      expect(answer.status).toBe(AnswerStatus.TryLater);
      // The pool drops its other terminated (idle) connections once their sockets report the end.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect((await row(id)).status).toBe('issued');
      const [again] = await together([frame()]);
      expect(again.status).toBe(AnswerStatus.Accepted);
      expect(await eventTypes(id)).toEqual(['issued', 'confirmed']);
    },
  );

  test(
    'the acceptances of one batch share one signature: each receipt is a batch receipt that verifies on ' + 'its own to its own delivery',
    async () => {
      const issued = await Promise.all(Array.from({ length: 5 }, () => issue()));
      const answers = await together(issued.map(({ frame }) => frame()));
      expect(answers.map(({ status }) => status)).toEqual(issued.map(() => AnswerStatus.Accepted));
      const receipts = answers.map(({ receipt }) => receipt!);
      expect(receipts.map((receipt) => receipt[4])).toEqual([2, 2, 2, 2, 2]);
      expect(new Set(receipts.map((receipt) => receipt.subarray(-64).toString('hex'))).size).toBe(1);
      for (const [i, { id }] of issued.entries()) {
        expect(verifyReceipt(receipts[i], signPublicKey()).deliveryId).toBe(id);
        expect((await row(id)).receipt).toEqual(receipts[i]);
      }
    },
  );

  test(
    'deliveries issued together share one plug-in data signature: each record is a batch record, stored ' +
      'as handed out, and confirms its own delivery',
    async () => {
      const issued = await Promise.all(Array.from({ length: 6 }, () => issue()));
      const records = issued.map(({ pluginData }) => pluginData);
      expect(records.map((record) => record[4])).toEqual([2, 2, 2, 2, 2, 2]);
      expect(new Set(records.map((record) => record.subarray(-64).toString('hex'))).size).toBe(1);
      for (const { id, pluginData } of issued) {
        const { envelope, data } = openPluginData(pluginData, { identity });
        expect(envelope.signPublicKey).toEqual(signPublicKey());
        expect(data.deliveryId).toBe(id);
        const [stored] = await dataSource.query<
          {
            plugin_data: Buffer;
            key_id: string;
          }[]
        >(`SELECT plugin_data, key_id FROM deliveries WHERE id = $1`, [id]);
        expect(stored.plugin_data).toEqual(pluginData);
        expect(stored.key_id).toBe(envelope.keyId);
      }
      expect((await together(issued.map(({ frame }) => frame()))).map(({ status }) => status)).toEqual(
        issued.map(() => AnswerStatus.Accepted),
      );
      // Issued alone: signed on its own (version 1).
      expect((await issue()).pluginData[4]).toBe(1);
    },
  );

  test(
    'many concurrent batches confirming the same deliveries: one acceptance and one event each, every ' +
      'other answer "already confirmed" with its receipt',
    async () => {
      const issued = await Promise.all(Array.from({ length: 20 }, () => issue()));
      const frames = Array.from({ length: 10 }, () => issued.map(({ frame }) => frame())).flat();
      // Spread over several turns of the event loop, so that batches overlap in the pipeline.
      const answers = await Promise.all(
        frames.map((frame, i) => new Promise<Answer>((resolve) => setTimeout(() => resolve(service.handle(frame, ADDRESS)), i % 7))),
      );
      for (const { id } of issued) {
        const mine = answers.filter(({ deliveryId }) => deliveryId === id);
        expect(mine.filter(({ status }) => status === AnswerStatus.Accepted)).toHaveLength(1);
        expect(mine.filter(({ status }) => status === AnswerStatus.AlreadyConfirmed)).toHaveLength(9);
        const stored = await row(id);
        expect(mine.every(({ receipt }) => receipt?.equals(stored.receipt!))).toBe(true);
        expect(await eventTypes(id)).toEqual(['issued', 'confirmed']);
      }
    },
  );
});
