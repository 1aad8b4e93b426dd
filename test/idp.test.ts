import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRemoteJWKSet, jwtVerify, decodeJwt, decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { STORES, startGatehouse, createUser, postForm, type TestServer } from './helpers.ts';
import { TestIdp, IDP_AUDIENCE, otherKey } from './idp-provider.ts';
import { idpsConfigSchema } from '../src/idp/config-schema.ts';

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const AT = 'urn:ietf:params:oauth:token-type:access_token';
const IDT = 'urn:ietf:params:oauth:token-type:id_token';

/** Loopback IdPs speak plain http; the short JWKS cooldown keeps rotation tests quick. */
const testIdpSettings = (extra: Record<string, unknown> = {}) => idpsConfigSchema.parse({ allowHttp: true, jwksCooldownSeconds: 1, ...extra });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function exchange(s: TestServer, fields: Record<string, string>) {
  return postForm(s.url + '/oauth2/token', { grant_type: EXCHANGE, ...fields });
}

const CLIENTS = {
  'alice-cli': { preferred_username: 'alice' },
  'sso-cli': { preferred_username: 'sso-bob' },
  'ghost-cli': { preferred_username: 'nobody-here' },
  'mail-cli': { email: 'Carol@Example.com' },
  'dave-cli': { preferred_username: 'dave' },
  'noapi-cli': { preferred_username: 'erin' },
  'mods-cli': { preferred_username: 'alice', gh_modules: 'vm PM' },
};

