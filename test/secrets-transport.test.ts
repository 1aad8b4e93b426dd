/**
 * Hardening (issue 10): no secret in clear anywhere — every password, client secret, JWT,
 * subscription token, session id and CSRF token issued during a run is looked for in the logs,
 * the error bodies, the audit events and the database (SQLite file + WAL, PostgreSQL tables).
 * Transport: HSTS on HTTPS only, console security headers, cookies, CORS closed.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from 'undici';
import { sql } from 'kysely';
import { startGatehouse, createUser, postForm, ADMIN_PASSWORD, STORES, type TestServer } from './helpers.ts';

for (const store of STORES) {
  describe(`secrets never in clear (${store})`, () => {
    let s: TestServer;
    before(async () => {
      s = await startGatehouse({ store });
    });
    after(async () => s?.close());

    test('logs, error bodies, audit events and every database table hold no secret or token in clear', async () => {
      const secrets: string[] = [ADMIN_PASSWORD];
      const bodies: string[] = [];
      const keep = (r: { text: string }) => (bodies.push(r.text), r);
      const admin = await s.adminToken();
      secrets.push(admin);
      const userPassword = 'Sekr3t-User-Pass-' + Math.random().toString(36).slice(2);
      const uid = await createUser(s, admin, { username: 'secret-user', password: userPassword, modules: ['VM'] });
      secrets.push(userPassword, await s.login('secret-user', userPassword));
      const newPassword = 'Rotated-Pass-' + Math.random().toString(36).slice(2);
      keep(await s.api('PATCH', `/api/v1/users/${uid}`, { token: admin, body: { password: newPassword } }));
      secrets.push(newPassword);
      // failures carrying near-miss secrets
      keep(await postForm(s.url + '/auth', { username: 'secret-user', password: newPassword + 'x', token: 'true' }));
      secrets.push(newPassword + 'x');
      keep(await s.api('GET', '/api/v1/me', { headers: { authorization: `Basic ${Buffer.from(`secret-user:${userPassword}`).toString('base64')}` } }));
      // clients: create, rotate, tokens by every path
      const c = (await s.api('POST', '/api/v1/clients', { token: admin, body: { name: 'secret-client', level: 'subscription', modules: ['VM'] } })).body;
      secrets.push(c.clientSecret);
      const rotated = (await s.api('POST', `/api/v1/clients/${c.clientId}/rotate-secret`, { token: admin })).body;
      secrets.push(rotated.clientSecret);
      keep(await fetch(s.url + '/auth/oidc', { method: 'POST', headers: { clientId: c.clientId, clientSecret: c.clientSecret } }).then(async (r) => ({ text: await r.text() })));
      secrets.push(await fetch(s.url + '/auth/oauth', { method: 'POST', headers: { clientId: c.clientId, clientSecret: rotated.clientSecret } }).then((r) => r.text()));
      const o = await postForm(s.url + '/oauth2/token', { grant_type: 'client_credentials', client_id: c.clientId, client_secret: rotated.clientSecret });
      const oauthTok = JSON.parse(o.text).access_token as string;
      secrets.push(oauthTok);
      keep(await postForm(s.url + '/oauth2/introspect', { token: oauthTok, client_id: c.clientId, client_secret: 'wrong-' + rotated.clientSecret }));
      secrets.push('wrong-' + rotated.clientSecret);
      keep(await postForm(s.url + '/oauth2/revoke', { token: oauthTok, client_id: c.clientId, client_secret: rotated.clientSecret }));
      secrets.push((await s.api('POST', `/api/v1/clients/${c.clientId}/token`, { token: admin })).body.token);
      // subscription tokens
      const st = await s.api('POST', '/qas/subscription-token', { token: admin, body: { expiry: 60 } });
      secrets.push(typeof st.body === 'string' ? st.body : st.text);
      // console session: the cookie value and the CSRF token
      const login = await fetch(s.url + '/api/v1/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }) });
      const sid = /gatehouse_session=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')![1]!;
      const csrf = ((await login.json()) as { csrfToken: string }).csrfToken;
      secrets.push(sid, csrf);
      keep(await s.api('DELETE', '/api/v1/session', { headers: { cookie: `gatehouse_session=${sid}`, 'x-csrf-token': csrf + 'x' } }));
      keep(await s.api('GET', '/api/v1/me', { token: secrets[1]! + 'x' }));

      const needles = [...new Set(secrets.filter((x) => x && x.length >= 12))];
      assert.ok(needles.length >= 14, `collected ${needles.length} secrets`);
      // a JWT is also looked for by its signature alone
      for (const t of needles.filter((x) => x.split('.').length === 3)) needles.push(t.split('.')[2]!);

      const audit = await s.api('GET', '/api/v1/audit?limit=1000', { token: admin });
      const haystacks: [string, string][] = [['logs', s.logs.text], ['error bodies', bodies.join('\n')], ['audit API', audit.text]];
      const db = s.gh.services.store;
      if (store === 'sqlite') {
        for (const f of ['gatehouse.db', 'gatehouse.db-wal']) {
          const p = path.join(s.dataDir, f);
          if (existsSync(p)) haystacks.push([f, readFileSync(p).toString('latin1')]);
        }
      } else {
        const tables = await sql<{ tablename: string }>`select tablename from pg_tables where schemaname = 'public'`.execute(db.db);
        for (const { tablename } of tables.rows) {
          const rows = await sql<{ j: string }>`select row_to_json(t)::text as j from ${sql.table(tablename)} t`.execute(db.db);
          haystacks.push([`table ${tablename}`, rows.rows.map((r) => r.j).join('\n')]);
        }
      }
      for (const [where, text] of haystacks) {
        for (const n of needles) {
          const latin = Buffer.from(n, 'utf8').toString('latin1');
          assert.ok(!text.includes(n) && !text.includes(latin), `${where} contains a secret in clear: ${n.slice(0, 12)}…`);
        }
      }
      // and what is stored instead: argon2id and SHA-256
      const users = await db.db.selectFrom('users').select(['password_hash']).execute();
      for (const u of users) assert.match(u.password_hash ?? '', /^\$argon2id\$/);
      const clients = await db.db.selectFrom('clients').select(['secret_hash']).execute();
      for (const x of clients) assert.match(x.secret_hash, /^[0-9a-f]{64}$/);
    });
  });
}

describe('transport and headers', () => {
  let dir: string;
  let tls: TestServer;
  let plain: TestServer;
  const insecure = new Agent({ connect: { rejectUnauthorized: false } });
  const get = (url: string, init: RequestInit = {}) => fetch(url, { ...init, dispatcher: insecure } as RequestInit);
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    tls = await startGatehouse({ env: { GATEHOUSE_TLS_CERT: path.join(dir, 'cert.pem'), GATEHOUSE_TLS_KEY: path.join(dir, 'key.pem') } });
    plain = await startGatehouse();
  });
  after(async () => {
    await tls?.close();
    await plain?.close();
    await insecure.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('HTTPS (GATEHOUSE_TLS_CERT/_KEY): HSTS on every response, including errors; the session cookie is Secure', async () => {
    assert.match(tls.url, /^https:/);
    for (const p of ['/health/live', '/api/v1/me', '/no/such/path', '/.well-known/jwks.json']) {
      const r = await get(tls.url + p);
      assert.equal(r.headers.get('strict-transport-security'), 'max-age=31536000; includeSubDomains', p);
    }
    const login = await get(tls.url + '/api/v1/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }) });
    assert.equal(login.status, 201);
    const cookie = login.headers.get('set-cookie') ?? '';
    assert.match(cookie, /; Secure/i);
    assert.match(cookie, /; HttpOnly/i);
    assert.match(cookie, /; SameSite=Strict/i);
  });

  test('plain HTTP: no HSTS (it would be ignored and misleading), no Secure cookie', async () => {
    const r = await fetch(plain.url + '/health/live');
    assert.equal(r.headers.get('strict-transport-security'), null);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    const login = await fetch(plain.url + '/api/v1/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }) });
    assert.doesNotMatch(login.headers.get('set-cookie') ?? '', /Secure/);
    assert.match(login.headers.get('set-cookie') ?? '', /HttpOnly/);
  });

  test('console pages carry CSP, frame, referrer and nosniff headers', async () => {
    const r = await fetch(plain.url + '/console/');
    assert.match(r.headers.get('content-security-policy') ?? '', /default-src 'none'.*frame-ancestors 'none'/);
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  });

  test('CORS closed: no Access-Control-Allow-* on any response; preflights refused', async () => {
    const admin = await plain.adminToken();
    const origin = 'https://evil.example';
    const paths: [string, string, Record<string, string>][] = [
      ['GET', '/api/v1/me', { authorization: `Bearer ${admin}` }],
      ['POST', '/auth', { 'content-type': 'application/x-www-form-urlencoded' }],
      ['POST', '/oauth2/token', { 'content-type': 'application/x-www-form-urlencoded' }],
      ['GET', '/.well-known/openid-configuration', {}],
      ['GET', '/api/2.0/fo/asset/ip/', { authorization: `Bearer ${admin}` }],
      ['GET', '/api/v1/session', {}],
    ];
    for (const [method, p, h] of paths) {
      const r = await fetch(plain.url + p, { method, headers: { ...h, origin }, ...(method === 'POST' ? { body: 'x=1' } : {}) });
      await r.arrayBuffer();
      for (const k of r.headers.keys()) assert.ok(!k.startsWith('access-control-allow'), `${method} ${p}: ${k}`);
      const pre = await fetch(plain.url + p, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization' } });
      assert.equal(pre.status, 403, `preflight ${p}`);
      for (const k of pre.headers.keys()) assert.ok(!k.startsWith('access-control-allow'), `preflight ${p}: ${k}`);
    }
  });
});
