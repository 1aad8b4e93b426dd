import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGatehouse, createUser, ADMIN_PASSWORD, type TestServer } from './helpers.ts';
import * as F from '../src/sample-modules/fixtures.ts';

/** Every curl sample of spec 001 and 004, unchanged but for the base URL, through the real gateway. */
describe('gateway with --sample-modules: the spec samples', () => {
  let s: TestServer;
  let token: string;
  const basic = 'Basic ' + Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64');
  before(async () => {
    s = await startGatehouse({ store: 'sqlite', config: { sampleModules: true } });
    token = await s.adminToken();
  });
  after(async () => s?.close());

  const call = async (method: string, path: string, headers: Record<string, string>, body?: string) => {
    const res = await fetch(s.url + path, { method, headers, body });
    return { status: res.status, headers: res.headers, text: await res.text() };
  };

  test('001: WAS count with Bearer (trailing slash, request-source header) → documented ServiceResponse', async () => {
    const r = await call('GET', '/qps/rest/3.0/count/was/webapp/', { 'Content-Type': 'application/xml', Authorization: `Bearer ${token}`, 'request-source': 'gateway' });
    assert.equal(r.status, 200);
    assert.match(r.text, /<responseCode>SUCCESS<\/responseCode>\s*<count>0<\/count>\s*<\/ServiceResponse>/);
    assert.ok(r.text.includes(`xsi:noNamespaceSchemaLocation="${s.url}/qps/xsd/3.0/was/webapp.xsd"`));
  });

  test('001: WAS count with curl -u (Basic)', async () => {
    const r = await call('GET', '/qps/rest/3.0/count/was/webapp', { Authorization: basic });
    assert.equal(r.status, 200);
    assert.match(r.text, /<responseCode>SUCCESS<\/responseCode>/);
    assert.equal(r.headers.get('x-ratelimit-limit'), '300');
    assert.equal(r.headers.get('x-concurrency-limit-limit'), '2');
  });

  test('GET /msp/about.php with Basic: the call Qualys clients use to test credentials, with the limit headers', async () => {
    const r = await call('GET', '/msp/about.php', { Authorization: basic });
    assert.equal(r.status, 200);
    assert.match(r.text, /<ABOUT>[\s\S]*<API-VERSION MAJOR="1" MINOR="4" \/>/);
    for (const h of ['x-ratelimit-limit', 'x-ratelimit-window-sec', 'x-ratelimit-remaining', 'x-ratelimit-towait-sec', 'x-concurrency-limit-limit', 'x-concurrency-limit-running']) {
      assert.ok(r.headers.get(h) !== null, `${h} present`);
    }
  });

  test('004 VM: POST /api/2.0/fo/asset/ip/ with "Bearer<JWT>" (no space) echoes the login and the parameters', async () => {
    const r = await call('POST', '/api/2.0/fo/asset/ip/?action=add&enable_vm=1&ips=10.10.30.10&echo_request=1', {
      'Content-Type': 'application/x-www-form-urlencoded',
      Authorization: `Bearer${token}`,
      'X-Requested-With': 'curl Autodemo',
      Accept: '*/*',
      'Content-Length': '0',
    });
    assert.equal(r.status, 200);
    assert.match(r.text, /<!DOCTYPE SIMPLE_RETURN SYSTEM ".*\/api\/2\.0\/simple_return\.dtd">/);
    assert.match(r.text, /<USER_LOGIN>admin<\/USER_LOGIN>/);
    assert.ok(r.text.includes(`<RESOURCE>${s.url}/api/2.0/fo/asset/ip/</RESOURCE>`));
    const params = [...r.text.matchAll(/<KEY>(.*?)<\/KEY>\s*<VALUE>(.*?)<\/VALUE>/g)].map((m) => [m[1], m[2]]);
    assert.deepEqual(params, [['action', 'add'], ['enable_vm', '1'], ['ips', '10.10.30.10'], ['echo_request', '1']]);
    assert.match(r.text, /<TEXT>IPs successfully added to Vulnerability Management<\/TEXT>/);
  });

  test('every FO version 2.0-5.0 is routed; "/path?" is the same request as "/path"', async () => {
    for (const v of ['2.0', '3.0', '4.0', '5.0']) {
      const r = await call('POST', `/api/${v}/fo/asset/ip/?action=add&ips=10.0.0.1&echo_request=1`, { Authorization: `Bearer ${token}` });
      assert.equal(r.status, 200, v);
      assert.match(r.text, /IPs successfully added/);
    }
    const a = await call('GET', '/msp/about.php?', { Authorization: basic });
    assert.equal(a.status, 200);
    assert.match(a.text, /<ABOUT>/);
  });

  test('004 ETM: POST reports/list → the documented report, createdBy the caller', async () => {
    const r = await call('POST', '/etm/api/rest/v1/reports/list', { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, '{     "offset": 0,     "limit": 50 }');
    assert.equal(r.status, 200);
    const body = JSON.parse(r.text);
    assert.deepEqual(body, F.ETM_REPORTS('admin'));
    assert.equal(body[0].name, 'Test Report 3');
    assert.equal(body[0].expirationDate, '2025-12-23T21:27:02');
  });

  test('004 CSAM: PUT /easm/v2/profile/newProfile → UPDATED', async () => {
    const r = await call('PUT', '/easm/v2/profile/newProfile', { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, JSON.stringify({ name: 'newProfile', includeSeeds: [], active: true }));
    assert.equal(r.status, 200);
    const b = JSON.parse(r.text);
    assert.deepEqual({ ...b, date: undefined }, { code: '200', status: 'UPDATED', date: undefined, message: 'Profile Updated Successfully' });
    assert.match(b.date, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  });

  test('004 TotalCloud, PM, Cloud Agent, Container Security, CertView, OT, EDR: documented bodies', async () => {
    const cases: Array<[string, string, Record<string, string>, string | undefined, unknown]> = [
      ['GET', '/cloudview-api/rest/v2/report/assessment/create', { Authorization: `Bearer ${token} `, 'Content-Type': 'application/json' }, undefined, F.TOTALCLOUD_REPORT],
      ['POST', '/pm/v1/patchcatalog/patches/domains?platform=Windows', { accept: 'application/json', Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, '', F.PM_DOMAINS],
      ['POST', '/caui/v1/config-profiles/1790796', { Authorization: `Bearer ${token}`, 'Content-Type': 'application/x-www-form-urlencoded' }, '', F.CA_CONFIG_PROFILE],
      ['GET', '/csapi/v1.3/containers?pageNumber=1&pageSize=50&sort=created%3Adesc', { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, undefined, F.CS_CONTAINERS],
      ['POST', '/certview/v1/certificates', { Accept: 'application/json', 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, '{ "filter" : "subject.name:www.qualys.com", "pageNumber": 0, "pageSize" : 1}', F.CERTVIEW_CERTIFICATES],
      ['GET', '/ot/v1/host/list?filter=asset.assetUuid%3A%22af338503-ce5a-376b-b337-1ed9958abc8f%22', { Authorization: `Bearer ${token}` }, undefined, F.OT_HOSTS],
      // The EDR sample sends the JWT with no scheme: "Authorization: <JWT_Token>".
      ['GET', '/ioc/events/scroll?filter=type:MUTEX', { Authorization: token }, undefined, F.EDR_EVENTS],
    ];
    for (const [method, path, headers, body, expected] of cases) {
      const r = await call(method, path, headers, body);
      assert.equal(r.status, 200, `${method} ${path}: ${r.text.slice(0, 200)}`);
      assert.deepEqual(JSON.parse(r.text), expected, path);
    }
    const pm = JSON.parse((await call('POST', '/pm/v1/patchcatalog/patches/domains?platform=Windows', { Authorization: `Bearer ${token}` }, '')).text);
    assert.equal(pm.length, 8);
    assert.equal(pm[7], 'http://www.wireshark.org');
  });

  test('004 Asset Management: curl -n -u on /qps/rest/2.0/get/am/asset/12345', async () => {
    const r = await call('GET', '/qps/rest/2.0/get/am/asset/12345', { Authorization: basic });
    assert.equal(r.status, 200);
    assert.match(r.text, /<responseCode>SUCCESS<\/responseCode>\s*<count>1<\/count>/);
    assert.match(r.text, /<Asset>\s*<id>12345<\/id>\s*<name>My Windows Asset<\/name>/);
    assert.match(r.text, /<TagSimple>\s*<id>54321<\/id>\s*<name>Tag 2<\/name>/);
  });

  test('JSON module APIs refuse Basic, naming what they accept', async () => {
    const r = await call('POST', '/etm/api/rest/v1/reports/list', { Authorization: basic });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="gatehouse"');
    assert.match(JSON.parse(r.text).errorMessage, /only Bearer/);
  });

  test('GET /api/v1/routes shows the support matrix; /api/v1 is never captured', async () => {
    const anon = await s.api('GET', '/api/v1/routes');
    assert.equal(anon.status, 401);
    const r = await s.api('GET', '/api/v1/routes', { token });
    assert.equal(r.status, 200);
    const byPath = Object.fromEntries(r.body.routes.map((x: any) => [x.path, x]));
    assert.deepEqual([byPath['/api/{version}/fo'].module, byPath['/api/{version}/fo'].basic, byPath['/api/{version}/fo'].bearer, byPath['/api/{version}/fo'].errorFormat], ['VM', true, true, 'simple-return']);
    assert.deepEqual([byPath['/qps/rest/{version}/{operation}/was'].module, byPath['/qps/rest/{version}/{operation}/was'].errorFormat], ['WAS', 'service-response']);
    assert.deepEqual([byPath['/etm'].basic, byPath['/etm'].bearer, byPath['/etm'].errorFormat], [false, true, 'json']);
    assert.equal(byPath['/msp'].auth, 'both');
    assert.ok(r.body.routes.every((x: any) => !x.path.startsWith('/api/v1')));
    assert.equal((await s.api('GET', '/api/v1/fo/x', { token })).status, 404);
    assert.equal((await s.api('GET', '/api/v1/me', { token })).status, 200);
  });

  test('forward-auth: /gateway/decide answers 200 with identity headers, or the route\'s 401/403', async () => {
    const ok = await call('GET', '/gateway/decide', { 'X-Original-URI': '/api/2.0/fo/scan/?action=list', 'X-Original-Method': 'GET', Authorization: `Bearer ${token}` });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('x-gatehouse-user'), 'admin');
    assert.equal(ok.headers.get('x-gatehouse-module'), 'VM');
    assert.equal(ok.headers.get('x-gatehouse-auth-method'), 'password');
    const traefik = await call('GET', '/gateway/decide', { 'X-Forwarded-Uri': '/etm/x', 'X-Forwarded-Method': 'POST', Authorization: basic });
    assert.equal(traefik.status, 401);
    assert.match(traefik.text, /only Bearer/);
    const envoy = await call('GET', '/gateway/decide/msp/about.php', { Authorization: basic });
    assert.equal(envoy.status, 200);
    const none = await call('GET', '/gateway/decide', { 'X-Original-URI': '/msp/about.php' });
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate')!, /^Basic realm="Gatehouse", Bearer realm="gatehouse"$/);
    assert.match(none.text, /<SIMPLE_RETURN>[\s\S]*<CODE>2000<\/CODE>/);
    const admin = await s.adminToken();
    await createUser(s, admin, { username: 'decide-vm-only', modules: ['VM'] });
    const t = await s.login('decide-vm-only', 'User-Pass-123!');
    const denied = await call('GET', '/gateway/decide', { 'X-Original-URI': '/certview/v1/certificates', Authorization: `Bearer ${t}` });
    assert.equal(denied.status, 403);
    assert.match(JSON.parse(denied.text).errorMessage, /module CERTVIEW/);
    const other = await call('GET', '/gateway/decide', { 'X-Original-URI': '/some/other/service', Authorization: `Bearer ${t}` });
    assert.equal(other.status, 200, 'any other service: authentication only');
  });
});