describe('external IdP tokens (sqlite, real OpenID provider)', () => {
  let s: TestServer;
  let idp: TestIdp;
  let admin: string;
  let idpId: string;

  before(async () => {
    idp = await TestIdp.start(CLIENTS);
    s = await startGatehouse({ store: 'sqlite', config: { idps: testIdpSettings() } });
    admin = await s.adminToken();
    await createUser(s, admin, { username: 'alice', modules: ['VM', 'WAS'] });
    await createUser(s, admin, { username: 'sso-bob', ssoEnabled: true, modules: ['VM'] });
    await createUser(s, admin, { username: 'carol', email: 'carol@example.com', modules: ['PC'] });
    await createUser(s, admin, { username: 'dave', modules: ['VM'] });
    await createUser(s, admin, { username: 'erin', apiAccess: false, modules: ['VM'] });
    const r = await s.api('POST', '/api/v1/idps', { token: admin, body: { name: 'Test IdP', issuer: idp.issuer, audiences: [IDP_AUDIENCE], algorithms: ['ES256'] } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.discoveredJwksUri, `${idp.issuer}/jwks`);
    idpId = r.body.id;
  });
  after(async () => {
    await s?.close();
    await idp?.close();
  });

  test("a token from the provider's token endpoint is accepted as Bearer at /api/v1/me, as the mapped user", async () => {
    const t = await idp.token('alice-cli');
    assert.equal(decodeProtectedHeader(t).typ, 'at+jwt');
    const me = await s.api('GET', '/api/v1/me', { token: t });
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.kind, 'user');
    assert.equal(me.body.authMethod, 'idp');
    assert.equal(me.body.user.username, 'alice');
    assert.deepEqual(me.body.modules, ['VM', 'WAS']);
    assert.equal(me.body.tokenId, decodeJwt(t).jti);
  });

  test('token exchange (RFC 8693) with a stock OAuth client: IdP token in, 4-hour Gatehouse JWT out, usable everywhere', async () => {
    const subject = await idp.token('alice-cli');
    const config = await oidc.discovery(new URL(s.url), 'any-client', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const r = await oidc.genericGrantRequest(config, EXCHANGE, { subject_token: subject, subject_token_type: AT });
    assert.equal(r.token_type, 'bearer');
    assert.equal(r.issued_token_type, AT);
    assert.equal(r.expires_in, 4 * 3600);
    const jwks = createRemoteJWKSet(new URL(s.url + '/.well-known/jwks.json'));
    const { payload } = await jwtVerify(r.access_token, jwks, { issuer: s.url, audience: 'gatehouse' });
    assert.equal(payload.exp! - payload.iat!, 4 * 3600);
    assert.equal(payload.auth_method, 'idp');
    assert.equal(payload.username, 'alice');
    const me = await s.api('GET', '/api/v1/me', { token: r.access_token });
    assert.equal(me.status, 200);
    assert.equal(me.body.authMethod, 'idp');
    assert.equal(me.body.user.username, 'alice');

    // id_token and jwt subject types are accepted too (the provider's JWT stands in for an ID token).
    const raw = await exchange(s, { subject_token: subject, subject_token_type: IDT });
    assert.equal(raw.status, 200, raw.text);
    assert.equal(raw.headers.get('cache-control'), 'no-store');
    assert.equal(JSON.parse(raw.text).token_type, 'Bearer');
  });

  test('token exchange errors are RFC 6749 JSON with a reason', async () => {
    const subject = await idp.token('alice-cli');
    const noType = await exchange(s, { subject_token: subject });
    assert.equal(noType.status, 400);
    assert.equal(JSON.parse(noType.text).error, 'invalid_request');
    assert.match(JSON.parse(noType.text).error_description, /subject_token_type/);
    const saml = await exchange(s, { subject_token: subject, subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' });
    assert.equal(saml.status, 400);
    const garbage = await exchange(s, { subject_token: 'not-a-jwt', subject_token_type: AT });
    assert.equal(garbage.status, 400);
    assert.match(JSON.parse(garbage.text).error_description, /not a JWT/);
    const ghost = await exchange(s, { subject_token: await idp.token('ghost-cli'), subject_token_type: AT });
    assert.equal(ghost.status, 400);
    assert.match(JSON.parse(ghost.text).error_description, /no Gatehouse user .*nobody-here/);
    const own = await exchange(s, { subject_token: admin, subject_token_type: AT });
    assert.equal(own.status, 400);
    assert.match(JSON.parse(own.text).error_description, /Gatehouse token/);
    const grant = await postForm(s.url + '/oauth2/token', { grant_type: 'password', username: 'a', password: 'b' });
    assert.equal(grant.status, 400);
    assert.equal(JSON.parse(grant.text).error, 'unsupported_grant_type');
    const json = await fetch(s.url + '/oauth2/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(json.status, 400);
    assert.equal((await json.json()).error, 'invalid_request');
  });

  test("capToSubjectExpiry: the exchanged token lives no longer than the IdP token", async () => {
    assert.equal((await s.api('PATCH', `/api/v1/idps/${idpId}`, { token: admin, body: { capToSubjectExpiry: true } })).status, 200);
    const subject = await idp.token('alice-cli');
    const r = await exchange(s, { subject_token: subject, subject_token_type: AT });
    assert.equal(r.status, 200, r.text);
    const body = JSON.parse(r.text);
    assert.ok(body.expires_in <= 600 && body.expires_in > 500, String(body.expires_in));
    assert.ok(decodeJwt(body.access_token).exp! <= decodeJwt(subject).exp!);
    assert.equal((await s.api('PATCH', `/api/v1/idps/${idpId}`, { token: admin, body: { capToSubjectExpiry: false } })).status, 200);
  });

  test('key rotation at the IdP is picked up without restart; unknown kids refetch the JWKS at a bounded rate', async () => {
    assert.equal((await s.api('GET', '/api/v1/me', { token: await idp.token('alice-cli') })).status, 200);
    const newKid = await idp.rotate();
    await sleep(1100); // past the (test) JWKS cooldown since the last fetch
    const t = await idp.token('alice-cli');
    assert.equal(decodeProtectedHeader(t).kid, newKid);
    const me = await s.api('GET', '/api/v1/me', { token: t });
    assert.equal(me.status, 200, me.text);

    // A burst of tokens naming unknown kids costs at most one more JWKS fetch per cooldown.
    const hits = idp.jwksHits;
    const stranger = await otherKey();
    for (let i = 0; i < 8; i++) {
      const forged = await idp.sign({ preferred_username: 'alice' }, { key: stranger, kid: `unknown-${i}` });
      const r = await s.api('GET', '/api/v1/me', { token: forged });
      assert.equal(r.status, 401);
      assert.match(r.body.errorMessage, /no key in the identity provider's JWKS/);
    }
    assert.ok(idp.jwksHits - hits <= 1, `JWKS fetched ${idp.jwksHits - hits} times`);
  });

  test('a token signed by a different key under the IdP\'s own kid is refused', async () => {
    const forged = await idp.sign({ preferred_username: 'alice' }, { key: await otherKey(), kid: idp.keys[0]!.kid });
    const r = await s.api('GET', '/api/v1/me', { token: forged });
    assert.equal(r.status, 401);
    assert.match(r.body.errorMessage, /signature is invalid/);
    assert.match(r.headers.get('www-authenticate')!, /invalid_token/);
    const x = await exchange(s, { subject_token: forged, subject_token_type: AT });
    assert.equal(x.status, 400);
  });

  test('unknown issuer → 401 naming it', async () => {
    const stranger = await otherKey();
    const now = Math.floor(Date.now() / 1000);
    const t = await idp.sign({ iss: 'https://evil.example/', preferred_username: 'alice', exp: now + 60 }, { key: stranger, kid: 'x' });
    const r = await s.api('GET', '/api/v1/me', { token: t });
    assert.equal(r.status, 401);
    assert.match(r.body.errorMessage, /issuer 'https:\/\/evil\.example\/' is not a trusted identity provider/);
    assert.match(r.headers.get('www-authenticate')!, /not a trusted identity provider/);
  });

  test('a token mapped to no user → 401 naming the claim', async () => {
    const r = await s.api('GET', '/api/v1/me', { token: await idp.token('ghost-cli') });
    assert.equal(r.status, 401);
    assert.match(r.body.errorMessage, /no Gatehouse user of this subscription matches the token's preferred_username 'nobody-here'/);
    const none = await s.api('GET', '/api/v1/me', { token: await idp.sign({ sub: 'x' }) });
    assert.equal(none.status, 401);
    assert.match(none.body.errorMessage, /no preferred_username or email claim/);
  });

  test('the email claim maps when preferred_username is absent (case-insensitively)', async () => {
    const r = await s.api('GET', '/api/v1/me', { token: await idp.token('mail-cli') });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.user.username, 'carol');
  });

  test('a deactivated user is refused, for IdP tokens and for Gatehouse tokens exchanged from them', async () => {
    const subject = await idp.token('dave-cli');
    const ex = JSON.parse((await exchange(s, { subject_token: subject, subject_token_type: AT })).text).access_token as string;
    assert.equal((await s.api('GET', '/api/v1/me', { token: ex })).status, 200);
    const users = (await s.api('GET', '/api/v1/users', { token: admin })).body.users as Array<{ id: string; username: string }>;
    const dave = users.find((u) => u.username === 'dave')!;
    assert.equal((await s.api('POST', `/api/v1/users/${dave.id}/deactivate`, { token: admin })).status, 200);
    for (const t of [subject, ex]) {
      const r = await s.api('GET', '/api/v1/me', { token: t });
      assert.equal(r.status, 401);
      assert.match(r.body.errorMessage, /deactivated/);
    }
    const again = await exchange(s, { subject_token: subject, subject_token_type: AT });
    assert.equal(again.status, 400);
    assert.match(JSON.parse(again.text).error_description, /deactivated/);
  });

  test('a user without API access is refused with the reason', async () => {
    const r = await s.api('GET', '/api/v1/me', { token: await idp.token('noapi-cli') });
    assert.equal(r.status, 403);
    assert.match(r.body.errorMessage, /API Access/);
  });

  test('an algorithm the IdP entry does not allow is refused', async () => {
    const t = await idp.token('alice-cli');
    assert.equal((await s.api('PATCH', `/api/v1/idps/${idpId}`, { token: admin, body: { algorithms: ['RS256'] } })).status, 200);
    const r = await s.api('GET', '/api/v1/me', { token: t });
    assert.equal(r.status, 401);
    assert.match(r.body.errorMessage, /algorithm is not allowed .*RS256/);
    assert.equal((await s.api('PATCH', `/api/v1/idps/${idpId}`, { token: admin, body: { algorithms: ['ES256'] } })).status, 200);
    assert.equal((await s.api('GET', '/api/v1/me', { token: t })).status, 200);
  });

  test('claim checks: expired, not yet valid, wrong audience, no exp', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ preferred_username: 'alice', iat: now - 900, exp: now - 300 }, /expired/],
      [{ preferred_username: 'alice', nbf: now + 600 }, /not valid yet/],
      [{ preferred_username: 'alice', aud: 'someone-else' }, /audience/],
      [{ preferred_username: 'alice', exp: undefined }, /exp/],
    ];
    for (const [claims, why] of cases) {
      const r = await s.api('GET', '/api/v1/me', { token: await idp.sign(claims) });
      assert.equal(r.status, 401, JSON.stringify(claims));
      assert.match(r.body.errorMessage, why);
    }
  });

  test('SSO users: password API auth refused, IdP token accepted', async () => {
    const pw = await postForm(s.url + '/auth', { username: 'sso-bob', password: 'User-Pass-123!', token: 'true' });
    assert.equal(pw.status, 403);
    assert.match(JSON.parse(pw.text).errorMessage, /SSO/);
    const t = await idp.token('sso-cli');
    const me = await s.api('GET', '/api/v1/me', { token: t });
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.user.username, 'sso-bob');
    const ex = await exchange(s, { subject_token: t, subject_token_type: AT });
    assert.equal(ex.status, 200);
    assert.equal((await s.api('GET', '/api/v1/me', { token: JSON.parse(ex.text).access_token })).status, 200);
  });

  test('modules claim is intersected with the user\'s own; absent claim grants none', async () => {
    assert.equal((await s.api('PATCH', `/api/v1/idps/${idpId}`, { token: admin, body: { modulesClaim: 'gh_modules' } })).status, 200);
    const withClaim = await s.api('GET', '/api/v1/me', { token: await idp.token('mods-cli') });
    assert.deepEqual(withClaim.body.modules, ['VM']);
    const ex = JSON.parse((await exchange(s, { subject_token: await idp.token('mods-cli'), subject_token_type: AT })).text).access_token;
    assert.deepEqual((await s.api('GET', '/api/v1/me', { token: ex })).body.modules, ['VM']);
    const without = await s.api('GET', '/api/v1/me', { token: await idp.token('alice-cli') });
    assert.deepEqual(without.body.modules, []);
    assert.equal((await s.api('PATCH', `/api/v1/idps/${idpId}`, { token: admin, body: { modulesClaim: null } })).status, 200);
  });

  test('allowApiTokens=false: Bearer use refused with a pointer to exchange; exchange still works', async () => {
    assert.equal((await s.api('PATCH', `/api/v1/idps/${idpId}`, { token: admin, body: { allowApiTokens: false } })).status, 200);
    const t = await idp.token('alice-cli');
    const r = await s.api('GET', '/api/v1/me', { token: t });
    assert.equal(r.status, 401);
    assert.match(r.body.errorMessage, /not accepted as Bearer tokens; exchange them at POST \/oauth2\/token/);
    assert.equal((await exchange(s, { subject_token: t, subject_token_type: AT })).status, 200);
    assert.equal((await s.api('PATCH', `/api/v1/idps/${idpId}`, { token: admin, body: { allowApiTokens: true, allowExchange: false } })).status, 200);
    const x = await exchange(s, { subject_token: t, subject_token_type: AT });
    assert.equal(x.status, 400);
    assert.match(JSON.parse(x.text).error_description, /token exchange is not enabled/);
    assert.equal((await s.api('PATCH', `/api/v1/idps/${idpId}`, { token: admin, body: { allowExchange: true } })).status, 200);
  });

  test('removing the IdP revokes its tokens and the Gatehouse tokens exchanged from them; no token is logged', async () => {
    const t = await idp.token('alice-cli');
    const ex = JSON.parse((await exchange(s, { subject_token: t, subject_token_type: AT })).text).access_token as string;
    assert.equal((await s.api('GET', '/api/v1/me', { token: ex })).status, 200);
    assert.equal((await s.api('DELETE', `/api/v1/idps/${idpId}`, { token: admin })).status, 204);
    const a = await s.api('GET', '/api/v1/me', { token: t });
    assert.equal(a.status, 401);
    assert.match(a.body.errorMessage, /not a trusted identity provider/);
    const b = await s.api('GET', '/api/v1/me', { token: ex });
    assert.equal(b.status, 401);
    assert.match(b.body.errorMessage, /no longer trusted/);
    for (const secret of [t, ex, t.split('.')[2]!, ex.split('.')[2]!]) assert.ok(!s.logs.text.includes(secret), 'a token reached the logs');
    const audit = await s.api('GET', '/api/v1/audit?action=idp.token_exchange', { token: admin });
    assert.ok(audit.body.events.length > 0);
    assert.ok(!JSON.stringify(audit.body).includes(t.split('.')[2]!));
  });
});

