import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from 'jose';
import { STORES, startGatehouse, createUser, postForm, type TestServer } from './helpers.ts';

async function createClient(s: TestServer, token: string, body: Record<string, unknown>) {
  const r = await s.api('POST', '/api/v1/clients', { token, body });
  if (r.status !== 201) throw new Error(`create client failed: ${r.status} ${r.text}`);
  return r.body as { clientId: string; clientSecret: string };
}

const basic = (id: string, secret: string) =>
  'Basic ' + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64');

for (const store of STORES) {
  describe(`standard OAuth 2.0 endpoints (${store})`, () => {
    let s: TestServer;
    let admin: string;
    before(async () => {
      s = await startGatehouse({ store });
      admin = await s.adminToken();
    });
    after(async () => s?.close());

    test('openid-client (stock): discovery, client_credentials, introspection, revocation; the revoked token is refused everywhere', async () => {
      const c = await createClient(s, admin, { name: 'stock-client', level: 'subscription', modules: ['VM', 'WAS'] });
      for (const [algorithm, auth] of [['oidc', oidc.ClientSecretBasic(c.clientSecret)], ['oauth2', oidc.ClientSecretPost(c.clientSecret)]] as const) {
        const config = await oidc.discovery(new URL(s.url), c.clientId, undefined, auth, {
          algorithm,
          execute: [oidc.allowInsecureRequests], // plain http on 127.0.0.1 in tests
        });
        assert.equal(config.serverMetadata().issuer, s.url);
        const tokens = await oidc.clientCredentialsGrant(config, { scope: 'VM' });
        assert.equal(tokens.token_type.toLowerCase(), 'bearer');
        assert.equal(tokens.expires_in, 4 * 3600);
        assert.equal(tokens.scope, 'VM');
        // RFC 9068 JWT access token
        assert.equal(decodeProtectedHeader(tokens.access_token).typ, 'at+jwt');
        const jwks = createRemoteJWKSet(new URL(s.url + '/.well-known/jwks.json'));
        const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: s.url, audience: 'gatehouse', typ: 'at+jwt' });
        assert.equal(payload.client_id, c.clientId);
        assert.equal(payload.sub, c.clientId);
        assert.equal(payload.scope, 'VM');
        assert.ok(payload.jti && payload.iat && payload.exp);
        // the scope narrows what the token may do
        const me = await s.api('GET', '/api/v1/me', { token: tokens.access_token });
        assert.equal(me.status, 200);
        assert.deepEqual(me.body.modules, ['VM']);

        const info = await oidc.tokenIntrospection(config, tokens.access_token);
        assert.equal(info.active, true);
        assert.equal(info.client_id, c.clientId);
        assert.equal(info.scope, 'VM');
        assert.equal(info.sub, c.clientId);
        assert.equal(info.iss, s.url);

        await oidc.tokenRevocation(config, tokens.access_token);
        const after = await s.api('GET', '/api/v1/me', { token: tokens.access_token });
        assert.equal(after.status, 401);
        assert.match(after.body.errorMessage, /revoked/);
        assert.equal((await oidc.tokenIntrospection(config, tokens.access_token)).active, false);
        // revoking again, or revoking garbage, is a 200 (RFC 7009 §2.2)
        await oidc.tokenRevocation(config, tokens.access_token);
        await oidc.tokenRevocation(config, 'not-a-token');
      }
      const audit = await s.api('GET', '/api/v1/audit?action=oauth.revoke', { token: admin });
      assert.equal(audit.body.events.length, 2);
    });

    test('discovery lists the endpoints at both well-known paths, issuer == public URL', async () => {
      for (const p of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
        const d = (await s.api('GET', p)).body;
        assert.equal(d.issuer, s.url);
        assert.equal(d.token_endpoint, `${s.url}/oauth2/token`);
        assert.equal(d.introspection_endpoint, `${s.url}/oauth2/introspect`);
        assert.equal(d.revocation_endpoint, `${s.url}/oauth2/revoke`);
        assert.ok(d.grant_types_supported.includes('client_credentials'));
        assert.deepEqual(d.token_endpoint_auth_methods_supported, ['client_secret_basic', 'client_secret_post']);
      }
    });

    test('a user-level client via client_credentials: user identity, dies with the user; errors are RFC 6749 bodies', async () => {
      const uid = await createUser(s, admin, { username: `oauth-u-${store}`, modules: ['WAS'] });
      const user = await s.login(`oauth-u-${store}`, 'User-Pass-123!');
      const c = await createClient(s, user, { name: 'u-level', level: 'user', modules: ['WAS'] });
      const r = await postForm(s.url + '/oauth2/token', { grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('cache-control'), 'no-store');
      const at = JSON.parse(r.text).access_token as string;
      const me = await s.api('GET', '/api/v1/me', { token: at });
      assert.equal(me.body.user.username, `oauth-u-${store}`);
      // introspection reflects live state: deactivate → inactive
      await s.api('POST', `/api/v1/users/${uid}/deactivate`, { token: admin });
      const sc = await createClient(s, admin, { name: 'introspector', level: 'subscription', modules: ['VM'] });
      const intro = await postForm(s.url + '/oauth2/introspect', { token: at }, { authorization: basic(sc.clientId, sc.clientSecret) });
      assert.deepEqual(JSON.parse(intro.text), { active: false });
      const refused = await postForm(s.url + '/oauth2/token', { grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret });
      assert.equal(refused.status, 400);
      assert.equal(JSON.parse(refused.text).error, 'unauthorized_client');
      await s.api('POST', `/api/v1/users/${uid}/activate`, { token: admin });
      assert.equal(JSON.parse((await postForm(s.url + '/oauth2/introspect', { token: at }, { authorization: basic(sc.clientId, sc.clientSecret) })).text).active, true);

      const cases: Array<[Record<string, string>, Record<string, string>, number, string]> = [
        [{ grant_type: 'password', username: 'a', password: 'b' }, {}, 400, 'unsupported_grant_type'],
        [{}, {}, 400, 'invalid_request'],
        [{ grant_type: 'client_credentials' }, {}, 401, 'invalid_client'],
        [{ grant_type: 'client_credentials', client_id: c.clientId, client_secret: 'wrong' }, {}, 401, 'invalid_client'],
        [{ grant_type: 'client_credentials' }, { authorization: basic(c.clientId, 'wrong') }, 401, 'invalid_client'],
        [{ grant_type: 'client_credentials', client_secret: c.clientSecret }, { authorization: basic(c.clientId, c.clientSecret) }, 400, 'invalid_request'],
        [{ grant_type: 'client_credentials', scope: 'VM' }, { authorization: basic(c.clientId, c.clientSecret) }, 400, 'invalid_scope'],
        [{ grant_type: 'client_credentials', scope: 'NOPE' }, { authorization: basic(c.clientId, c.clientSecret) }, 400, 'invalid_scope'],
      ];
      for (const [form, headers, status, error] of cases) {
        const res = await postForm(s.url + '/oauth2/token', form, headers);
        assert.equal(res.status, status, JSON.stringify(form));
        const body = JSON.parse(res.text);
        assert.equal(body.error, error, JSON.stringify(form));
        assert.ok(body.error_description.length > 0);
      }
      const wrongBasic = await postForm(s.url + '/oauth2/token', { grant_type: 'client_credentials' }, { authorization: basic(c.clientId, 'wrong') });
      assert.match(wrongBasic.headers.get('www-authenticate')!, /^Basic/);
      const json = await fetch(s.url + '/oauth2/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":"client_credentials"}' });
      assert.equal(json.status, 400);
      assert.equal((await json.json()).error, 'invalid_request');
    });

    test('introspection needs client authentication and stays within the subscription; revoke only own tokens', async () => {
      const a = await createClient(s, admin, { name: 'a-client', level: 'subscription', modules: ['VM'] });
      const b = await createClient(s, admin, { name: 'b-client', level: 'subscription', modules: ['VM'] });
      const tok = JSON.parse((await postForm(s.url + '/oauth2/token', { grant_type: 'client_credentials' }, { authorization: basic(a.clientId, a.clientSecret) })).text).access_token;
      const anon = await postForm(s.url + '/oauth2/introspect', { token: tok });
      assert.equal(anon.status, 401);
      assert.equal(JSON.parse(anon.text).error, 'invalid_client');
      // the password token of the manager is introspectable by a client of the same subscription
      const pw = JSON.parse((await postForm(s.url + '/oauth2/introspect', { token: admin }, { authorization: basic(b.clientId, b.clientSecret) })).text);
      assert.equal(pw.active, true);
      assert.equal(pw.username, 'admin');
      // another subscription's client sees nothing
      const other = await startGatehouse({ store: 'sqlite' });
      try {
        const o = await createClient(other, await other.adminToken(), { name: 'other', level: 'subscription', modules: ['VM'] });
        const foreign = await postForm(other.url + '/oauth2/introspect', { token: tok }, { authorization: basic(o.clientId, o.clientSecret) });
        assert.deepEqual(JSON.parse(foreign.text), { active: false });
      } finally {
        await other.close();
      }
      const notMine = await postForm(s.url + '/oauth2/revoke', { token: tok }, { authorization: basic(b.clientId, b.clientSecret) });
      assert.equal(notMine.status, 400);
      assert.equal(JSON.parse(notMine.text).error, 'unauthorized_client');
      assert.equal((await s.api('GET', '/api/v1/me', { token: tok })).status, 200, 'still valid');
      assert.equal((await postForm(s.url + '/oauth2/revoke', { token: tok, token_type_hint: 'access_token', client_id: a.clientId, client_secret: a.clientSecret })).status, 200);
      assert.equal((await s.api('GET', '/api/v1/me', { token: tok })).status, 401);
    });
  });
}

