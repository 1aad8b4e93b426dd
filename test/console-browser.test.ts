/**
 * The web console in a real browser (Debian's chromium, driven by playwright-core) against a
 * real server: what a person sees and does, and what the tokens they get do afterwards.
 * Screenshots of each page go to test-results/console/ (GATEHOUSE_SCREENSHOTS overrides).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ADMIN_PASSWORD, startGatehouse, createUser, type TestServer } from './helpers.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PW = 'User-Pass-123!';
const SHOTS = process.env.GATEHOUSE_SCREENSHOTS ?? path.resolve(import.meta.dirname, '..', 'test-results', 'console');

async function me(s: TestServer, token: string) {
  const r = await fetch(s.url + '/api/v1/me', { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, body: (await r.json()) as any };
}

describe('web console in Chromium', { skip: existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM}` }, () => {
  let s: TestServer;
  let browser: Browser;
  let page: Page;
  let aliceToken = '';
  /** Script errors and CSP violations seen by the page (the CSP allows only 'self'). */
  const pageProblems: string[] = [];

  const shot = async (name: string) => {
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  };
  const signIn = async (username: string, password: string) => {
    await page.goto(s.url + '/console/');
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };
  const signOut = async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('status').filter({ hasText: 'You are signed out.' }).waitFor();
  };

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    s = await startGatehouse({ config: { sampleModules: true } });
    const admin = await s.adminToken();
    await createUser(s, admin, { username: 'alice', modules: ['VM', 'WAS'], email: 'alice@example.com' });
    await createUser(s, admin, { username: 'bob', uiAccess: false, modules: ['VM'] });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: s.url });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (e) => pageProblems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) pageProblems.push(m.text());
    });
  });
  after(async () => {
    await browser?.close();
    await s?.close();
  });

  test('a user without UI access is turned away with a clear message and sees nothing else', async () => {
    await signIn('bob', PW);
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /does not have the 'UI Access' permission/);
    assert.equal(await page.getByRole('navigation').count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Sign out' }).count(), 0);
    const cookies = await page.context().cookies();
    assert.ok(!cookies.some((c) => c.name === 'gatehouse_session'), 'no session cookie');
    await shot('login-refused');
  });

  test('login; My Profile › Auth ID Client Management: create a client, the secret works with /auth/oidc', async () => {
    await signIn('alice', PW);
    await page.getByTestId('whoami').filter({ hasText: 'alice' }).waitFor();
    await page.getByRole('heading', { level: 1, name: 'My Profile › Auth ID Client Management' }).waitFor();
    // modules offered are the user's own
    assert.equal(await page.getByLabel('WAS', { exact: true }).count(), 1);
    assert.equal(await page.getByLabel('PC', { exact: true }).count(), 0, 'only my modules are offered');
    const cookie = (await page.context().cookies()).find((c) => c.name === 'gatehouse_session');
    assert.ok(cookie?.httpOnly && cookie.sameSite === 'Strict');

    await page.getByLabel('Client name').fill('WAS scripts');
    await page.getByLabel('WAS', { exact: true }).check();
    await page.getByRole('button', { name: 'Create client' }).click();
    const secretBox = page.getByTestId('client-secret');
    await secretBox.waitFor();
    assert.match(await page.locator('.warning').first().innerText(), /shown only this once/);
    const secret = await secretBox.inputValue();
    const clientId = await page.getByTestId('new-client-id').innerText();
    assert.ok(secret.length >= 40);
    await page.getByRole('button', { name: 'Copy client secret' }).click();
    await page.getByText('Copied.').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
    await shot('my-clients-created');

    const r = await fetch(s.url + '/auth/oidc', { method: 'POST', headers: { clientId, clientSecret: secret } });
    assert.equal(r.status, 201);
    const who = await me(s, await r.text());
    assert.equal(who.status, 200);
    assert.equal(who.body.user.username, 'alice');
    assert.deepEqual(who.body.modules, ['WAS']);
    assert.ok(!s.logs.text.includes(secret), 'the secret is never logged');
  });

  test('generate a token in the UI: it shows its expiry and works on the API', async () => {
    await page.getByRole('button', { name: 'Generate token for WAS scripts' }).click();
    const box = page.getByTestId('generated-token');
    await box.waitFor();
    aliceToken = await box.inputValue();
    assert.match(await page.getByTestId('token-expiry').innerText(), /\d/);
    assert.match(await page.getByRole('heading', { name: 'Token generated' }).locator('..').innerText(), /4 hours/);
    const who = await me(s, aliceToken);
    assert.equal(who.status, 200);
    assert.equal(who.body.user.username, 'alice');
    assert.equal(who.body.authMethod, 'user_client');
    // …and calls a sample module (WAS) through the gateway
    const was = await fetch(`${s.url}/qps/rest/3.0/count/was/webapp/`, { headers: { authorization: `Bearer ${aliceToken}`, 'request-source': 'gateway' } });
    assert.equal(was.status, 200);
    assert.match(await was.text(), /<responseCode>SUCCESS<\/responseCode>/);
    // delete needs a confirmation that says what happens
    await page.getByLabel('Client name').fill('throwaway');
    await page.getByLabel('VM', { exact: true }).check();
    await page.getByRole('button', { name: 'Create client' }).click();
    await page.getByRole('button', { name: 'I have saved the secret' }).click();
    await page.getByRole('button', { name: 'Delete throwaway' }).click();
    const dialog = page.getByRole('dialog');
    assert.match(await dialog.innerText(), /refused at once/);
    await dialog.getByRole('button', { name: 'Delete client' }).click();
    await page.getByRole('status').filter({ hasText: 'Client “throwaway” deleted.' }).waitFor();
    assert.equal(await page.getByRole('rowheader', { name: 'throwaway' }).count(), 0);
    await signOut();
  });

  test('a manager creates a user and deactivates alice, with the effect stated first; her token is then refused', async () => {
    await signIn('admin', ADMIN_PASSWORD);
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
    await page.locator('#new-user-username').fill('carol');
    await page.locator('#new-user-password').fill(PW);
    await page.locator('#new-user-mod-VM').check();
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('status').filter({ hasText: 'User carol created.' }).waitFor();
    await page.getByRole('rowheader', { name: 'carol' }).waitFor();
    // a refused input shows the API's own message
    await page.locator('#new-user-username').fill('carol');
    await page.locator('#new-user-password').fill(PW);
    await page.getByRole('button', { name: 'Create user' }).click();
    assert.match(await page.getByRole('alert').innerText(), /A user named 'carol' already exists/);

    await page.getByRole('button', { name: 'Deactivate alice' }).click();
    const dialog = page.getByRole('dialog');
    const effect = await dialog.getByTestId('deactivate-effect').innerText();
    assert.match(effect, /refused/);
    assert.match(effect, /Subscription-level clients and subscription tokens keep working/);
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel', 'focus moves into the dialog');
    await shot('users-deactivate-confirm');
    await dialog.getByRole('button', { name: 'Deactivate user' }).click();
    await page.getByTestId('status-alice').filter({ hasText: 'deactivated' }).waitFor();
    assert.equal((await me(s, aliceToken)).status, 401, 'the token generated in the UI is refused now');
    const was = await fetch(`${s.url}/qps/rest/3.0/count/was/webapp/`, { headers: { authorization: `Bearer ${aliceToken}` } });
    assert.equal(was.status, 401, 'and the gateway refuses it too');
    await shot('users');
  });

  test('subscription tokens: create with an expiry in days, see time left and "expires soon", the limit, delete with confirm', async () => {
    await page.getByRole('link', { name: 'Subscription tokens' }).click();
    await page.getByTestId('token-limit').filter({ hasText: '0 of 10' }).waitFor();
    await page.getByLabel('Valid for').fill('10');
    await page.getByLabel('Unit').selectOption('days');
    await page.getByRole('button', { name: 'Create token' }).click();
    const box = page.getByTestId('subscription-token');
    await box.waitFor();
    const token = await box.inputValue();
    const who = await me(s, token);
    assert.equal(who.status, 200);
    assert.equal(who.body.kind, 'subscription_token');
    await page.getByTestId('token-limit').filter({ hasText: '1 of 10' }).waitFor();
    const row = page.locator(`tr[data-secret-id="${who.body.tokenId}"]`);
    assert.match(await row.innerText(), /9 days 23 h|10 days/);
    assert.match(await row.innerText(), /expires soon/);
    // more than a year is refused with the API's message
    await page.getByLabel('Unit').selectOption('minutes');
    await page.getByLabel('Valid for').fill('525601');
    await page.locator('#expiry-amount').evaluate((el) => el.removeAttribute('max'));
    await page.getByRole('button', { name: 'Create token' }).click();
    assert.match(await page.getByRole('alert').innerText(), /525600/);
    await shot('subscription-tokens');

    await row.getByRole('button', { name: /Delete token/ }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete token' }).click();
    await page.getByRole('status').filter({ hasText: 'deleted successfully' }).waitFor();
    // the list re-renders after the message; give it up to 5 s on a loaded machine
    await row.waitFor({ state: 'detached', timeout: 5000 });
    assert.equal(await row.count(), 0);
    assert.equal((await me(s, token)).status, 401);
  });

  test('the other manager pages render; the gateway page says when no gateway is configured', async () => {
    for (const [link, heading, name] of [
      ['Subscription clients', 'Subscription-level clients', 'subscription-clients'],
      ['Identity providers', 'Trusted identity providers', 'idps'],
      ['Outbox', 'Outbox', 'outbox'],
      ['Audit log', 'Audit log', 'audit'],
      ['Gateway routes', 'Gateway routes and support matrix', 'gateway'],
    ] as const) {
      await page.getByRole('link', { name: link }).click();
      await page.getByRole('heading', { level: 1, name: heading }).waitFor();
      if (name === 'audit') {
        await page.getByLabel('Outcome').selectOption('success');
        await page.getByLabel('Action').fill('user.deactivate');
        await page.getByRole('button', { name: 'Apply filters' }).click();
        await page.getByRole('cell', { name: 'user.deactivate' }).first().waitFor();
        // the filtered list replaces the unfiltered one; wait (bounded) for the old rows to go
        const created = page.getByRole('cell', { name: 'user.create', exact: true });
        for (let i = 0; i < 50 && (await created.count()) > 0; i++) await page.waitForTimeout(100);
        assert.equal(await created.count(), 0, 'the filter applies');
      }
      if (name === 'gateway') {
        await page.locator('[data-testid="gateway-missing"], table').first().waitFor();
      }
      await shot(name);
    }
  });

  test('phone width (390 px): no horizontal overflow on any page; screenshot saved', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const hash of ['/profile/clients', '/users', '/subscription-tokens', '/audit', '/gateway']) {
      await page.goto(`${s.url}/console/#${hash}`);
      await page.getByRole('heading', { level: 1 }).waitFor();
      await page.waitForLoadState('networkidle');
      const { scrollWidth, innerWidth } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
      assert.ok(scrollWidth <= innerWidth, `${hash}: page is ${scrollWidth}px wide in a ${innerWidth}px window`);
      await shot(`phone${hash.replace(/\//g, '-')}`);
    }
    assert.ok(existsSync(path.join(SHOTS, 'phone-users.png')));
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('no script errors or Content-Security-Policy violations on any page', () => {
    assert.deepEqual(pageProblems, []);
  });
});
