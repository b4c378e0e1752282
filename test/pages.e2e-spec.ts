import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM, logIn, pageErrors } from './support/admin-browser.js';
import { dcx, newClientHome, publish } from './support/cli-process.js';
import { http } from './support/http.js';
import { ROOT, RunningServer, startServer } from './support/server-process.js';

const SCREENSHOT = join(ROOT, 'test/artifacts/dashboard.png');
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** One HTTP request with a body (node:http, no keep-alive, as test/support/http.ts). */
function send(url: string, method: string, headers: Record<string, string>, body?: string): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) responseHeaders.append(name, one);
        }
        const status = res.statusCode ?? 0;
        resolve(new Response(status === 204 ? null : Buffer.concat(chunks), { status, headers: responseHeaders }));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The status and headers of a streaming response (SSE), then the connection is dropped. */
function head(url: string, headers: Record<string, string>): Promise<{ status: number; contentType: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: false }, (res) => {
      resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'] });
      req.destroy();
    });
    req.on('error', reject);
    req.end();
  });
}

describe('portal and dashboard (postgres)', () => {
  let server: RunningServer;
  let browser: Browser;
  let work: string;
  let secret: { id: string; name: string };

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServer('postgres'), chromium.launch(CHROMIUM)]);
    work = await mkdtemp(join(tmpdir(), 'dcx-pages-'));
    await writeFile(join(work, 'secret-plan.txt'), 'not for the portal\n');
    secret = await publish(server, join(work, 'secret-plan.txt'), 'token');
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('browser: upload, portal download by click, `dcx open` confirms, and the open dashboard turns the row confirmed live', async () => {
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1366, height: 900 } });
    const violations = pageErrors(context);
    try {
      // The dashboard is open and logged in before anything is delivered.
      const admin = await logIn(context, server, server.adminToken);
      await admin.locator('#live-status[data-state="live"]').waitFor();
      expect((await context.cookies()).map((c) => c.name)).toEqual(['dcx_admin']);
      await admin.evaluate('window.marker = 42'); // page scripts run in the browser: expressions, not node-typed functions

      // Upload a public content from the dashboard (a cookie-authenticated, same-origin POST).
      const original = randomBytes(256 * 1024 + 3);
      await writeFile(join(work, 'annual report.pdf'), original);
      await admin.getByLabel('File').setInputFiles(join(work, 'annual report.pdf'));
      await admin.getByLabel('Access').selectOption('public');
      await admin.getByRole('button', { name: 'Upload' }).click();
      await admin.locator('#upload-status', { hasText: 'annual report.pdf uploaded.' }).waitFor();
      await admin.locator('#contents tbody tr', { hasText: 'annual report.pdf' }).waitFor();

      // The portal lists public contents only, with the hint line.
      const portal = await context.newPage();
      await portal.goto(`${server.url}/`);
      const card = portal.locator('#catalogue li', { hasText: 'annual report.pdf' });
      await card.waitFor();
      expect(await portal.locator('#catalogue li').count()).toBe(1);
      expect(await portal.locator('#catalogue').textContent()).not.toContain(secret.name);
      expect(await card.locator('.hint').textContent()).toBe("Then run dcx open 'annual report.pdf.dcx' --out DIR");
      expect(await card.textContent()).toContain(sha256(original));

      // (a) a real click downloads the .dcx
      const [download] = await Promise.all([
        portal.waitForEvent('download'),
        card.getByRole('link', { name: 'Download annual report.pdf.dcx' }).click(),
      ]);
      expect(download.suggestedFilename()).toBe('annual report.pdf.dcx');
      const saved = join(work, 'downloads', download.suggestedFilename());
      await download.saveAs(saved);

      // The new delivery's row appears on the dashboard by itself, and turns "sent".
      const row = admin.locator('#deliveries tbody tr', { hasText: 'annual report.pdf' });
      await row.locator('td.status', { hasText: 'sent' }).waitFor();

      // (b) dcx open confirms it
      const out = await mkdtemp(join(tmpdir(), 'dcx-pages-out-'));
      const opened = await dcx(['open', saved, '--out', out, '--trust', '--json'], { DCX_HOME: await newClientHome() });
      expect(opened.stderr).toMatch(/^(pinned server .*\n)?$/);
      expect(opened.code).toBe(0);
      const report = JSON.parse(opened.stdout) as { deliveryId: string; status: string };
      expect(report.status).toBe('accepted');
      expect((await readFile(join(out, 'annual report.pdf'))).equals(original)).toBe(true);

      // (c) the row turns confirmed without a reload, and the change is announced.
      const confirmedRow = admin.locator(`#deliveries tbody tr[data-id="${report.deliveryId}"]`);
      await confirmedRow.locator('td.status', { hasText: 'confirmed' }).waitFor({ timeout: 10_000 });
      await admin.locator('#announcer', { hasText: 'is now confirmed' }).waitFor();
      expect(await admin.evaluate('window.marker')).toBe(42);
      expect(await confirmedRow.locator('td.confirmed time').count()).toBe(1);

      // Keyboard: Enter on the row opens its timeline.
      await confirmedRow.focus();
      await admin.keyboard.press('Enter');
      const timeline = admin.locator('#details-events');
      await timeline.locator('li', { hasText: 'confirmed' }).waitFor();
      expect(await timeline.locator('li strong').allTextContents()).toEqual(['issued', 'sent', 'confirmed']);
      expect(await admin.evaluate('document.activeElement?.id')).toBe('details-title');

      // Counts per content: the delivery is counted as confirmed.
      const counted = admin.locator('#counts tbody tr', { hasText: 'annual report.pdf' });
      await counted.locator('td.confirmed', { hasText: '1' }).waitFor();
      expect(await admin.locator('#counts-error').textContent()).toBe('');

      // (e) the screenshot
      await mkdir(join(ROOT, 'test/artifacts'), { recursive: true });
      await admin.screenshot({ path: SCREENSHOT, fullPage: true });

      // The same page on a phone: nothing wider than the screen but the tables' own scroll areas.
      await admin.setViewportSize({ width: 390, height: 844 });
      expect(await admin.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
      expect(violations).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test('browser: (d) a wrong token is refused at /admin, and no cookie is set', async () => {
    const context = await browser.newContext();
    try {
      const page = await logIn(context, server, 'not-the-admin-token');
      await page.locator('#login-error', { hasText: 'Wrong admin token' }).waitFor();
      expect(await page.locator('#dashboard').isHidden()).toBe(true);
      expect(await context.cookies()).toEqual([]);
      expect(page.url()).toBe(`${server.url}/admin`);
    } finally {
      await context.close();
    }
  });

  test('session cookie: attributes, reads, cross-site writes refused, SSE, logout', async () => {
    const wrong = await send(
      `${server.url}/api/session`,
      'POST',
      { 'content-type': 'application/json' },
      JSON.stringify({ token: 'wrong-token' }),
    );
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();

    const login = await send(
      `${server.url}/api/session`,
      'POST',
      { 'content-type': 'application/json' },
      JSON.stringify({ token: server.adminToken }),
    );
    expect(login.status).toBe(204);
    const setCookie = login.headers.get('set-cookie')!;
    const attributes = setCookie.split(';').map((part) => part.trim());
    const [pair] = attributes;
    expect(pair).toMatch(/^dcx_admin=v1\.\d+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(setCookie).not.toContain(server.adminToken);
    expect(attributes).toEqual(expect.arrayContaining(['HttpOnly', 'SameSite=Strict', 'Path=/', 'Max-Age=28800']));
    expect(attributes).not.toContain('Secure'); // plain HTTP here
    const cookie = { cookie: pair };

    // Reads work with the cookie alone; without it, 401.
    expect((await http(`${server.url}/api/deliveries`, { headers: cookie })).status).toBe(200);
    expect((await http(`${server.url}/api/contents`, { headers: cookie })).status).toBe(200);
    expect(await (await http(`${server.url}/api/session`, { headers: cookie })).json()).toMatchObject({ authenticated: true });
    expect((await http(`${server.url}/api/deliveries`)).status).toBe(401);
    expect(
      (
        await http(`${server.url}/api/deliveries`, {
          headers: { cookie: 'dcx_admin=v1.9999999999.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
        })
      ).status,
    ).toBe(401);

    // Live events: with the cookie an event stream, without it 401.
    expect(await head(`${server.url}/api/events/deliveries`, cookie)).toEqual({ status: 200, contentType: 'text/event-stream' });
    expect((await head(`${server.url}/api/events/deliveries`, {})).status).toBe(401);

    // Cross-site writes with the cookie are refused, and change nothing.
    for (const headers of <Record<string, string>[]>[
      { origin: 'https://evil.example' },
      { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' },
      { 'sec-fetch-site': 'same-site' },
      {},
    ]) {
      const refused = await send(`${server.url}/api/contents/${secret.id}`, 'DELETE', { ...cookie, ...headers });
      expect(refused.status).toBe(403);
      const upload = await send(`${server.url}/api/contents`, 'POST', { ...cookie, ...headers });
      expect(upload.status).toBe(403);
    }
    expect((await server.admin(`/api/contents/${secret.id}`)).status).toBe(200);

    // The same write from the server's own origin goes through.
    await writeFile(join(work, 'old.txt'), 'old\n');
    const old = await publish(server, join(work, 'old.txt'), 'public');
    const allowed = await send(`${server.url}/api/contents/${old.id}`, 'DELETE', {
      ...cookie,
      origin: server.url,
      'sec-fetch-site': 'same-origin',
    });
    expect(allowed.status).toBe(204);

    // Logout clears the cookie.
    const logout = await send(`${server.url}/api/session`, 'DELETE', cookie);
    expect(logout.status).toBe(204);
    expect(logout.headers.get('set-cookie')).toMatch(
      /^dcx_admin=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Strict$/,
    );
  });

  test('pages carry a strict CSP; the catalogue lists public contents only; assets are a closed set', async () => {
    for (const path of ['/', '/admin']) {
      const page = await http(`${server.url}${path}`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      const csp = page.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      const html = await page.text();
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
      expect(html).not.toMatch(/(src|href)="(https?:)?\/\//); // nothing from elsewhere
    }
    expect((await http(`${server.url}/assets/dashboard.js`)).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    for (const path of ['/assets/..%2fadmin.html', '/assets/..%2f..%2fpackage.json', '/assets/nothing.js']) {
      expect((await http(`${server.url}${path}`)).status).toBe(404);
    }

    const catalogue = (await (await http(`${server.url}/api/catalogue`)).json()) as {
      id: string;
      name: string;
      bundleUrl: string;
      sha256: string;
      size: number;
      mediaType: string;
    }[];
    expect(catalogue.map((c) => c.id)).not.toContain(secret.id);
    for (const entry of catalogue) {
      expect(Object.keys(entry).sort()).toEqual(['bundleUrl', 'id', 'mediaType', 'name', 'sha256', 'size']);
      expect(entry.bundleUrl).toBe(`${server.url}/api/contents/${entry.id}/bundle`);
    }
  });

  test('an open event stream ends when the server shuts down, and does not hold it up', async () => {
    const ended = new Promise<number>((resolve, reject) => {
      const req = request(
        `${server.url}/api/events/deliveries`,
        { headers: { authorization: `Bearer ${server.adminToken}` }, agent: false },
        (res) => {
          expect(res.statusCode).toBe(200);
          res.resume();
          res.on('close', () => resolve(Date.now()));
          setTimeout(() => void server.stop(), 100);
        },
      );
      req.on('error', reject);
      req.end();
    });
    const started = Date.now();
    await ended;
    await server.stop();
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

/** A datetime-local value (minutes) for `at` in a zone `offsetMinutes` east of UTC, computed apart from the page. */
function localMinute(at: Date, offsetMinutes: number): string {
  return new Date(at.getTime() + offsetMinutes * 60_000).toISOString().slice(0, 16);
}

describe('dashboard: expiry and re-issue, live (postgres, DELIVERY_TTL=3s)', () => {
  let server: RunningServer;
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([
      startServer('postgres', { DELIVERY_TTL: '3s', EXPIRY_CHECK_INTERVAL_MS: '300' }),
      chromium.launch(CHROMIUM),
    ]);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('a delivery expires, its row turns expired live; Re-issue → new row live → `dcx fetch` → confirmed live; counts, time range (Asia/Kolkata) and CSV export follow', async () => {
    const work = await mkdtemp(join(tmpdir(), 'dcx-reissue-'));
    await writeFile(join(work, 'policy.txt'), 'read me, then confirm\n');
    const content = await publish(server, join(work, 'policy.txt'), 'public');
    // UTC+05:30 all year: a datetime-local typed there is 5 h 30 min ahead of the ISO time sent.
    const context = await browser.newContext({ acceptDownloads: true, timezoneId: 'Asia/Kolkata', viewport: { width: 1366, height: 900 } });
    const violations = pageErrors(context);
    try {
      const admin = await logIn(context, server, server.adminToken);
      await admin.locator('#live-status[data-state="live"]').waitFor();
      // A second dashboard (same session) sees the re-issue only through live events.
      const watcher = await context.newPage();
      await watcher.goto(`${server.url}/admin`);
      await watcher.locator('#live-status[data-state="live"]').waitFor();

      // Someone downloads the bundle and never opens it: the delivery is sent, then expires.
      const download = await http(`${server.url}/api/contents/${content.id}/bundle`);
      expect(download.status).toBe(200);
      const oldId = download.headers.get('dcx-delivery-id')!;
      const oldRow = admin.locator(`#deliveries tbody tr[data-id="${oldId}"]`);
      await oldRow.locator('td.status .badge', { hasText: 'expired' }).waitFor({ timeout: 15_000 });
      const counts = admin.locator('#counts tbody tr', { hasText: 'policy.txt' });
      await counts.locator('td.expired', { hasText: '1' }).waitFor();

      // Re-issue, from the keyboard: the new row appears live, the old one says it was re-issued and loses its button.
      await oldRow.getByRole('button', { name: /^Re-issue/ }).focus();
      await admin.keyboard.press('Enter');
      const bundleLink = admin.locator('#deliveries-status a.bundle-url');
      await bundleLink.waitFor();
      const bundleUrl = (await bundleLink.textContent())!;
      const newId = /\/api\/deliveries\/([0-9a-f-]{36})\/bundle$/.exec(bundleUrl)![1];
      const newRow = admin.locator(`#deliveries tbody tr[data-id="${newId}"]`);
      await newRow.locator('td.status', { hasText: `re-issue of ${oldId.slice(0, 8)}` }).waitFor();
      await oldRow.locator('td.status', { hasText: `re-issued as ${newId.slice(0, 8)}` }).waitFor();
      expect(await oldRow.getByRole('button', { name: /^Re-issue/ }).count()).toBe(0);
      expect(await admin.evaluate('document.activeElement?.dataset.id')).toBe(newId);
      expect(await admin.locator('#deliveries-error').textContent()).toBe('');
      await watcher.locator(`#deliveries tbody tr[data-id="${newId}"]`).waitFor();
      await watcher
        .locator(`#deliveries tbody tr[data-id="${oldId}"] td.status`, { hasText: `re-issued as ${newId.slice(0, 8)}` })
        .waitFor();
      expect(
        await watcher
          .locator(`#deliveries tbody tr[data-id="${oldId}"]`)
          .getByRole('button', { name: /^Re-issue/ })
          .count(),
      ).toBe(0);
      await watcher.close();

      // The recipient fetches the new bundle with the real client; the new row turns confirmed live.
      const fetched = await dcx(['fetch', bundleUrl, '--out', join(work, 'out'), '--json'], { DCX_HOME: await newClientHome() });
      expect(fetched.code).toBe(0);
      expect(JSON.parse(fetched.stdout)).toMatchObject({ deliveryId: newId, status: 'accepted' });
      await newRow.locator('td.status .badge', { hasText: 'confirmed' }).waitFor({ timeout: 10_000 });
      await counts.locator('td.confirmed', { hasText: '1' }).waitFor();
      expect(await counts.locator('td.num').allTextContents()).toEqual(['0', '0', '1', '0', '1', '2']);
      expect(await oldRow.locator('td.status .badge').textContent()).toBe('expired');

      // The time range, typed in the browser's zone: from the old delivery's minute shows both, until it neither.
      const issuedAt = new Date(((await (await server.admin(`/api/deliveries/${oldId}`)).json()) as { issuedAt: string }).issuedAt);
      const minute = new Date(Math.floor(issuedAt.getTime() / 60_000) * 60_000);
      await admin.getByLabel('Issued from').fill(localMinute(minute, 330));
      await admin.getByRole('button', { name: 'Apply' }).click();
      const exportLink = admin.getByRole('link', { name: 'Export CSV' });
      await admin.locator(`#export[href*="from="]`).waitFor();
      expect(new URL(`${server.url}${await exportLink.getAttribute('href')}`).searchParams.get('from')).toBe(minute.toISOString());

      // The CSV export downloads with the session cookie alone, filtered as the table.
      const [csv] = await Promise.all([admin.waitForEvent('download'), exportLink.click()]);
      expect(csv.suggestedFilename()).toBe('deliveries.csv');
      const lines = (await readFile(await csv.path(), 'utf8')).trimEnd().split('\r\n');
      const header = lines[0].split(',');
      const rows = lines.slice(1).map((line) => Object.fromEntries(line.split(',').map((cell, i) => [header[i], cell])));
      expect(rows.map((r) => [r.id, r.status, r.reissued_from])).toEqual([
        [newId, 'confirmed', oldId],
        [oldId, 'expired', ''],
      ]);

      await admin.getByLabel('Issued from').fill('');
      await admin.getByLabel('Issued until').fill(localMinute(minute, 330));
      await admin.getByRole('button', { name: 'Apply' }).click();
      await admin.locator('#deliveries tbody tr.empty').waitFor();
      await admin.locator('#counts-caption', { hasText: 'issued until' }).waitFor();
      expect(await counts.locator('td.total').textContent()).toBe('0');
      expect(violations).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
