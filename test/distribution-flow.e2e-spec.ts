// Issue 15 end to end: the real server on PostgreSQL, the real `dcx` as processes, three installations
// (two enrolled recipients and an outsider), a distribution to a group, its evidence pack checked offline.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZipArchive } from 'archiver';
import unzipper from 'unzipper';
import { dcx, newClientHome } from './support/cli-process.js';
import { eventually } from './support/eventually.js';
import { DatabaseMode, RunningServer, startServer } from './support/server-process.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
/** How far ahead the distribution is due: long enough for A to confirm first, short enough to wait out. */
const DUE_IN_MS = 12_000;

interface DistributionView {
  id: string;
  counts: Record<string, number>;
  recipients: { items: { recipientId: string; name: string; deliveryId: string; status: string; fingerprint: string | null }[] };
}

interface InboxReport {
  confirmed: number;
  failed: number;
  items: { deliveryId: string; distributionId: string; name: string; status: string; files: { path: string; sha256: string }[] }[];
}

async function json<T>(response: Response, ...statuses: number[]): Promise<T> {
  const text = await response.text();
  expect({ status: response.status, text: statuses.includes(response.status) ? '' : text }).toEqual({ status: statuses[0], text: '' });
  return (text ? JSON.parse(text) : null) as T;
}

/** An admin call with a JSON body (support/http sends none). */
function adminJson(server: RunningServer, method: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify(body),
  });
}

/** A pack rewritten with the same entries, `change` applied to the named one. */
async function rewritePack(pack: Buffer, entry: string, change: (bytes: Buffer) => Buffer): Promise<Buffer> {
  const directory = await unzipper.Open.buffer(pack);
  const archive = new ZipArchive({ zlib: { level: 6 } });
  const chunks: Buffer[] = [];
  archive.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<void>((resolve, reject) => {
    archive.on('end', () => resolve());
    archive.on('error', reject);
  });
  for (const file of directory.files) {
    const bytes = await file.buffer();
    archive.append(file.path === entry ? change(bytes) : bytes, { name: file.path });
  }
  await archive.finalize();
  await done;
  return Buffer.concat(chunks);
}

