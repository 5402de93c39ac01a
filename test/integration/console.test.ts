/**
 * The admin console in a real headless browser (Debian's Chromium, driven by playwright-core):
 * the page loads under its CSP without errors, shows the identity, request counts and live
 * security events as they happen (Server-Sent Events), replays recent events to a new page, and
 * renders attacker-controlled values as text. A screenshot is left in test/artifacts/.
 */
import t from 'tap';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { repoRoot, startTestSidecar } from '../support/sidecar.js';

const CHROMIUM = '/usr/bin/chromium';

t.test('the admin console', async (t) => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (README prerequisites)`);
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, {
    threats: { waf: { paranoia: 1 } },
    routes: [
      { id: 'api', path: '/api/*', methods: ['GET'] },
      { id: 'admin', path: '/admin/*', access: { action: 'deny' } },
    ],
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());

  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });

  const response = await page.goto(`${s.adminUrl}/`);
  t.equal(response?.status(), 200);
  t.match(
    response?.headers()['content-security-policy'],
    /script-src 'sha256-[A-Za-z0-9+/=]+'/,
    'a CSP that allows only the page’s own script',
  );
  await page.locator('#live.on').waitFor({ timeout: 5000 });
  t.equal(await page.locator('#identity').textContent(), 'no mesh identity (file certificate)');

  for (let i = 0; i < 3; i++) t.equal((await fetchText(`${s.url}/api/items`, agent)).status, 200);
  t.equal((await fetchText(`${s.url}/admin/stats`, agent)).status, 403);
  t.equal((await fetchText(`${s.url}/api/search?q=${encodeURIComponent("' OR 1=1 --")}`, agent)).status, 403);
  // A path an attacker chose, which the event carries (url.path): it must stay text.
  const hostile = '/admin/%3Cimg%20src=x%20onerror=alert(1)%3E';
  t.equal((await fetchText(`${s.url}${hostile}`, agent)).status, 403);

  await page.locator('tr[data-event="warden.access.denied"]').first().waitFor({ timeout: 5000 });
  await page.locator('tr[data-event="warden.input.sqli"]').waitFor({ timeout: 5000 });
  t.equal(await page.locator('tr[data-event="warden.access.denied"]').count(), 2, 'both denials arrived live');
  t.match(await page.locator('tr[data-event="warden.input.sqli"]').textContent(), /sqli-libinjection.*\/query\/q\/0/);
  t.equal(await page.locator('#events img').count(), 0, 'no markup from an event is rendered');
  t.match(await page.locator('#events').textContent(), /<img src=x onerror=alert\(1\)>|%3Cimg/, 'it is shown as text');

  // The counts refresh every 2 s from /console/status.
  // (The page's CSP forbids evaluating strings, so this polls from the test.)
  for (let i = 0; i < 60 && !/2xx: 3/.test((await page.locator('#classes').textContent()) ?? ''); i++) await page.waitForTimeout(100);
  t.match(await page.locator('#classes').textContent(), /2xx: 3/);
  t.match(await page.locator('#classes').textContent(), /4xx: 3/);
  t.match(await page.locator('#event-total').textContent(), /^3$/);

  // A page opened later gets the recent events replayed.
  const second = await browser.newPage();
  await second.goto(`${s.adminUrl}/`);
  await second.locator('tr[data-event="warden.input.sqli"]').waitFor({ timeout: 5000 });
  t.equal(await second.locator('#events tbody tr').count(), 3, 'the backlog is replayed to a new client');

  mkdirSync(join(repoRoot, 'test/artifacts'), { recursive: true });
  const shot = join(repoRoot, 'test/artifacts/console.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.ok(existsSync(shot), `screenshot: ${shot}`);
  t.same(errors, [], 'no script errors and no CSP violations');
});
