import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRemoteJWKSet, jwtVerify, decodeJwt } from 'jose';
import { STORES, startGatehouse, createUser, postForm, ADMIN_PASSWORD, type TestServer } from './helpers.ts';

for (const store of STORES) {
  describe(`POST /auth (${store})`, () => {
    let s: TestServer;
    before(async () => {
      s = await startGatehouse({ store });
    });
    after(async () => s?.close());

    test('the spec curl: form username/password/token=true → 201, JWT as text/plain, 4 hours, verifies against the JWKS', async () => {
      const r = await postForm(s.url + '/auth', { username: 'admin', password: ADMIN_PASSWORD, token: 'true', permissions: 'true' }, { authorization: 'Basic Zm9vOmJhcg==' });
      assert.equal(r.status, 201);
      assert.match(r.headers.get('content-type')!, /^text\/plain/);
      const jwks = createRemoteJWKSet(new URL(s.url + '/.well-known/jwks.json'));
      const { payload, protectedHeader } = await jwtVerify(r.text, jwks, { issuer: s.url, audience: 'gatehouse' });
      assert.equal(protectedHeader.alg, 'ES256');
      assert.ok(protectedHeader.kid);
      assert.equal(payload.exp! - payload.iat!, 4 * 3600);
      assert.equal(payload.username, 'admin');
      assert.equal(payload.auth_method, 'password');
      assert.ok(payload.jti && payload.sub && payload.subscription_id);
      const disco = await s.api('GET', '/.well-known/openid-configuration');
      assert.equal(disco.body.issuer, s.url);
    });

    test('wrong password and unknown user get the same 401 message', async () => {
      const a = await postForm(s.url + '/auth', { username: 'admin', password: 'nope-nope', token: 'true' });
      const b = await postForm(s.url + '/auth', { username: 'nobody-here', password: 'nope-nope', token: 'true' });
      assert.equal(a.status, 401);
      assert.equal(b.status, 401);
      assert.equal(JSON.parse(a.text).errorMessage, JSON.parse(b.text).errorMessage);
      assert.equal(JSON.parse(a.text).errorMessage, 'Invalid username or password.');
    });

    test('missing token=true, missing fields and a wrong content type are 400 with a message', async () => {
      const noToken = await postForm(s.url + '/auth', { username: 'admin', password: ADMIN_PASSWORD });
      assert.equal(noToken.status, 400);
      assert.match(JSON.parse(noToken.text).errorMessage, /token/);
      const noPw = await postForm(s.url + '/auth', { username: 'admin', token: 'true' });
      assert.equal(noPw.status, 400);
      const json = await fetch(s.url + '/auth', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD, token: 'true' }) });
      assert.equal(json.status, 400);
      assert.match((await json.json()).errorMessage, /application\/x-www-form-urlencoded/);
      const none = await fetch(s.url + '/auth', { method: 'POST' });
      assert.equal(none.status, 400);
    });

    test('an SSO user and a user without API access get 403 with their reasons', async () => {
      const admin = await s.adminToken();
      await createUser(s, admin, { username: `sso-${store}`, ssoEnabled: true, password: 'User-Pass-123!' });
      await createUser(s, admin, { username: `noapi-${store}`, apiAccess: false });
      const sso = await postForm(s.url + '/auth', { username: `sso-${store}`, password: 'User-Pass-123!', token: 'true' });
      assert.equal(sso.status, 403);
      assert.match(JSON.parse(sso.text).errorMessage, /does not support SSO/);
      const noapi = await postForm(s.url + '/auth', { username: `noapi-${store}`, password: 'User-Pass-123!', token: 'true' });
      assert.equal(noapi.status, 403);
      assert.match(JSON.parse(noapi.text).errorMessage, /API Access/);
    });

    test('deactivation kills the user\'s existing tokens at once; reactivation revives unexpired ones', async () => {
      const admin = await s.adminToken();
      const id = await createUser(s, admin, { username: `deact-${store}`, modules: ['VM'] });
      const t = await s.login(`deact-${store}`, 'User-Pass-123!');
      assert.equal((await s.api('GET', '/api/v1/me', { token: t })).status, 200);
      assert.equal((await s.api('POST', `/api/v1/users/${id}/deactivate`, { token: admin })).status, 200);
      const me = await s.api('GET', '/api/v1/me', { token: t });
      assert.equal(me.status, 401);
      assert.match(me.headers.get('www-authenticate')!, /invalid_token/);
      const relog = await postForm(s.url + '/auth', { username: `deact-${store}`, password: 'User-Pass-123!', token: 'true' });
      assert.equal(relog.status, 401);
      assert.match(JSON.parse(relog.text).errorMessage, /deactivated/);
      assert.equal((await s.api('POST', `/api/v1/users/${id}/activate`, { token: admin })).status, 200);
      assert.equal((await s.api('GET', '/api/v1/me', { token: t })).status, 200);
    });

    test('a permission change applies to existing tokens', async () => {
      const admin = await s.adminToken();
      const id = await createUser(s, admin, { username: `perm-${store}`, modules: ['VM'] });
      const t = await s.login(`perm-${store}`, 'User-Pass-123!');
      assert.deepEqual((await s.api('GET', '/api/v1/me', { token: t })).body.modules, ['VM']);
      await s.api('PATCH', `/api/v1/users/${id}`, { token: admin, body: { modules: ['VM', 'WAS'] } });
      assert.deepEqual((await s.api('GET', '/api/v1/me', { token: t })).body.modules, ['VM', 'WAS']);
    });
  });
}