describe.each<DatabaseMode>(['postgres', 'pglite'])('a distribution to a group of enrolled recipients, end to end (%s)', (mode) => {
  let server: RunningServer;
  let work: string;
  const original = randomBytes(2 * 1024 * 1024 + 33);
  const homes = { a: '', b: '', outsider: '' };
  const recipients = { a: '', b: '' };
  let contentId: string;
  let distributionId: string;
  let deliveryOfA: string;
  let deliveryOfB: string;
  let evidence: string;

  const distribution = async (query = '') =>
    json<DistributionView>(await server.admin(`/api/distributions/${distributionId}${query}`), 200);
  const run = (home: string, args: string[]) => dcx(args, { DCX_HOME: home });

  beforeAll(async () => {
    server = await startServer(mode);
    work = await mkdtemp(join(tmpdir(), 'dcx-distribution-e2e-'));
    for (const key of Object.keys(homes) as (keyof typeof homes)[]) homes[key] = await newClientHome();
    await writeFile(join(work, 'handbook.pdf'), original);
    const published = await dcx(['publish', join(work, 'handbook.pdf'), '--server', server.url, '--json'], {
      DCX_HOME: await newClientHome(),
      DCX_ADMIN_TOKEN: server.adminToken,
    });
    expect([published.code, published.stderr]).toEqual([0, '']);
    contentId = (JSON.parse(published.stdout) as { id: string }).id;
  });

  afterAll(async () => {
    if (process.env.DCX_TEST_OUTPUT) console.log(server?.output().slice(-8000));
    await server?.stop();
  });

  test('two enrolment codes, `dcx enrol` twice: each installation is a named recipient; a used or unknown code is exit 8', async () => {
    for (const [key, name] of [
      ['a', 'Ada'],
      ['b', 'Blaise'],
    ] as const) {
      const made = await json<{ code: string; recipientId: string | null }>(
        await adminJson(server, 'POST', '/api/recipients/enrolment-codes', { name, expiresIn: '1d' }),
        201,
      );
      expect(made.code).toMatch(/^[0-9A-Z]{4}-[0-9A-Z]{4}$/);
      const enrolled = await run(homes[key], ['enrol', server.url, '--code', made.code, '--name', name, '--json']);
      expect([enrolled.code, enrolled.stderr]).toEqual([0, '']);
      const answer = JSON.parse(enrolled.stdout) as { recipientId: string; name: string; fingerprint: string };
      expect(answer.name).toBe(name);
      expect(answer.fingerprint).toMatch(/^[0-9a-f]{64}$/);
      recipients[key] = answer.recipientId;

      if (key === 'a') {
        const reused = await run(homes.outsider, ['enrol', server.url, '--code', made.code]);
        expect([reused.code, reused.stderr]).toEqual([
          8,
          expect.stringMatching(
            /^dcx: the enrolment code .* is refused .*409 Conflict \(enrolment code already used by another installation\)/,
          ),
        ]);
      }
    }
    const unknown = await run(homes.outsider, ['enrol', server.url, '--code', 'ZZZZ-ZZZZ']);
    expect([unknown.code, unknown.stderr]).toEqual([8, expect.stringMatching(/^dcx: the enrolment code ZZZZ-ZZZZ is unknown/)]);
    // Refused codes left the outsider nothing: no pin, no enrolment.
    expect((await readdir(homes.outsider)).sort()).toEqual(['identity.json']);
    const detail = await json<{ installations: { fingerprint: string }[] }>(await server.admin(`/api/recipients/${recipients.a}`), 200);
    expect(detail.installations).toHaveLength(1);
  });

  test('a group and a distribution to it; A runs `dcx inbox`: saved, confirmed; only B is unconfirmed', async () => {
    const group = await json<{ id: string }>(
      await adminJson(server, 'POST', '/api/groups', { name: 'readers', members: [recipients.a, recipients.b] }),
      201,
    );
    const dueAt = new Date(Date.now() + DUE_IN_MS).toISOString();
    const created = await json<DistributionView>(
      await adminJson(server, 'POST', '/api/distributions', { contentId, groups: [group.id], dueAt, note: 'read by Friday' }),
      201,
    );
    distributionId = created.id;
    expect(created.counts).toMatchObject({ total: 2, pending: 2, confirmed: 0 });

    const out = await mkdtemp(join(tmpdir(), 'dcx-inbox-a-'));
    const inbox = await run(homes.a, ['inbox', server.url, '--out', out, '--json']);
    expect([inbox.code, inbox.stderr]).toEqual([0, '']);
    const report = JSON.parse(inbox.stdout) as InboxReport;
    expect(report).toMatchObject({ confirmed: 1, failed: 0, items: [{ distributionId, status: 'confirmed' }] });
    deliveryOfA = report.items[0].deliveryId;
    expect(await readdir(out)).toEqual(['handbook.pdf']);
    expect(sha256(await readFile(join(out, 'handbook.pdf')))).toBe(sha256(original));
    expect(await readdir(join(homes.a, 'receipts'))).toEqual([`${deliveryOfA}.receipt`]);

    const unconfirmed = await eventually(
      () => distribution('?status=unconfirmed'),
      (view) => view.recipients.items.length === 1,
    );
    expect(unconfirmed.recipients.items.map((r) => [r.recipientId, r.name])).toEqual([[recipients.b, 'Blaise']]);
    deliveryOfB = unconfirmed.recipients.items[0].deliveryId;
    expect((await distribution('?status=confirmed')).recipients.items.map((r) => [r.recipientId, r.deliveryId])).toEqual([
      [recipients.a, deliveryOfA],
    ]);

    const again = await run(homes.a, ['inbox', server.url, '--out', out]);
    expect([again.code, again.stdout]).toEqual([0, 'nothing waiting\n']);
  });

  test("A's personal link: refused to the outsider (not enrolled) and to B (not the recipient), exit 8, nothing saved", async () => {
    const link = `${server.url}/api/inbox/${deliveryOfA}/bundle`;
    for (const home of [homes.outsider, homes.b]) {
      const out = await mkdtemp(join(tmpdir(), 'dcx-fetch-'));
      const fetched = await run(home, ['fetch', link, '--out', out]);
      expect([fetched.code, fetched.stderr]).toEqual([8, expect.stringMatching(new RegExp(`^dcx: downloading ${link} failed: 40[13] `))]);
      expect(await readdir(out)).toEqual([]);
    }
    expect((await readdir(homes.outsider)).sort()).toEqual(['downloads', 'identity.json']);
  });

  test('after dueAt B is overdue; resend; B runs `dcx inbox`: confirmed, nobody unconfirmed', async () => {
    const overdue = await eventually(
      () => distribution('?status=overdue'),
      (view) => view.recipients.items.length === 1,
      DUE_IN_MS + 10_000,
      500,
    );
    expect(overdue.recipients.items.map((r) => r.recipientId)).toEqual([recipients.b]);
    expect(overdue.counts.overdue).toBe(1);

    const resent = await adminJson(server, 'POST', `/api/distributions/${distributionId}/resend`, { recipientId: recipients.b });
    expect([200, 201]).toContain(resent.status);

    const out = await mkdtemp(join(tmpdir(), 'dcx-inbox-b-'));
    const inbox = await run(homes.b, ['inbox', server.url, '--out', out]);
    expect([inbox.code, inbox.stderr]).toEqual([0, '']);
    expect(inbox.stdout).toMatch(/^confirmed handbook\.pdf: .*\n1 confirmed\n$/);
    expect(sha256(await readFile(join(out, 'handbook.pdf')))).toBe(sha256(original));
    const [receipt] = await readdir(join(homes.b, 'receipts'));
    deliveryOfB = receipt.replace(/\.receipt$/, '');

    const view = await eventually(
      () => distribution('?status=unconfirmed'),
      (v) => v.recipients.items.length === 0,
    );
    expect(view.counts).toMatchObject({ total: 2, confirmed: 2, unconfirmed: 0, overdue: 0 });
  });

  test('the evidence pack verifies offline against the pinned key (exit 0); one flipped receipt byte is exit 7 naming it', async () => {
    const response = await server.admin(`/api/distributions/${distributionId}/evidence.zip`);
    expect(response.status).toBe(200);
    const pack = Buffer.from(await response.arrayBuffer());
    evidence = join(work, 'evidence.zip');
    await writeFile(evidence, pack);
    const entries = (await unzipper.Open.buffer(pack)).files.map((f) => f.path).sort();
    expect(entries).toEqual(
      expect.arrayContaining([`receipts/${deliveryOfA}.receipt`, `receipts/${deliveryOfB}.receipt`, 'server-keys.json']),
    );
    // The pack's receipt is the one A keeps.
    const kept = await readFile(join(homes.a, 'receipts', `${deliveryOfA}.receipt`));
    const inPack = await (await unzipper.Open.buffer(pack)).files.find((f) => f.path === `receipts/${deliveryOfA}.receipt`)!.buffer();
    expect(inPack.equals(kept)).toBe(true);

    const verified = await run(homes.a, ['verify-receipt', '--pack', evidence]);
    expect([verified.code, verified.stderr]).toEqual([0, '']);
    expect(verified.stdout).toBe(`the pack's server key is the one pinned for ${server.url}\n2 receipts: 2 valid, 0 invalid\n`);

    const tamperedEntry = `receipts/${deliveryOfB}.receipt`;
    const tampered = join(work, 'tampered.zip');
    await writeFile(
      tampered,
      await rewritePack(pack, tamperedEntry, (bytes) => {
        const copy = Buffer.from(bytes);
        copy[copy.length - 1] ^= 0x80;
        return copy;
      }),
    );
    const refused = await run(homes.a, ['verify-receipt', '--pack', tampered, '--json']);
    expect(refused.code).toBe(7);
    expect(refused.stderr).toBe(`dcx: 1 of 2 receipts in ${tampered} are not valid; first: ${tamperedEntry}\n`);
    const report = JSON.parse(refused.stdout) as { valid: number; invalid: { entry: string; reason: string }[] };
    expect(report.valid).toBe(1);
    expect(report.invalid).toEqual([{ entry: tamperedEntry, reason: expect.stringMatching(/verifies against no pinned server key/) }]);
  });

  test("a revoked installation's `dcx inbox` is refused (exit 8) with the server's reason", async () => {
    // The fingerprint `dcx enrol` recorded is the one the server knows the installation by.
    const { enrolments } = JSON.parse(await readFile(join(homes.a, 'enrolments.json'), 'utf8')) as {
      enrolments: { fingerprint: string }[];
    };
    const { fingerprint } = enrolments[0];
    const detail = await json<{ installations: { fingerprint: string }[] }>(await server.admin(`/api/recipients/${recipients.a}`), 200);
    expect(detail.installations.map((i) => i.fingerprint)).toEqual([fingerprint]);
    await json(await adminJson(server, 'POST', `/api/recipients/installations/${fingerprint}/revoke`, {}), 200, 201);
    const inbox = await run(homes.a, ['inbox', server.url, '--out', work]);
    expect([inbox.code, inbox.stdout]).toEqual([8, '']);
    expect(inbox.stderr).toMatch(/^dcx: reading the inbox .* failed: 403 Forbidden \(this installation was revoked on \d{4}-\d\d-\d\dT/);
  });
});
