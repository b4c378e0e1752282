import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM, logIn, pageErrors } from './support/admin-browser.js';
import { dcx, newClientHome, publish } from './support/cli-process.js';
import { http } from './support/http.js';
import { DatabaseMode, ROOT, RunningServer, startServer } from './support/server-process.js';

/**
 * Issue 21, "Dashboard for a manager", against the real built server (PostgreSQL and PGlite), the real `dcx` CLI and the
 * system Chromium: sorting by any column and search (server-side, validated), the client filter taking the 12 digits
 * the table shows, content ids beside names, the timeline right under its row, the receipt downloaded and checked
 * with `dcx verify-receipt`, and "1 of 3 received" per content sent to named recipients.
 */

const LONG_NAME = 'Quarterly report 2026 for the supervisory board, final version (approved).pdf';

interface Item {
  id: string;
  contentId: string;
  contentName: string | null;
  status: string;
  clientFingerprint: string | null;
  requesterIp: string | null;
  issuedAt: string;
  confirmedAt: string | null;
}
interface Page {
  items: Item[];
  total: number;
}

async function json<T>(response: Response, status = 200): Promise<T> {
  const text = await response.text();
  expect({ status: response.status, text: response.status === status ? '' : text }).toEqual({ status, text: '' });
  return JSON.parse(text) as T;
}

/** A JSON POST with the admin token. */
async function adminPost<T>(server: RunningServer, path: string, body: unknown): Promise<T> {
  const response = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify(body),
  });
  return json<T>(response, 201);
}

/** `dcx verify-receipt` in a fresh installation that pinned the server with `dcx trust`: its exit code and output. */
async function verifyWithCli(server: RunningServer, file: string) {
  const home = await newClientHome();
  expect((await dcx(['trust', server.url], { DCX_HOME: home })).code).toBe(0);
  return dcx(['verify-receipt', file, '--json'], { DCX_HOME: home });
}