describe('lockout', () => {
  let s: TestServer;
  before(async () => {
    s = await startGatehouse({ config: { auth: { maxFailuresPerUser: 10, maxFailuresPerIp: 1000, failureWindowSeconds: 900, lockoutSeconds: 2, maxLockoutSeconds: 60 } } as any });
  });
  after(async () => s?.close());

  test('20 wrong passwords lock the account; the right one is refused until the back-off ends; a manager can unlock', async () => {
    const admin = await s.adminToken();
    const id = await createUser(s, admin, { username: 'victim' });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await postForm(s.url + '/auth', { username: 'victim', password: `wrong-${i}`, token: 'true' })).status);
    assert.ok(statuses.slice(0, 10).every((x) => x === 401));
    assert.ok(statuses.slice(10).every((x) => x === 429), `after lockout every attempt is 429: ${statuses.join(',')}`);
    const right = await postForm(s.url + '/auth', { username: 'victim', password: 'User-Pass-123!', token: 'true' });
    assert.equal(right.status, 429);
    assert.ok(Number(right.headers.get('retry-after')) >= 1);
    assert.match(JSON.parse(right.text).errorMessage, /Too many failed login attempts/);
    const user = await s.api('GET', `/api/v1/users/${id}`, { token: admin });
    assert.equal(user.body.locked, true);
    // wait out the back-off (2 s in this configuration)
    await new Promise((r) => setTimeout(r, 2200));
    assert.equal((await postForm(s.url + '/auth', { username: 'victim', password: 'User-Pass-123!', token: 'true' })).status, 201);
    // lock again, then the manager unlocks
    for (let i = 0; i < 10; i++) await postForm(s.url + '/auth', { username: 'victim', password: `wrong-${i}`, token: 'true' });
    assert.equal((await postForm(s.url + '/auth', { username: 'victim', password: 'User-Pass-123!', token: 'true' })).status, 429);
    assert.equal((await s.api('POST', `/api/v1/users/${id}/unlock`, { token: admin })).status, 204);
    assert.equal((await postForm(s.url + '/auth', { username: 'victim', password: 'User-Pass-123!', token: 'true' })).status, 201);
    const audit = await s.api('GET', '/api/v1/audit?action=user.locked', { token: admin });
    assert.ok(audit.body.events.length >= 1);
    assert.ok(!JSON.stringify(audit.body).includes('wrong-'), 'attempted passwords never reach the audit log');
  });

  test('an unknown username locks the same way (no enumeration through lockout)', async () => {
    for (let i = 0; i < 10; i++) await postForm(s.url + '/auth', { username: 'ghost', password: `wrong-${i}`, token: 'true' });
    const r = await postForm(s.url + '/auth', { username: 'ghost', password: 'x-wrong', token: 'true' });
    assert.equal(r.status, 429);
  });
});

test('the password never reaches the logs', async () => {
  const s = await startGatehouse();
  try {
    await s.adminToken();
    await postForm(s.url + '/auth', { username: 'admin', password: 'Leaky-Secret-987', token: 'true' });
    assert.ok(!s.logs.text.includes(ADMIN_PASSWORD));
    assert.ok(!s.logs.text.includes('Leaky-Secret-987'));
    assert.ok(s.logs.text.length > 0);
  } finally {
    await s.close();
  }
});

test('decodeJwt sanity: the token carries no password', async () => {
  const s = await startGatehouse();
  try {
    const t = await s.adminToken();
    assert.ok(!JSON.stringify(decodeJwt(t)).includes(ADMIN_PASSWORD));
  } finally {
    await s.close();
  }
});
