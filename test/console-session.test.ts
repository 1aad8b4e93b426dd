import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ADMIN_PASSWORD, STORES, startGatehouse, createUser, type TestServer } from './helpers.ts';

const PW = 'User-Pass-123!';

/** Sign in to the console the way the SPA does; returns the cookie pair and the CSRF token. */
async function signIn(s: TestServer, username: string, password: string) {
  const res = await fetch(s.url + '/api/v1/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  const body = (await res.json()) as any;
  const setCookie = res.headers.get('set-cookie') ?? '';
  return { status: res.status, body, setCookie, cookie: setCookie.split(';')[0]!, csrf: body.csrfToken as string };
}

function call(s: TestServer, method: string, p: string, headers: Record<string, string>, body?: unknown) {
  return fetch(s.url + p, {
    method,
    headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, body: (await r.json().catch(() => null)) as any, headers: r.headers }));
}

for (const store of STORES) describe(`console sessions (server side, ${store})`, () => {
  let s: TestServer;
  let admin: string;
  let now = Date.now();
  before(async () => {
    s = await startGatehouse({ store, config: { console: { enabled: true, idleTimeoutSeconds: 60, absoluteTimeoutSeconds: 3600 } }, clock: () => new Date(now) });
    admin = await s.adminToken();
  });
  after(async () => s?.close());

  test('sign-in sets an HttpOnly, SameSite=Strict, Path=/ cookie (not Secure on plain HTTP); the database holds only a hash', async () => {
    const r = await signIn(s, 'admin', ADMIN_PASSWORD);
    assert.equal(r.status, 201);
    assert.match(r.setCookie, /^gatehouse_session=[A-Za-z0-9_-]{43};/);
    assert.match(r.setCookie, /HttpOnly/);
    assert.match(r.setCookie, /SameSite=Strict/);
    assert.match(r.setCookie, /Path=\//);
    assert.doesNotMatch(r.setCookie, /Secure/);
    assert.equal(r.body.user.username, 'admin');
    assert.equal(r.body.user.role, 'manager');
    assert.equal(r.body.idleTimeoutSeconds, 60);
    assert.ok(r.body.csrfToken.length >= 40);
    const sid = r.cookie.split('=')[1]!;
    const rows = await s.gh.services.store.db.selectFrom('sessions').selectAll().execute();
    assert.ok(rows.length >= 1);
    assert.ok(rows.every((x) => x.id_hash !== sid && !JSON.stringify(x).includes(sid)), 'the session id itself is not stored');
    assert.ok(!s.logs.text.includes(sid), 'the session id is not logged');
    // the session authenticates management calls
    const me = await call(s, 'GET', '/api/v1/me', { cookie: r.cookie });
    assert.equal(me.status, 200);
    assert.equal(me.body.authMethod, 'console');
    const who = await call(s, 'GET', '/api/v1/session', { cookie: r.cookie });
    assert.equal(who.status, 200);
    assert.equal(who.body.csrfToken, r.csrf);
    assert.equal(who.headers.get('cache-control'), 'no-store');
  });

  test('bad input and wrong passwords get 4xx with a message, never a cookie', async () => {
    const wrong = await signIn(s, 'admin', 'nope');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.errorMessage, 'Invalid username or password.');
    assert.equal(wrong.setCookie, '');
    const form = await fetch(s.url + '/api/v1/session', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=admin&password=x' });
    assert.equal(form.status, 400);
    assert.match(((await form.json()) as any).errorMessage, /application\/json/);
    const extra = await call(s, 'POST', '/api/v1/session', {}, { username: 'admin', password: 'x', remember: true });
    assert.equal(extra.status, 400);
    assert.match(extra.body.errorMessage, /unknown field 'remember'/);
    const none = await call(s, 'GET', '/api/v1/session', {});
    assert.equal(none.status, 401);
    assert.match(none.body.errorMessage, /Not signed in/);
  });

  test('a user without UI access is refused with a clear 403 and no session; UI access without API access may sign in', async () => {
    await createUser(s, admin, { username: 'api-only', apiAccess: true, uiAccess: false, modules: ['VM'] });
    const r = await signIn(s, 'api-only', PW);
    assert.equal(r.status, 403);
    assert.match(r.body.errorMessage, /does not have the 'UI Access' permission/);
    assert.equal(r.setCookie, '');
    await createUser(s, admin, { username: 'ui-only', apiAccess: false, uiAccess: true, modules: ['VM'] });
    const ok = await signIn(s, 'ui-only', PW);
    assert.equal(ok.status, 201);
    // the API still applies its own rules: managing clients needs API Access too
    const c = await call(s, 'POST', '/api/v1/clients', { cookie: ok.cookie, 'x-csrf-token': ok.csrf }, { name: 'x', level: 'user', modules: ['VM'] });
    assert.equal(c.status, 403);
    assert.match(c.body.errorMessage, /'API Access'/);
    await createUser(s, admin, { username: 'sso-user', ssoEnabled: true, modules: ['VM'] });
    const sso = await signIn(s, 'sso-user', PW);
    assert.equal(sso.status, 403);
    assert.match(sso.body.errorMessage, /SSO/);
  });

  test('CSRF: an unsafe call with the cookie but without X-CSRF-Token is refused (403); with it, allowed; Bearer calls are unaffected', async () => {
    const r = await signIn(s, 'admin', ADMIN_PASSWORD);
    const body = { username: 'csrf-victim', password: PW, role: 'user', apiAccess: true, uiAccess: true, modules: [] };
    const no = await call(s, 'POST', '/api/v1/users', { cookie: r.cookie }, body);
    assert.equal(no.status, 403);
    assert.match(no.body.errorMessage, /CSRF token is required/);
    const bad = await call(s, 'POST', '/api/v1/users', { cookie: r.cookie, 'x-csrf-token': 'x'.repeat(43) }, body);
    assert.equal(bad.status, 403);
    assert.match(bad.body.errorMessage, /does not match/);
    const list = await call(s, 'GET', '/api/v1/users', { cookie: r.cookie });
    assert.ok(!list.body.users.some((u: any) => u.username === 'csrf-victim'), 'nothing was created');
    const sub = await fetch(s.url + '/qas/subscription-token', { method: 'POST', headers: { cookie: r.cookie, 'content-type': 'application/json' }, body: '{"expiry":60}' });
    assert.equal(sub.status, 403);
    const ok = await call(s, 'POST', '/api/v1/users', { cookie: r.cookie, 'x-csrf-token': r.csrf }, body);
    assert.equal(ok.status, 201);
    // another session's token does not fit this one
    const other = await signIn(s, 'admin', ADMIN_PASSWORD);
    const cross = await call(s, 'POST', `/api/v1/users/${ok.body.id}/deactivate`, { cookie: r.cookie, 'x-csrf-token': other.csrf });
    assert.equal(cross.status, 403);
    // Bearer: no CSRF header needed, and a cookie next to it is ignored
    const bearer = await call(s, 'POST', `/api/v1/users/${ok.body.id}/deactivate`, { authorization: `Bearer ${admin}`, cookie: 'gatehouse_session=garbage' });
    assert.equal(bearer.status, 200);
    assert.equal(bearer.body.status, 'deactivated');
  });

  test('idle timeout: a session unused longer than idleTimeoutSeconds ends; activity keeps it alive', async () => {
    const r = await signIn(s, 'admin', ADMIN_PASSWORD);
    now += 40_000;
    assert.equal((await call(s, 'GET', '/api/v1/me', { cookie: r.cookie })).status, 200, 'used within the idle window');
    now += 40_000; // 80 s after sign-in, 40 s after last use
    assert.equal((await call(s, 'GET', '/api/v1/me', { cookie: r.cookie })).status, 200, 'activity moved the idle deadline');
    now += 61_000;
    const gone = await call(s, 'GET', '/api/v1/me', { cookie: r.cookie });
    assert.equal(gone.status, 401);
    assert.match(gone.body.errorMessage, /expired after 1 minute without activity/);
    const again = await call(s, 'GET', '/api/v1/session', { cookie: r.cookie });
    assert.equal(again.status, 401);
    assert.match(again.headers.get('set-cookie') ?? '', /gatehouse_session=;.*Max-Age=0/);
  });

  test('absolute lifetime ends even an active session', async () => {
    const r = await signIn(s, 'admin', ADMIN_PASSWORD);
    for (let i = 0; i < 70; i++) {
      now += 55_000;
      const me = await call(s, 'GET', '/api/v1/me', { cookie: r.cookie });
      if (me.status !== 200) {
        assert.equal(me.status, 401);
        assert.match(me.body.errorMessage, /maximum lifetime/);
        assert.ok(i >= 65, `ended after ${i} steps, about an hour`);
        return;
      }
    }
    assert.fail('the session outlived its absolute lifetime');
  });

  test('logout ends the session on the server (the old cookie no longer works) and needs the CSRF token', async () => {
    const r = await signIn(s, 'admin', ADMIN_PASSWORD);
    const noCsrf = await call(s, 'DELETE', '/api/v1/session', { cookie: r.cookie });
    assert.equal(noCsrf.status, 403);
    const out = await fetch(s.url + '/api/v1/session', { method: 'DELETE', headers: { cookie: r.cookie, 'x-csrf-token': r.csrf } });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/);
    const after = await call(s, 'GET', '/api/v1/me', { cookie: r.cookie });
    assert.equal(after.status, 401);
    assert.match(after.body.errorMessage, /session has ended/);
  });

  test('deactivating a user ends their sessions at once, and reactivation does not revive them', async () => {
    const id = await createUser(s, admin, { username: 'soon-gone', modules: ['VM'] });
    const r = await signIn(s, 'soon-gone', PW);
    assert.equal((await call(s, 'GET', '/api/v1/me', { cookie: r.cookie })).status, 200);
    assert.equal((await s.api('POST', `/api/v1/users/${id}/deactivate`, { token: admin })).status, 200);
    const me = await call(s, 'GET', '/api/v1/me', { cookie: r.cookie });
    assert.equal(me.status, 401);
    assert.equal((await s.api('POST', `/api/v1/users/${id}/activate`, { token: admin })).status, 200);
    assert.equal((await call(s, 'GET', '/api/v1/me', { cookie: r.cookie })).status, 401, 'still ended after reactivation');
    // removing UI access ends a session too
    const r2 = await signIn(s, 'soon-gone', PW);
    assert.equal(r2.status, 201);
    await s.api('PATCH', `/api/v1/users/${id}`, { token: admin, body: { uiAccess: false } });
    const me2 = await call(s, 'GET', '/api/v1/me', { cookie: r2.cookie });
    assert.ok(me2.status === 401 || me2.status === 403, `status ${me2.status}`);
  });

  test('the console is served with security headers; / redirects to /console/', async () => {
    const root = await fetch(s.url + '/', { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/console/');
    const page = await fetch(s.url + '/console/');
    assert.ok(page.status === 200 || page.status === 503, `status ${page.status}`);
    assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
  });
});

describe('console behind HTTPS', () => {
  test('the cookie is Secure when the public URL is https (TLS terminated in front of Gatehouse)', async () => {
    const s = await startGatehouse({ config: { publicUrl: 'https://gatehouse.example' } });
    try {
      const r = await signIn(s, 'admin', ADMIN_PASSWORD);
      assert.equal(r.status, 201);
      assert.match(r.setCookie, /; Secure/);
      assert.match(r.setCookie, /HttpOnly/);
    } finally {
      await s.close();
    }
  });

  test('sign-in is throttled like POST /auth: repeated failures lock the account (429)', async () => {
    const s = await startGatehouse({ config: { auth: { maxFailuresPerUser: 3, maxFailuresPerIp: 100, failureWindowSeconds: 900, lockoutSeconds: 60, maxLockoutSeconds: 3600 } } });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await signIn(s, 'admin', 'wrong-' + i)).status, 401);
      const locked = await signIn(s, 'admin', ADMIN_PASSWORD);
      assert.equal(locked.status, 429);
      assert.equal(locked.setCookie, '');
      assert.ok(locked.body.errorMessage.length > 0);
    } finally {
      await s.close();
    }
  });
});

describe('console without a build', () => {
  test('answers 503 saying to run npm run build:web', async () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-nodist-'));
    const s = await startGatehouse({ config: { console: { enabled: true, idleTimeoutSeconds: 1800, absoluteTimeoutSeconds: 43200, distDir: empty } } });
    try {
      const r = await fetch(s.url + '/console/');
      assert.equal(r.status, 503);
      assert.match(await r.text(), /npm run build:web/);
      const deep = await fetch(s.url + '/console/clients');
      assert.equal(deep.status, 503);
    } finally {
      await s.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
