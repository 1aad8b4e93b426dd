import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { STORES, startGatehouse, createUser, type TestServer } from './helpers.ts';
import { TestIdp, IDP_AUDIENCE } from './idp-provider.ts';
import { idpsConfigSchema } from '../src/idp/config-schema.ts';

/** Run the real curl, as a user would (asynchronously: the server runs in this process); returns status, body. */
async function curl(args: string[]): Promise<{ status: number; body: string }> {
  const { stdout: out } = await promisify(execFile)('curl', ['-s', '--max-time', '20', '-w', '\n%{http_code}', ...args], { encoding: 'utf8' });
  const i = out.lastIndexOf('\n');
  return { status: Number(out.slice(i + 1)), body: out.slice(0, i) };
}

for (const store of STORES) {
  describe(`end to end through the gateway (${store})`, () => {
    let s: TestServer;
    let admin: string;
    before(async () => {
      s = await startGatehouse({ store, config: { sampleModules: true } });
      admin = await s.adminToken();
    });
    after(async () => s?.close());

    test('spec 001 WAS flow with curl: user-level client → /auth/oidc → WAS API through the gateway', async () => {
      await createUser(s, admin, { username: `was-user-${store}`, modules: ['WAS'] });
      const t = await s.login(`was-user-${store}`, 'User-Pass-123!');
      const created = await curl(['-X', 'POST', `${s.url}/api/v1/clients`, '-H', `Authorization: Bearer ${t}`, '-H', 'Content-Type: application/json',
        '-d', JSON.stringify({ name: 'WAS scripts', level: 'user', modules: ['WAS'] })]);
      assert.equal(created.status, 201, created.body);
      const { clientId, clientSecret } = JSON.parse(created.body);
      const jwt = await curl(['-X', 'POST', `${s.url}/auth/oidc`, '-H', 'Content-Type: application/x-www-form-urlencoded', '-H', `clientId: ${clientId}`, '-H', `clientSecret: ${clientSecret}`]);
      assert.equal(jwt.status, 201);
      const was = await curl(['--location', `${s.url}/qps/rest/3.0/count/was/webapp/`, '--header', 'Content-Type: application/xml',
        '--header', `Authorization: Bearer ${jwt.body}`, '--header', 'request-source: gateway']);
      assert.equal(was.status, 200);
      assert.match(was.body, /<responseCode>SUCCESS<\/responseCode>\s*<count>0<\/count>/);
      // the client carries WAS only: VM is refused with the permission named, in the legacy XML
      const vm = await curl([`${s.url}/api/2.0/fo/asset/ip/?action=list`, '-H', `Authorization: Bearer ${jwt.body}`]);
      assert.equal(vm.status, 403);
      assert.match(vm.body, /<SIMPLE_RETURN>[\s\S]*VM/);
    });

    test('revocation is refused on the very next gateway request: client delete, subscription-token delete, user deactivation', async () => {
      const uid = await createUser(s, admin, { username: `rev-${store}`, modules: ['WAS', 'ETM'] });
      const userToken = await s.login(`rev-${store}`, 'User-Pass-123!');
      const mk = async (level: 'user' | 'subscription', token: string) => {
        const r = await s.api('POST', '/api/v1/clients', { token, body: { name: `${level}-${store}-${Math.random()}`, level, modules: ['WAS'] } });
        assert.equal(r.status, 201, r.text);
        const j = await curl(['-X', 'POST', `${s.url}/auth/${level === 'user' ? 'oidc' : 'oauth'}`, '-H', `clientId: ${r.body.clientId}`, '-H', `clientSecret: ${r.body.clientSecret}`]);
        assert.equal(j.status, 201);
        return { clientId: r.body.clientId as string, jwt: j.body };
      };
      const was = (jwt: string) => curl([`${s.url}/qps/rest/3.0/count/was/webapp`, '-H', `Authorization: Bearer ${jwt}`]);

      // deleting a subscription-level client
      const sc = await mk('subscription', admin);
      assert.equal((await was(sc.jwt)).status, 200);
      assert.equal((await s.api('DELETE', `/api/v1/clients/${sc.clientId}`, { token: admin })).status < 300, true);
      const after1 = await was(sc.jwt);
      assert.equal(after1.status, 401);
      assert.match(after1.body, /<ServiceResponse[\s\S]*<responseCode>/);

      // a subscription token, on a JSON module
      const st = await curl(['--location', `${s.url}/qas/subscription-token`, '--header', `Authorization: Bearer ${admin}`, '--header', 'Content-Type: application/json', '--data', '{ "expiry": 60}']);
      assert.ok(st.status === 201 || st.status === 200, st.body);
      const etm = (jwt: string) => curl(['-X', 'POST', `${s.url}/etm/api/rest/v1/reports/list`, '-H', 'Content-Type: application/json', '-H', `Authorization: Bearer ${jwt}`, '--data', '{ "offset": 0, "limit": 50 }']);
      assert.equal((await etm(st.body)).status, 200);
      const secretId = JSON.parse(Buffer.from(st.body.split('.')[1]!, 'base64url').toString()).jti;
      const del = await curl(['--location', '--request', 'DELETE', `${s.url}/qas/subscription-token/token/${secretId}`, '--header', `Authorization: Bearer ${admin}`]);
      assert.equal(del.body, `Secret with ID ${secretId} deleted successfully.`);
      const after2 = await etm(st.body);
      assert.equal(after2.status, 401);
      assert.equal(typeof JSON.parse(after2.body), 'object');

      // a user-level client's token dies with its user's deactivation; the subscription client's survives
      const uc = await mk('user', userToken);
      const sc2 = await mk('subscription', admin);
      assert.equal((await was(uc.jwt)).status, 200);
      assert.equal((await s.api('POST', `/api/v1/users/${uid}/deactivate`, { token: admin })).status, 200);
      assert.equal((await was(uc.jwt)).status, 401);
      assert.equal((await was(userToken)).status, 401);
      assert.equal((await was(sc2.jwt)).status, 200);
    });
  });
}

