import type { BrowserContext, Page } from 'playwright-core';
import type { RunningServer } from './server-process.js';

/** The system Chromium, headless; never a downloaded browser. */
export const CHROMIUM = {
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
};

/** Script errors and CSP refusals in a browser context; "Failed to load resource" is an expected 401/400 the page handles. */
export function pageErrors(context: BrowserContext): string[] {
  const violations: string[] = [];
  context.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) violations.push(message.text());
  });
  context.on('weberror', (error) => violations.push(error.error().message));
  return violations;
}

/** Logs in with the token on /admin's form: the context then holds the session cookie for every admin page. */
export async function logIn(context: BrowserContext, server: RunningServer, token: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${server.url}/admin`);
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
  return page;
}