describe.each<DatabaseMode>(['postgres', 'pglite'])('dashboard for a manager (%s)', (mode) => {
  let server: RunningServer;
  let browser: Browser;
  let work: string;
  let reports: { id: string }[];
  let alpha: { id: string; bundleUrl: string };
  let zeta: { id: string; name: string };
  let confirmed: { deliveryId: string; receiptPath: string; fingerprint: string };
  const list = async (query: string) => json<Page>(await server.admin(`/api/deliveries?${query}`));

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServer(mode), chromium.launch(CHROMIUM)]);
    work = await mkdtemp(join(tmpdir(), 'dcx-dashboard-'));
    // Two uploads of one (long) name, and two short ones.
    await writeFile(join(work, LONG_NAME), randomBytes(2048));
    reports = [await publish(server, join(work, LONG_NAME), 'public')];
    await writeFile(join(work, LONG_NAME), randomBytes(2048));
    reports.push(await publish(server, join(work, LONG_NAME), 'public'));
    await writeFile(join(work, 'alpha.txt'), 'alpha\n');
    const published = await publish(server, join(work, 'alpha.txt'), 'public');
    alpha = { id: published.id, bundleUrl: `${server.url}/api/contents/${published.id}/bundle` };
    await writeFile(join(work, 'zeta.txt'), 'zeta\n');
    zeta = await publish(server, join(work, 'zeta.txt'), 'public');
    // Anonymous downloads (sent), one per content and a second of alpha.txt.
    for (const content of [...reports, alpha, zeta, alpha]) {
      const response = await http(`${server.url}/api/contents/${content.id}/bundle`);
      expect(response.status).toBe(200);
      await response.arrayBuffer();
    }
    // One delivery of alpha.txt fetched and confirmed by the real client: a fingerprint and a receipt.
    const fetched = await dcx(['fetch', alpha.bundleUrl, '--out', join(work, 'out'), '--json'], { DCX_HOME: await newClientHome() });
    expect([fetched.code, fetched.stderr]).toEqual([0, expect.any(String)]);
    const report = JSON.parse(fetched.stdout) as { deliveryId: string; receiptPath: string };
    const detail = await json<Item>(await server.admin(`/api/deliveries/${report.deliveryId}`));
    expect(detail.status).toBe('confirmed');
    confirmed = { ...report, fingerprint: detail.clientFingerprint! };
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('sort and search are validated: 400 with the reason; nothing without the admin credential', async () => {
    for (const [query, message] of [
      ['sort=name', /sort must be one of status, content, client, requesterIp, issuedAt, sentAt, confirmedAt/],
      ['sort=content;DROP TABLE deliveries', /sort must be one of/],
      ['order=up', /order must be asc or desc/],
      ['search=', /search must be longer than or equal to 1 characters/],
      [`search=${'x'.repeat(101)}`, /search must be shorter than or equal to 100 characters/],
      ['clientId=not-a-client', /clientId must be a client fingerprint/],
      [`clientId=${'g'.repeat(12)}`, /clientId must be a client fingerprint/],
    ] as const) {
      const response = await server.admin(`/api/deliveries?${query}`);
      expect([query, response.status]).toEqual([query, 400]);
      expect(((await response.json()) as { message: string[] }).message.join('; ')).toMatch(message);
    }
    for (const path of [
      '/api/deliveries?sort=content&search=alpha',
      '/api/deliveries/completion',
      `/api/deliveries/${confirmed.deliveryId}/receipt/file`,
    ]) {
      expect([path, (await http(`${server.url}${path}`)).status]).toEqual([path, 401]);
      const wrong = await http(`${server.url}${path}`, { headers: { authorization: 'Bearer not-the-admin-token-at-all' } });
      expect([path, wrong.status]).toEqual([path, 401]);
    }
  });

  test('sort: every column, both ways, ties by id, empty values last; offset pages neither repeat nor skip', async () => {
    const all = (await list('pageSize=500')).items;
    expect(all).toHaveLength(6);
    const byName = (await list('sort=content&order=asc')).items;
    expect(byName.map((d) => d.contentName)).toEqual(['alpha.txt', 'alpha.txt', 'alpha.txt', LONG_NAME, LONG_NAME, 'zeta.txt']);
    // Ties (one name) come by delivery id.
    const alphaIds = byName.slice(0, 3).map((d) => d.id);
    expect(alphaIds).toEqual([...alphaIds].sort());
    expect((await list('sort=content&order=desc')).items.map((d) => d.contentName)).toEqual([
      'zeta.txt',
      LONG_NAME,
      LONG_NAME,
      'alpha.txt',
      'alpha.txt',
      'alpha.txt',
    ]);
    // Status in lifecycle order: sent before confirmed; reversed, confirmed first.
    expect((await list('sort=status&order=asc')).items.map((d) => d.status)).toEqual(['sent', 'sent', 'sent', 'sent', 'sent', 'confirmed']);
    expect((await list('sort=status&order=desc')).items[0].id).toBe(confirmed.deliveryId);
    // The one confirmed delivery comes first both ways: the empty confirmation times go last.
    for (const order of ['asc', 'desc']) {
      const items = (await list(`sort=confirmedAt&order=${order}`)).items;
      expect(items[0].id).toBe(confirmed.deliveryId);
      expect(items.slice(1).every((d) => d.confirmedAt === null)).toBe(true);
    }
    expect((await list('sort=client&order=asc')).items[0].clientFingerprint).toBe(confirmed.fingerprint);
    // Issued: newest first by default (the same as sort=issuedAt&order=desc), oldest first asc; ties by id.
    const inOrder = (items: Item[], sign: 1 | -1) =>
      items.every(
        (d, i) =>
          i === 0 ||
          sign * d.issuedAt.localeCompare(items[i - 1].issuedAt) > 0 ||
          (d.issuedAt === items[i - 1].issuedAt && d.id > items[i - 1].id),
      );
    expect(inOrder(all, -1)).toBe(true);
    expect((await list('sort=issuedAt&order=desc')).items).toEqual(all);
    expect(inOrder((await list('sort=issuedAt&order=asc')).items, 1)).toBe(true);
    for (const sort of ['requesterIp', 'sentAt']) {
      expect((await list(`sort=${sort}&order=asc`)).total).toBe(6);
    }
    // Pages of 4 and 2 in any sort are the whole list in order, once each.
    for (const sort of ['content', 'status', 'client', 'confirmedAt']) {
      const whole = (await list(`sort=${sort}&order=asc&pageSize=500`)).items.map((d) => d.id);
      const paged = [];
      for (let page = 1; page <= 3; page++)
        paged.push(...(await list(`sort=${sort}&order=asc&pageSize=2&page=${page}`)).items.map((d) => d.id));
      expect(paged).toEqual(whole);
      expect(new Set(paged).size).toBe(6);
    }
  });

  test('search: content name (any case, % literal), delivery id prefix, fingerprint prefix, requester IP; the client filter takes the 12 digits shown', async () => {
    const ids = (page: Page) => page.items.map((d) => d.id).sort();
    const named = await list('search=QUARTERLY');
    expect(named.total).toBe(2);
    expect(new Set(named.items.map((d) => d.contentId))).toEqual(new Set(reports.map((r) => r.id)));
    expect((await list('search=%25')).total).toBe(0);
    expect((await list('search=_')).total).toBe(0);
    const one = (await list('pageSize=500')).items.find((d) => d.contentId === zeta.id)!;
    expect(ids(await list(`search=${one.id.slice(0, 8)}`))).toEqual([one.id]);
    expect(ids(await list(`search=${one.id.slice(0, 13)}`))).toEqual([one.id]);
    expect(ids(await list(`search=${one.id}`))).toEqual([one.id]);
    expect(ids(await list(`search=${confirmed.fingerprint.slice(0, 12)}`))).toEqual([confirmed.deliveryId]);
    expect((await list('search=127.0.0')).total).toBe(6);
    expect((await list('search=10.9.')).total).toBe(0);
    // Search with other filters: AND.
    expect((await list(`search=alpha&status=confirmed`)).items.map((d) => d.id)).toEqual([confirmed.deliveryId]);

    for (const clientId of [
      confirmed.fingerprint.slice(0, 12),
      `${confirmed.fingerprint.slice(0, 12)}…`,
      confirmed.fingerprint.slice(0, 12).toUpperCase(),
      confirmed.fingerprint.slice(0, 40),
      confirmed.fingerprint,
    ]) {
      expect([clientId, ids(await list(`clientId=${encodeURIComponent(clientId)}`))]).toEqual([clientId, [confirmed.deliveryId]]);
    }
    expect((await list(`clientId=${'0'.repeat(12)}`)).total).toBe(0);
    expect((await list('clientId=127.0.0.1')).total).toBe(6);
    // The CSV export takes the same search.
    const csv = (await (await server.admin('/api/deliveries/export.csv?search=zeta')).text()).trim().split('\r\n');
    expect(csv).toHaveLength(2);
    expect(csv[1]).toContain(',zeta.txt,');
  });

  test('receipt file: application/vnd.dcx.receipt, <id>.receipt, the bytes the client kept; `dcx verify-receipt` accepts it; 404 unconfirmed or unknown', async () => {
    const response = await server.admin(`/api/deliveries/${confirmed.deliveryId}/receipt/file`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/vnd.dcx.receipt');
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename="${confirmed.deliveryId}.receipt"`);
    expect(response.headers.get('cache-control')).toBe('private, no-store');
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.equals(await readFile(confirmed.receiptPath))).toBe(true);
    const file = join(work, `${confirmed.deliveryId}.receipt`);
    await writeFile(file, bytes);
    const verified = await verifyWithCli(server, file);
    expect([verified.code, verified.stderr]).toEqual([0, '']);
    expect(JSON.parse(verified.stdout)).toMatchObject({
      valid: true,
      deliveryId: confirmed.deliveryId,
      clientFingerprint: confirmed.fingerprint,
    });

    const unconfirmed = (await list('status=sent')).items[0].id;
    const notYet = await server.admin(`/api/deliveries/${unconfirmed}/receipt/file`);
    expect(notYet.status).toBe(404);
    expect(((await notYet.json()) as { message: string }).message).toBe(
      `delivery ${unconfirmed} is sent, not confirmed: it has no receipt`,
    );
    expect((await server.admin(`/api/deliveries/${randomUUID()}/receipt/file`)).status).toBe(404);
    // The OpenAPI description names the media type, and the sorts.
    const openapi = (await (await http(`${server.url}/api/docs-json`)).json()) as {
      paths: Record<
        string,
        { get: { parameters?: { name: string; schema: { enum?: string[] } }[]; responses: Record<string, { content?: object }> } }
      >;
    };
    expect(Object.keys(openapi.paths['/api/deliveries/{id}/receipt/file'].get.responses['200'].content!)).toEqual([
      'application/vnd.dcx.receipt',
    ]);
    const parameters = openapi.paths['/api/deliveries'].get.parameters!;
    expect(parameters.find((p) => p.name === 'sort')!.schema.enum).toEqual([
      'status',
      'content',
      'client',
      'requesterIp',
      'issuedAt',
      'sentAt',
      'confirmedAt',
    ]);
    expect(parameters.map((p) => p.name)).toEqual(expect.arrayContaining(['search', 'order', 'clientId']));
    expect((await server.admin('/api/deliveries/not-an-id/receipt/file')).status).toBe(400);
  });

  test('completion: a content sent to 3 named recipients, one runs `dcx inbox`: 1 of 3 received', async () => {
    const homes = await Promise.all([0, 1, 2].map(() => newClientHome()));
    const recipients: string[] = [];
    for (const [i, home] of homes.entries()) {
      const made = await adminPost<{ code: string }>(server, '/api/recipients/enrolment-codes', {
        name: `Recipient ${i}`,
        expiresIn: '1h',
      });
      const enrolled = await dcx(['enrol', server.url, '--code', made.code, '--json'], { DCX_HOME: home });
      expect([enrolled.code, enrolled.stderr]).toEqual([0, '']);
      recipients.push((JSON.parse(enrolled.stdout) as { recipientId: string }).recipientId);
    }
    expect(await json(await server.admin('/api/deliveries/completion'))).toEqual([]);
    await adminPost(server, '/api/distributions', { contentId: zeta.id, recipients });
    expect(await json(await server.admin('/api/deliveries/completion'))).toEqual([{ contentId: zeta.id, recipients: 3, received: 0 }]);
    const inbox = await dcx(['inbox', server.url, '--out', await mkdtemp(join(tmpdir(), 'dcx-inbox-')), '--json'], { DCX_HOME: homes[0] });
    expect([inbox.code, inbox.stderr]).toEqual([0, '']);
    expect(await json(await server.admin('/api/deliveries/completion'))).toEqual([{ contentId: zeta.id, recipients: 3, received: 1 }]);
  });

  // The pages do not depend on the database: Chromium runs against PostgreSQL only.
  (mode === 'postgres' ? test : test.skip)(
    'browser: click a header → order changes; type a search → rows filtered; tooltips; timeline under its row; receipt downloaded and verified; 1 of 3 received',
    async () => {
      const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1366, height: 900 } });
      const violations = pageErrors(context);
      try {
        const admin = await logIn(context, server, server.adminToken);
        await admin.locator('#live-status[data-state="live"]').waitFor();
        const rows = admin.locator('#deliveries tbody tr[data-id]');
        const names = () => rows.locator('td.content .cut').allTextContents();
        await rows.first().waitFor();
        expect(await rows.count()).toBe(9); // six downloads and three pending deliveries of the distribution
        const contentHeader = admin.locator('#deliveries thead th[data-sort="content"]');
        const issuedHeader = admin.locator('#deliveries thead th[data-sort="issuedAt"]');
        expect(await issuedHeader.getAttribute('aria-sort')).toBe('descending');

        // Click "Content": A to Z, then Z to A; aria-sort moves to that header.
        await admin.getByRole('button', { name: 'Content', exact: true }).click();
        await admin.locator('#deliveries th[data-sort="content"][aria-sort="ascending"]').waitFor();
        await admin.locator('#deliveries-caption', { hasText: 'by content name, A to Z: 9 in all' }).waitFor();
        const ascending = ['alpha.txt', 'alpha.txt', 'alpha.txt', LONG_NAME, LONG_NAME, 'zeta.txt', 'zeta.txt', 'zeta.txt', 'zeta.txt'];
        await expectSoon(names, ascending);
        expect(await issuedHeader.getAttribute('aria-sort')).toBeNull();
        await admin.getByRole('button', { name: 'Content', exact: true }).click();
        await expectSoon(names, [...ascending].reverse());
        expect(await contentHeader.getAttribute('aria-sort')).toBe('descending');
        await admin.locator('#announcer', { hasText: 'Deliveries sorted by content name, Z to A.' }).waitFor();

        // Full names in the tooltip; the two uploads of one name told apart by their content ids.
        const longRows = rows.filter({ hasText: LONG_NAME.slice(0, 20) });
        expect(await longRows.count()).toBe(2);
        for (let i = 0; i < 2; i++) {
          const cut = longRows.nth(i).locator('td.content .cut');
          expect(await cut.getAttribute('title')).toBe(LONG_NAME);
        }
        const shownIds = await longRows.locator('td.content code.content-id').allTextContents();
        const titles = await Promise.all([0, 1].map((i) => longRows.nth(i).locator('td.content code.content-id').getAttribute('title')));
        // The names are cut on screen (so the tooltip is what shows them whole).
        const cutNames = `[...document.querySelectorAll('#deliveries td.content .cut')].filter((n) => n.title === ${JSON.stringify(LONG_NAME)})`;
        expect(await admin.evaluate(`${cutNames}.map((n) => n.scrollWidth > n.clientWidth)`)).toEqual([true, true]);
        expect(new Set(titles)).toEqual(new Set(reports.map((r) => r.id)));
        expect(shownIds.sort()).toEqual(reports.map((r) => r.id.slice(0, 8)).sort());

        // Typing a search filters the rows (no Apply needed).
        await admin.getByLabel('Search').fill('quarterly');
        await expectSoon(names, [LONG_NAME, LONG_NAME]);
        await admin.locator('#deliveries-caption', { hasText: ': 2 in all' }).waitFor();
        await admin.getByLabel('Search').fill('');
        await expectSoon(async () => (await names()).length, 9);

        // The client filter takes the 12 digits shown, as copied from the table (with its ellipsis).
        const confirmedRow = admin.locator(`#deliveries tbody tr[data-id="${confirmed.deliveryId}"]`);
        const shownFingerprint = (await confirmedRow.locator('td.client code').textContent())!;
        expect(shownFingerprint).toBe(`${confirmed.fingerprint.slice(0, 12)}…`);
        expect(await confirmedRow.locator('td.client code').getAttribute('title')).toBe(confirmed.fingerprint);
        await admin.getByLabel('Client (fingerprint or IP)').fill(shownFingerprint);
        await admin.getByRole('button', { name: 'Apply' }).click();
        await expectSoon(
          async () =>
            admin.evaluate<string[]>("[...document.querySelectorAll('#deliveries tbody tr[data-id]')].map((tr) => tr.dataset.id)"),
          [confirmed.deliveryId],
        );
        expect(await admin.locator('#deliveries-error').textContent()).toBe('');
        await admin.getByRole('button', { name: 'Clear' }).click();
        await expectSoon(async () => (await names()).length, 9);

        // Live, under this sort and a search: a new download that matches appears (the page is read again), one that does not, not.
        await admin.getByLabel('Search').fill('ALPHA');
        await expectSoon(names, ['alpha.txt', 'alpha.txt', 'alpha.txt']);
        for (const content of [zeta, alpha]) await (await http(`${server.url}/api/contents/${content.id}/bundle`)).arrayBuffer();
        await expectSoon(names, ['alpha.txt', 'alpha.txt', 'alpha.txt', 'alpha.txt']);
        await admin.locator('#deliveries-caption', { hasText: 'by content name, Z to A: 4 in all' }).waitFor();
        await admin.getByLabel('Search').fill('');
        await expectSoon(async () => (await names()).length, 11);

        // The timeline opens right under its row, in view.
        await confirmedRow.locator('td.ip').click();
        const panel = admin.locator('#details');
        await panel.locator('#details-events li', { hasText: 'confirmed' }).waitFor();
        expect(await admin.locator('#details-events li strong').allTextContents()).toEqual(['issued', 'sent', 'confirmed']);
        const under = `document.querySelector('#deliveries tr[data-id="${confirmed.deliveryId}"]').nextElementSibling.contains(document.getElementById('details'))`;
        expect(await admin.evaluate(under)).toBe(true);
        expect(await confirmedRow.getByRole('button', { name: /^Details of delivery/ }).getAttribute('aria-expanded')).toBe('true');
        const rowBox = (await confirmedRow.boundingBox())!;
        const panelBox = (await panel.boundingBox())!;
        expect(Math.abs(panelBox.y - (rowBox.y + rowBox.height))).toBeLessThanOrEqual(2);
        expect(Math.abs(panelBox.x - rowBox.x)).toBeLessThanOrEqual(2);
        // Row and panel both in the viewport (900 px high), without scrolling by hand.
        expect(rowBox.y).toBeGreaterThanOrEqual(0);
        expect(panelBox.y + panelBox.height).toBeLessThanOrEqual(900);
        expect(await admin.evaluate('document.activeElement?.id')).toBe('details-title');

        // Download the receipt from the timeline; the real CLI verifies it.
        const [download] = await Promise.all([
          admin.waitForEvent('download'),
          panel.getByRole('link', { name: /^Download the receipt/ }).click(),
        ]);
        expect(download.suggestedFilename()).toBe(`${confirmed.deliveryId}.receipt`);
        const saved = join(work, 'browser', download.suggestedFilename());
        await download.saveAs(saved);
        const verified = await verifyWithCli(server, saved);
        expect([verified.code, verified.stderr]).toEqual([0, '']);
        expect(JSON.parse(verified.stdout)).toMatchObject({ valid: true, deliveryId: confirmed.deliveryId });

        // Per content: 1 of 3 received for zeta.txt; nothing for contents without recipients.
        const zetaRow = admin.locator(`#contents tbody tr[data-content-id="${zeta.id}"]`);
        await zetaRow.locator('td.completion', { hasText: '1 of 3 received' }).waitFor();
        expect(await admin.locator(`#contents tbody tr[data-content-id="${alpha.id}"] td.completion`).textContent()).toBe('—');
        expect(
          await admin
            .locator('#contents tbody tr', { hasText: LONG_NAME.slice(0, 20) })
            .locator('th .cut')
            .first()
            .getAttribute('title'),
        ).toBe(LONG_NAME);

        await mkdir(join(ROOT, 'test/artifacts'), { recursive: true });
        await admin.screenshot({ path: join(ROOT, 'test/artifacts/dashboard-manager.png'), fullPage: true });

        // Another row's Details: the one panel moves under that row, with that delivery's timeline and no receipt.
        const otherId = (await list(`contentId=${zeta.id}&status=sent`)).items[0].id;
        const other = admin.locator(`#deliveries tbody tr[data-id="${otherId}"]`);
        await other.getByRole('button', { name: /^Details of delivery/ }).click();
        await admin.locator('#details-title', { hasText: `Delivery ${otherId.slice(0, 8)}` }).waitFor();
        await expectSoon(() => admin.locator('#details-events li strong').allTextContents(), ['issued', 'sent']);
        expect(await admin.locator('#details').count()).toBe(1);
        expect(await admin.evaluate(under.replace(confirmed.deliveryId, otherId))).toBe(true);
        expect(await panel.getByRole('link', { name: /^Download the receipt/ }).isHidden()).toBe(true);
        expect(await confirmedRow.getByRole('button', { name: /^Details of delivery/ }).getAttribute('aria-expanded')).toBe('false');

        // On a phone, with the panel open: nothing wider than the screen but the tables' own scroll areas, and the
        // panel as wide as the table's scroll area (it stays in view when the table scrolls sideways).
        await admin.setViewportSize({ width: 390, height: 844 });
        expect(await admin.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
        expect((await panel.boundingBox())!.width).toBeLessThanOrEqual(390);
        await admin.screenshot({ path: join(ROOT, 'test/artifacts/dashboard-manager-phone.png'), fullPage: false });

        // Escape closes the timeline and gives the focus back to its row.
        await admin.locator('#details-title').press('Escape');
        await panel.waitFor({ state: 'detached' });
        expect(await admin.evaluate('document.activeElement?.dataset?.id')).toBe(otherId);

        expect(violations).toEqual([]);
      } finally {
        await context.close();
      }
    },
  );
});

/** Waits (up to 10 s) until `read()` gives `expected`, then asserts it (the last value read shows in a failure). */
async function expectSoon<T>(read: () => Promise<T>, expected: T): Promise<void> {
  const deadline = Date.now() + 10_000;
  let value = await read();
  while (JSON.stringify(value) !== JSON.stringify(expected) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    value = await read();
  }
  expect(value).toEqual(expected);
}