describe('an external IdP token at the gateway', () => {
  let s: TestServer;
  let idp: TestIdp;
  before(async () => {
    idp = await TestIdp.start({ 'script-a': { preferred_username: 'idp-alice' } });
    s = await startGatehouse({ config: { sampleModules: true, idps: idpsConfigSchema.parse({ allowHttp: true, jwksCooldownSeconds: 1 }) } });
  });
  after(async () => {
    await s?.close();
    await idp?.close();
  });

  test('an IdP access token calls a module it has rights for, is refused where it has none, and dies with the user', async () => {
    const admin = await s.adminToken();
    const uid = await createUser(s, admin, { username: 'idp-alice', modules: ['WAS'] });
    const r = await s.api('POST', '/api/v1/idps', { token: admin, body: { name: 'Corp IdP', issuer: idp.issuer, audiences: [IDP_AUDIENCE], algorithms: ['ES256'] } });
    assert.equal(r.status, 201, r.text);
    const token = await idp.token('script-a');
    const ok = await curl([`${s.url}/qps/rest/3.0/count/was/webapp`, '-H', `Authorization: Bearer ${token}`]);
    assert.equal(ok.status, 200);
    assert.match(ok.body, /SUCCESS/);
    const pm = await curl(['-X', 'POST', `${s.url}/pm/v1/patchcatalog/patches/domains?platform=Windows`, '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/json', '-d', '']);
    assert.equal(pm.status, 403);
    await s.api('POST', `/api/v1/users/${uid}/deactivate`, { token: admin });
    assert.equal((await curl([`${s.url}/qps/rest/3.0/count/was/webapp`, '-H', `Authorization: Bearer ${token}`])).status, 401);
  });
});