for (const store of STORES) {
  describe(`IdP management API (${store})`, () => {
    let s: TestServer;
    let idp: TestIdp;
    let admin: string;
    before(async () => {
      idp = await TestIdp.start({ 'alice-cli': { preferred_username: 'alice' } });
      s = await startGatehouse({ store, config: { idps: testIdpSettings() } });
      admin = await s.adminToken();
    });
    after(async () => {
      await s?.close();
      await idp?.close();
    });

    test('create (with discovery), list, get, patch, delete; managers only, own subscription', async () => {
      const c = await s.api('POST', '/api/v1/idps', { token: admin, body: { issuer: idp.issuer, audiences: [IDP_AUDIENCE] } });
      assert.equal(c.status, 201, c.text);
      assert.equal(c.body.name, new URL(idp.issuer).host);
      assert.equal(c.body.jwksUri, null);
      assert.equal(c.body.discoveredJwksUri, `${idp.issuer}/jwks`);
      assert.deepEqual(c.body.algorithms, ['RS256', 'ES256']);
      assert.equal(c.body.userClaim, null);
      assert.equal(c.body.allowApiTokens, true);
      assert.equal(c.body.allowExchange, true);
      const id = c.body.id as string;
      const list = await s.api('GET', '/api/v1/idps', { token: admin });
      assert.equal(list.status, 200);
      assert.deepEqual(list.body.idps.map((i: { id: string }) => i.id), [id]);
      const p = await s.api('PATCH', `/api/v1/idps/${id}`, { token: admin, body: { userClaim: 'email', audiences: ['a', 'b'], jwksUri: `${idp.issuer}/jwks` } });
      assert.equal(p.status, 200, p.text);
      assert.equal(p.body.userClaim, 'email');
      assert.deepEqual(p.body.audiences, ['a', 'b']);
      assert.equal((await s.api('GET', `/api/v1/idps/${id}`, { token: admin })).body.jwksUri, `${idp.issuer}/jwks`);
      const dup = await s.api('POST', '/api/v1/idps', { token: admin, body: { issuer: idp.issuer, audiences: ['x'] } });
      assert.equal(dup.status, 409);

      await createUser(s, admin, { username: `plain-${store}` });
      const plain = await s.login(`plain-${store}`, 'User-Pass-123!');
      assert.equal((await s.api('GET', '/api/v1/idps', { token: plain })).status, 403);
      assert.equal((await s.api('POST', '/api/v1/idps', { token: plain, body: { issuer: idp.issuer, audiences: ['x'] } })).status, 403);
      // A manager of another subscription sees nothing of ours.
      await s.gh.services.users.createSubscription(`other-${store}`, { username: `other-mgr-${store}`, password: 'Other-Pass-123!' });
      const other = await s.login(`other-mgr-${store}`, 'Other-Pass-123!');
      assert.deepEqual((await s.api('GET', '/api/v1/idps', { token: other })).body.idps, []);
      assert.equal((await s.api('GET', `/api/v1/idps/${id}`, { token: other })).status, 404);
      assert.equal((await s.api('DELETE', `/api/v1/idps/${id}`, { token: other })).status, 404);

      assert.equal((await s.api('DELETE', `/api/v1/idps/${id}`, { token: admin })).status, 204);
      assert.equal((await s.api('GET', `/api/v1/idps/${id}`, { token: admin })).status, 404);
      const audit = await s.api('GET', '/api/v1/audit?action=idp.create', { token: admin });
      assert.equal(audit.body.events.length, 1);
    });

    test('bad input is a 400 that says what to fix', async () => {
      const bad: Array<[Record<string, unknown>, RegExp]> = [
        [{ issuer: idp.issuer, audiences: ['a'], algorithms: ['HS256'] }, /HS256.*never accepted/],
        [{ issuer: idp.issuer, audiences: ['a'], algorithms: ['none'] }, /none.*never accepted/],
        [{ issuer: idp.issuer, audiences: [] }, /audiences/],
        [{ issuer: 'not a url', audiences: ['a'] }, /'issuer' is not a valid URL/],
        [{ issuer: 'http://127.0.0.1:1/nothing', audiences: ['a'] }, /discovery failed/],
        [{ issuer: `${idp.issuer}/`, audiences: ['a'] }, /issuer must match exactly/],
        [{ issuer: idp.issuer, audiences: ['a'], surprise: 1 }, /unknown field 'surprise'/],
        [{ issuer: s.url, audiences: ['a'], jwksUri: `${s.url}/.well-known/jwks.json` }, /Gatehouse's own issuer/],
      ];
      for (const [body, why] of bad) {
        const r = await s.api('POST', '/api/v1/idps', { token: admin, body });
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.match(r.body.errorMessage, why);
      }
    });
  });
}

describe('IdP trust from the config file, https rule, and the CLI (sqlite)', () => {
  let idp: TestIdp;
  before(async () => {
    idp = await TestIdp.start({ 'alice-cli': { preferred_username: 'admin' } });
  });
  after(async () => idp?.close());

  test('YAML idps entries name a subscription; tokens work without API setup; the API cannot change them', async () => {
    const dead = 'http://127.0.0.1:9/dead-idp';
    const settings = testIdpSettings({ trusted: [
      { subscription: 'Default subscription', issuer: idp.issuer, audiences: [IDP_AUDIENCE], algorithms: ['ES256'] },
      { subscription: 'Default subscription', issuer: dead, jwksUri: 'http://127.0.0.1:9/jwks', audiences: [IDP_AUDIENCE], algorithms: ['ES256'] },
    ] });
    const s = await startGatehouse({ store: 'sqlite', config: { idps: settings } });
    try {
      const me = await s.api('GET', '/api/v1/me', { token: await idp.token('alice-cli') });
      assert.equal(me.status, 200, me.text);
      assert.equal(me.body.user.username, 'admin');
      // An IdP whose keys cannot be fetched: 503, not a verdict on the token.
      const unreachable = await s.api('GET', '/api/v1/me', { token: await idp.sign({ iss: dead, preferred_username: 'admin' }, { key: await otherKey() }) });
      assert.equal(unreachable.status, 503, unreachable.text);
      assert.match(unreachable.body.errorMessage, /could not be fetched/);
      const admin = await s.adminToken();
      const list = await s.api('GET', '/api/v1/idps', { token: admin });
      assert.equal(list.body.idps.length, 2);
      assert.equal(list.body.idps[0].source, 'config');
      const p = await s.api('PATCH', `/api/v1/idps/${list.body.idps[0].id}`, { token: admin, body: { allowExchange: false } });
      assert.equal(p.status, 409);
      assert.match(p.body.errorMessage, /config file/);
    } finally {
      await s.close();
    }
    assert.throws(() => idpsConfigSchema.parse({ trusted: [{ subscription: 'x', issuer: idp.issuer }] }), /audiences/);
    await assert.rejects(
      startGatehouse({ store: 'sqlite', config: { idps: testIdpSettings({ trusted: [{ subscription: 'nope', issuer: idp.issuer, audiences: ['a'] }] }) } }),
      /idps\.trusted\[0\]\.subscription.*no subscription 'nope'/,
    );
    await assert.rejects(
      startGatehouse({ store: 'sqlite', config: { idps: testIdpSettings({ trusted: [{ subscription: 'Default subscription', issuer: idp.issuer, audiences: ['a'], algorithms: ['HS256'] }] }) } }),
      /HS256/,
    );
  });

  test('without idps.allowHttp, http issuers are refused', async () => {
    const s = await startGatehouse({ store: 'sqlite' });
    try {
      const r = await s.api('POST', '/api/v1/idps', { token: await s.adminToken(), body: { issuer: idp.issuer, audiences: ['a'] } });
      assert.equal(r.status, 400);
      assert.match(r.body.errorMessage, /https.*idps\.allowHttp/);
    } finally {
      await s.close();
    }
  });

  test('gatehouse idp add | list | remove', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-idp-cli-'));
    const cfg = path.join(dir, 'gatehouse.yaml');
    writeFileSync(cfg, 'idps:\n  allowHttp: true\n');
    const env = { ...process.env, GATEHOUSE_DATA_DIR: dir, GATEHOUSE_CONFIG: cfg, GATEHOUSE_ADMIN_PASSWORD: 'Admin-Pass-123!' };
    // Asynchronous: the IdP answering the CLI's discovery request lives in this process.
    const cli = (...args: string[]) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['bin/gatehouse.mjs', ...args], { env, encoding: 'utf8' }, (err, stdout, stderr) =>
          resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
      });
    try {
      const first = await startGatehouse({ dataDir: dir, store: 'sqlite' }); // bootstrap the subscription
      await first.stop();
      const add = await cli('--json', 'idp', 'add', '--issuer', idp.issuer, '--audience', IDP_AUDIENCE, '--algorithms', 'ES256', '--no-api-tokens');
      assert.equal(add.status, 0, add.stderr);
      const created = JSON.parse(add.stdout);
      assert.equal(created.allowApiTokens, false);
      assert.equal(created.discoveredJwksUri, `${idp.issuer}/jwks`);
      const list = await cli('idp', 'list');
      assert.match(list.stdout, new RegExp(`${created.id}.*exchange:y`));
      const hs = await cli('idp', 'add', '--issuer', 'https://x.example', '--audience', 'a', '--algorithms', 'HS256');
      assert.notEqual(hs.status, 0);
      assert.match(hs.stderr, /HS256/);
      const rm = await cli('idp', 'remove', idp.issuer);
      assert.equal(rm.status, 0, rm.stderr);
      assert.match((await cli('idp', 'list')).stdout, /\(none\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
