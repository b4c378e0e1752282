import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import unzipper from 'unzipper';
import { AnswerStatus } from '../src/protocol/answer.js';
import { encodeConfirmation } from '../src/protocol/confirmation.js';
import { PLUGIN_ENTRY_NAME } from '../src/protocol/constants.js';
import { generateClientIdentity, type ClientIdentity } from '../src/protocol/keys.js';
import { openPluginData } from '../src/protocol/plugin-data.js';
import { CHROMIUM, logIn, pageErrors } from './support/admin-browser.js';
import { publish } from './support/cli-process.js';
import { pinOf, signedFetch, type Pin } from './support/recipient-requests.js';
import { ROOT, RunningServer, startServer } from './support/server-process.js';
import { exchange } from './support/tcp.js';

/**
 * Issue 15, the manager's pages against the real built server on PostgreSQL and the system Chromium:
 * recipients enrolled through the real routes, a distribution to two of them, one confirms over the TCP
 * port, and the open page follows without a reload.
 */

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const ARTIFACTS = join(ROOT, 'test/artifacts');

interface InboxItem {
  deliveryId: string;
  distributionId: string;
  bundleUrl: string;
}

/** A JSON request with the admin token. */
async function admin<T>(server: RunningServer, method: string, path: string, json?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${server.adminToken}`,
      connection: 'close',
      ...(json === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: json === undefined ? undefined : JSON.stringify(json),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
}

/** Enrols a fresh installation with `code` by a signed request, as `dcx enrol` does. */
async function enrol(server: RunningServer, pin: Pin, code: string): Promise<{ identity: ClientIdentity; recipientId: string }> {
  const identity = generateClientIdentity();
  const response = await signedFetch(server.url, pin, identity, 'POST', '/api/recipients/enrol', { code });
  expect(response.status).toBe(201);
  const body = (await response.json()) as { recipientId: string; fingerprint: string };
  expect(body.fingerprint).toBe(identity.fingerprint);
  return { identity, recipientId: body.recipientId };
}

/** The installation's inbox item of `distributionId`, and its bundle pulled through the personal link. */
async function pull(server: RunningServer, pin: Pin, identity: ClientIdentity, distributionId: string) {
  const inbox = await signedFetch(server.url, pin, identity, 'GET', '/api/inbox');
  expect(inbox.status).toBe(200);
  const item = ((await inbox.json()) as { items: InboxItem[] }).items.find((i) => i.distributionId === distributionId)!;
  expect(item).toBeDefined();
  const path = new URL(item.bundleUrl).pathname;
  const bundle = await signedFetch(server.url, pin, identity, 'GET', path);
  expect(bundle.status).toBe(200);
  const zip = await unzipper.Open.buffer(Buffer.from(await bundle.arrayBuffer()));
  expect(zip.files[0].path).toBe(PLUGIN_ENTRY_NAME);
  const { data } = openPluginData(await zip.files[0].buffer(), { identity });
  expect(data.deliveryId).toBe(item.deliveryId);
  return data;
}

describe('distributions, recipients and groups pages (postgres, Chromium)', () => {
  let server: RunningServer;
  let browser: Browser;
  let pin: Pin;
  let original: Buffer;
  let content: { id: string; name: string };

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServer('postgres'), chromium.launch(CHROMIUM)]);
    pin = await pinOf(server.url);
    const work = await mkdtemp(join(tmpdir(), 'dcx-dist-page-'));
    original = randomBytes(64 * 1024 + 5);
    await writeFile(join(work, 'handbook.pdf'), original);
    content = await publish(server, join(work, 'handbook.pdf'), 'token');
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('a code made on the recipients page enrols Ada; 0 of 2 → Ada confirms over TCP → 1 of 2 live, Grace not received; re-send, CSV, revoke', async () => {
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    const violations = pageErrors(context);
    try {
      const page = await logIn(context, server, server.adminToken);
      await page.locator('#dashboard').waitFor();

      // The recipients page makes a code, shown once with the command to run.
      await page.getByRole('link', { name: 'Recipients' }).click();
      await page.getByLabel('Name', { exact: true }).fill('Ada Lovelace');
      await page.getByLabel('Email', { exact: true }).fill('ada@example.com');
      await page.getByLabel('Labels (comma-separated)').fill('engineering, london');
      await page.getByRole('button', { name: 'Make a code' }).click();
      await page.locator('#code-once').waitFor();
      const code = (await page.locator('#code-value').textContent())!;
      expect(code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
      expect(await page.locator('#code-command').textContent()).toBe(`dcx enrol ${server.url} --code ${code}`);
      const ada = await enrol(server, pin, code);
      const graceCode = await admin<{ code: string }>(server, 'POST', '/api/recipients/enrolment-codes', {
        name: 'Grace Hopper',
        email: 'grace@example.com',
        expiresIn: '1h',
      });
      expect(graceCode.status).toBe(201);
      const grace = await enrol(server, pin, graceCode.body.code);

      // The due date passes before Ada confirms: the refreshed list shows Grace as overdue.
      const dueAt = new Date(Date.now() + 3000);
      const created = await admin<{ id: string }>(server, 'POST', '/api/distributions', {
        contentId: content.id,
        recipients: [ada.recipientId, grace.recipientId],
        dueAt: dueAt.toISOString(),
        note: 'Read before Monday',
      });
      expect(created.status).toBe(201);
      const distributionId = created.body.id;

      // The list: 0 of 2; open it.
      await page.getByRole('link', { name: 'Distributions' }).click();
      const listRow = page.locator(`#distributions tbody tr[data-id="${distributionId}"]`);
      await listRow.locator('.progress-text', { hasText: '0 of 2' }).waitFor();
      expect(await listRow.locator('th').textContent()).toBe('handbook.pdf');
      await listRow.getByRole('link', { name: /^Open/ }).click();
      await page.locator('#progress-text', { hasText: '0 of 2 confirmed receipt' }).waitFor();
      await page.locator('#live-status[data-state="live"]').waitFor();
      const rows = page.locator('#recipients tbody tr');
      await rows.first().waitFor();
      // Rows come in the API's keyset order (recipient id, random): compare them as sets.
      expect((await rows.locator('th').allTextContents()).sort()).toEqual(['Ada Lovelace', 'Grace Hopper']);
      expect((await rows.locator('td.email').allTextContents()).sort()).toEqual(['ada@example.com', 'grace@example.com']);
      expect(await page.locator('#counts td.pending').textContent()).toBe('2');
      await page.evaluate('window.marker = 42'); // gone if the page reloads

      // Ada pulls her bundle from the inbox and confirms over the real TCP port, after the due date.
      const data = await pull(server, pin, ada.identity, distributionId);
      await new Promise((r) => setTimeout(r, Math.max(0, dueAt.getTime() - Date.now() + 100)));
      const [answer] = await exchange(
        server.confirmPort,
        encodeConfirmation(
          { deliveryId: data.deliveryId, clientFingerprint: ada.identity.fingerprint, digests: [sha256(original)] },
          data.confirmSecret,
        ),
      );
      expect(answer.status).toBe(AnswerStatus.Accepted);

      // Without a reload: 1 of 2, and the list of not received is Grace alone, overdue.
      await page.locator('#progress-text', { hasText: '1 of 2 confirmed receipt' }).waitFor({ timeout: 10_000 });
      await page.locator('#announcer', { hasText: 'Ada Lovelace confirmed receipt.' }).waitFor();
      await page.locator('#recipients tbody tr th', { hasText: 'Ada Lovelace' }).waitFor({ state: 'detached' });
      expect(await rows.locator('th').allTextContents()).toEqual(['Grace Hopper']);
      const graceRow = page.locator(`#recipients tbody tr[data-recipient-id="${grace.recipientId}"]`);
      expect(await graceRow.getAttribute('class')).toBe('overdue');
      expect(await graceRow.locator('.overdue-badge').textContent()).toBe('overdue');
      expect(await page.locator('#counts td.confirmed').textContent()).toBe('1');
      expect(await page.evaluate('window.marker')).toBe(42);

      // Grace pulls but does not confirm: her row turns sent live, with a Re-send button.
      const graceData = await pull(server, pin, grace.identity, distributionId);
      const resend = graceRow.getByRole('button', { name: 'Re-send to Grace Hopper' });
      await resend.waitFor({ timeout: 10_000 });
      expect(await graceRow.locator('td.status .badge').first().textContent()).toMatch(/^(issued|sent)$/);
      await resend.click();
      await page.locator('#detail-status', { hasText: 'Re-sent to Grace Hopper.' }).waitFor();
      await graceRow.locator('td.status .badge', { hasText: 'pending' }).waitFor();
      expect(await graceRow.getAttribute('data-delivery-id')).not.toBe(graceData.deliveryId);
      const view = await admin<{ recipients: { items: { name: string; status: string }[] } }>(
        server,
        'GET',
        `/api/distributions/${distributionId}?status=unconfirmed`,
      );
      expect(view.body.recipients.items.map((r) => [r.name, r.status])).toEqual([['Grace Hopper', 'pending']]);

      // The confirmed filter shows Ada; the CSV link downloads the list shown.
      await page.getByLabel('Show').selectOption('confirmed');
      await page.locator('#recipients tbody tr th', { hasText: 'Ada Lovelace' }).waitFor();
      await page.getByLabel('Show').selectOption('unconfirmed');
      await graceRow.waitFor();
      const [csv] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('link', { name: 'Download CSV of this list' }).click(),
      ]);
      const text = await readFile(await csv.path(), 'utf8');
      expect(text).toContain('grace@example.com');
      expect(text).not.toContain('ada@example.com');

      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'distributions.png'), fullPage: true });
      expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(1280);

      // The recipients page: Grace's installation, revoked after a confirm step.
      await page.getByRole('link', { name: 'Recipients' }).click();
      await page.getByRole('button', { name: 'Installations of Grace Hopper' }).click();
      const installation = page.locator(`tr[data-fingerprint="${grace.identity.fingerprint}"]`);
      expect(await installation.locator('th code').textContent()).toBe(`${grace.identity.fingerprint.slice(0, 12)}…`);
      await installation.getByRole('button', { name: /^Revoke installation/ }).click();
      await installation.getByRole('button', { name: 'Yes, revoke' }).click();
      await installation.locator('td.revoked').waitFor();
      const revoked = await signedFetch(server.url, pin, grace.identity, 'GET', '/api/inbox');
      expect(revoked.status).toBe(403);
      await page.screenshot({ path: join(ARTIFACTS, 'recipients.png'), fullPage: true });
      expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(1280);
      expect(violations).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test('the groups page creates a group with a member and a label, and lists it with its members resolved', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const violations = pageErrors(context);
    try {
      const code = await admin<{ code: string }>(server, 'POST', '/api/recipients/enrolment-codes', {
        name: 'Katherine Johnson',
        labels: ['nasa'],
        expiresIn: '1h',
      });
      await enrol(server, pin, code.body.code);
      const mary = await admin<{ code: string }>(server, 'POST', '/api/recipients/enrolment-codes', {
        name: 'Mary Jackson',
        email: 'mary@example.com',
        expiresIn: '1h',
      });
      await enrol(server, pin, mary.body.code);
      const page = await logIn(context, server, server.adminToken);
      await page.locator('#dashboard').waitFor();
      await page.goto(`${server.url}/groups`);
      await page.getByLabel('Name', { exact: true }).fill('Launch team');
      await page.getByLabel('Recipients with the labels (comma-separated)').fill('nasa');
      await page.getByLabel('Mary Jackson <mary@example.com>').check();
      await page.getByRole('button', { name: 'Create the group' }).click();
      await page.locator('#group-status', { hasText: 'Group Launch team created.' }).waitFor();
      const row = page.locator('#groups tbody tr', { hasText: 'Launch team' });
      expect(await row.locator('td.labels').textContent()).toBe('nasa');
      await row.getByRole('button', { name: 'Members of Launch team' }).click();
      const members = page.getByRole('list', { name: 'Members of Launch team' });
      await members.waitFor();
      expect((await members.locator('li').allTextContents()).sort()).toEqual(['Katherine Johnson', 'Mary Jackson <mary@example.com>']);
      expect(violations).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