describe('two nodes on one PostgreSQL database', () => {
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    a = await startGatehouse({ store: 'postgres' });
    // same store, same master key (data dir) and the same public URL: two nodes of one deployment
    b = await startGatehouse({ databaseUrl: a.databaseUrl!, dataDir: a.dataDir, config: { publicUrl: a.url } });
  });
  after(async () => {
    await b?.stop();
    await a?.close();
  });

  async function until(fn: () => Promise<boolean>, ms = 2000): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await fn()) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return fn();
  }

  test('a revocation or a client deletion on one node is refused on the other within the feed interval', async () => {
    const admin = await a.adminToken();
    const c = await createClient(a, admin, { name: 'shared', level: 'subscription', modules: ['VM'] });
    const get = async () => JSON.parse((await postForm(a.url + '/oauth2/token', { grant_type: 'client_credentials' }, { authorization: basic(c.clientId, c.clientSecret) })).text).access_token as string;
    const t1 = await get();
    const t2 = await get();
    // b issued nothing but verifies a's tokens (same keys, same store)
    assert.equal((await b.api('GET', '/api/v1/me', { token: t1 })).status, 200);
    assert.equal((await b.api('GET', '/api/v1/me', { token: t2 })).status, 200);
    assert.equal((await postForm(a.url + '/oauth2/revoke', { token: t1 }, { authorization: basic(c.clientId, c.clientSecret) })).status, 200);
    assert.ok(await until(async () => (await b.api('GET', '/api/v1/me', { token: t1 })).status === 401), 'revoked on b');
    assert.equal((await b.api('GET', '/api/v1/me', { token: t2 })).status, 200);
    assert.equal((await a.api('DELETE', `/api/v1/clients/${c.clientId}`, { token: admin })).status, 200);
    assert.ok(await until(async () => (await b.api('GET', '/api/v1/me', { token: t2 })).status === 401), 'deleted on b');
  });
});
