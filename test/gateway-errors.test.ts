import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startGatehouse, createUser, freePort, ADMIN_PASSWORD, type TestServer } from './helpers.ts';
import { startEchoUpstream, writeConfig, type EchoUpstream } from './gateway-upstream.ts';

/** Every error the gateway itself answers, in each of the three wire formats clients parse. */
const FORMATS = ['simple-return', 'service-response', 'json'] as const;
type Fmt = (typeof FORMATS)[number];
const RATE_MODULE: Record<Fmt, string> = { 'simple-return': 'PC', 'service-response': 'WAS', json: 'CSAM' };
const CONC_MODULE: Record<Fmt, string> = { 'simple-return': 'TOTALCLOUD', 'service-response': 'EDR', json: 'CERTVIEW' };

/** Parse an error body of any format into {code, message}. */
function parseError(fmt: Fmt, text: string, contentType: string | null): { code: string; message: string } {
  if (fmt === 'simple-return') {
    assert.match(contentType ?? '', /xml/);
    const m = /^<\?xml[^>]*\?>\s*<!DOCTYPE SIMPLE_RETURN[^>]*>\s*<SIMPLE_RETURN>\s*<RESPONSE>\s*<DATETIME>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<\/DATETIME>\s*<CODE>(\d+)<\/CODE>\s*<TEXT>([^<]*)<\/TEXT>\s*<\/RESPONSE>\s*<\/SIMPLE_RETURN>\s*$/.exec(text);
    assert.ok(m, `SIMPLE_RETURN shape: ${text}`);
    return { code: m[1]!, message: m[2]! };
  }
  if (fmt === 'service-response') {
    assert.match(contentType ?? '', /xml/);
    const m = /^<\?xml[^>]*\?>\s*<ServiceResponse[^>]*>\s*<responseCode>([A-Z_]+)<\/responseCode>\s*<responseErrorDetails>\s*<errorMessage>([^<]*)<\/errorMessage>\s*<\/responseErrorDetails>\s*<\/ServiceResponse>\s*$/.exec(text);
    assert.ok(m, `ServiceResponse shape: ${text}`);
    return { code: m[1]!, message: m[2]! };
  }
  assert.match(contentType ?? '', /json/);
  const b = JSON.parse(text);
  return { code: String(b.errorCode), message: b.errorMessage };
}

describe('gateway errors in XML and JSON', () => {
  let s: TestServer;
  let up: EchoUpstream;
  let token: string;
  let noModsToken: string;
  const basic = 'Basic ' + Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64');

  before(async () => {
    up = await startEchoUpstream();
    const dead = `http://127.0.0.1:${await freePort()}`;
    const routes = FORMATS.flatMap((f) => [
      { path: `/t/${f}/ok`, module: 'VM', upstream: up.url, errorFormat: f, auth: 'both' },
      { path: `/t/${f}/dead`, module: 'VM', upstream: dead, errorFormat: f, auth: 'both' },
      { path: `/t/${f}/hang`, module: 'VM', upstream: up.url, errorFormat: f, auth: 'both', timeouts: { headersMs: 400 } },
      { path: `/t/${f}/none`, module: 'OT', errorFormat: f, auth: 'both' },
      { path: `/t/${f}/rate`, module: RATE_MODULE[f], upstream: up.url, errorFormat: f, auth: 'both' },
      { path: `/t/${f}/conc`, module: CONC_MODULE[f], upstream: up.url, errorFormat: f, auth: 'both' },
    ]);
    const limits = {
      default: { rate: 1000, windowSec: 60, concurrency: 10 },
      modules: {
        ...Object.fromEntries(Object.values(RATE_MODULE).map((m) => [m, { rate: 2, windowSec: 120 }])),
        ...Object.fromEntries(Object.values(CONC_MODULE).map((m) => [m, { concurrency: 1 }])),
      },
    };
    s = await startGatehouse({ store: 'sqlite', env: { GATEHOUSE_CONFIG: writeConfig({ gateway: { routes }, limits }) } });
    token = await s.adminToken();
    await createUser(s, token, { username: 'no-modules', modules: [] });
    noModsToken = await s.login('no-modules', 'User-Pass-123!');
  });
  after(async () => {
    await s?.close();
    await up?.close();
  });

  const call = async (p: string, headers: Record<string, string> = {}) => {
    const res = await fetch(s.url + p, { headers });
    return { status: res.status, headers: res.headers, text: await res.text() };
  };

  for (const f of FORMATS) {
    test(`${f}: 401 missing, malformed, expired and bad Basic credentials, each with WWW-Authenticate`, async () => {
      const missing = await call(`/t/${f}/ok/x`);
      assert.equal(missing.status, 401);
      assert.equal(missing.headers.get('www-authenticate'), 'Basic realm="Gatehouse", Bearer realm="gatehouse"');
      const e = parseError(f, missing.text, missing.headers.get('content-type'));
      assert.match(e.message, /Authentication required/);
      assert.equal(e.code, { 'simple-return': '2000', 'service-response': 'INVALID_CREDENTIALS', json: 'missing_credentials' }[f]);

      const malformed = await call(`/t/${f}/ok/x`, { authorization: 'Bearer not-a-jwt' });
      assert.equal(malformed.status, 401);
      assert.match(malformed.headers.get('www-authenticate')!, /Bearer realm="gatehouse", error="invalid_token", error_description="token is not a well-formed JWT"/);
      assert.match(parseError(f, malformed.text, malformed.headers.get('content-type')).message, /not a well-formed JWT/);

      const claims = (await s.gh.services.tokens.verifyClaims(token));
      const expired = await s.gh.services.tokens.issue({ sub: claims.sub, subscriptionId: claims.subscription_id, authMethod: 'password', username: 'admin', ttlSeconds: -3600 });
      const ex = await call(`/t/${f}/ok/x`, { authorization: `Bearer ${expired.token}` });
      assert.equal(ex.status, 401);
      assert.match(ex.headers.get('www-authenticate')!, /error_description="token has expired"/);
      assert.match(parseError(f, ex.text, ex.headers.get('content-type')).message, /expired/);

      const bad = await call(`/t/${f}/ok/x`, { authorization: 'Basic ' + Buffer.from('admin:wrong-password').toString('base64') });
      assert.equal(bad.status, 401);
      assert.equal(bad.headers.get('www-authenticate'), 'Basic realm="Gatehouse", Bearer realm="gatehouse"');
      assert.match(parseError(f, bad.text, bad.headers.get('content-type')).message, /Invalid username or password/);
      assert.ok(!bad.text.includes('wrong-password'));
      assert.equal(up.arrivals.filter((a) => a.url.startsWith(`/t/${f}/ok`)).length, 0, 'nothing reached the upstream');
    });

    test(`${f}: 403 names the missing module permission`, async () => {
      const r = await call(`/t/${f}/ok/x`, { authorization: `Bearer ${noModsToken}` });
      assert.equal(r.status, 403);
      const e = parseError(f, r.text, r.headers.get('content-type'));
      assert.match(e.message, /does not have the API permission for module VM/);
      assert.equal(e.code, { 'simple-return': '2002', 'service-response': 'UNAUTHORIZED', json: 'module_permission_required' }[f]);
    });

    test(`${f}: 409 when the subscription's rate limit is spent, with X-RateLimit-ToWait-Sec`, async () => {
      const h = { authorization: `Bearer ${token}` };
      const a = await call(`/t/${f}/rate/1`, h);
      assert.equal(a.status, 200);
      assert.equal(a.headers.get('x-ratelimit-limit'), '2');
      assert.equal(a.headers.get('x-ratelimit-window-sec'), '120');
      assert.equal(a.headers.get('x-ratelimit-remaining'), '1');
      assert.equal(a.headers.get('x-ratelimit-towait-sec'), '0');
      assert.equal((await call(`/t/${f}/rate/2`, h)).status, 200);
      const r = await call(`/t/${f}/rate/3`, h);
      assert.equal(r.status, 409);
      assert.equal(r.headers.get('x-ratelimit-remaining'), '0');
      const wait = Number(r.headers.get('x-ratelimit-towait-sec'));
      assert.ok(wait > 100 && wait <= 120, `wait ${wait}`);
      const e = parseError(f, r.text, r.headers.get('content-type'));
      assert.equal(e.code, { 'simple-return': '1965', 'service-response': 'RATE_LIMIT_EXCEEDED', json: '1965' }[f]);
      assert.match(e.message, /rate limit/);
    });

    test(`${f}: 409 when the user's concurrency limit is reached`, async () => {
      const h = { authorization: basic };
      const first = fetch(s.url + `/t/${f}/conc/hold`, { headers: h });
      for (let i = 0; i < 50 && up.held() === 0; i++) await new Promise((r) => setTimeout(r, 20));
      const r = await call(`/t/${f}/conc/second`, h);
      assert.equal(r.status, 409);
      assert.equal(r.headers.get('x-concurrency-limit-limit'), '1');
      assert.equal(r.headers.get('x-concurrency-limit-running'), '1');
      assert.ok(Number(r.headers.get('x-ratelimit-towait-sec')) >= 1);
      const e = parseError(f, r.text, r.headers.get('content-type'));
      assert.equal(e.code, { 'simple-return': '1960', 'service-response': 'RATE_LIMIT_EXCEEDED', json: '1960' }[f]);
      up.releaseHeld();
      const done = await first;
      assert.equal(done.status, 200);
      assert.equal(done.headers.get('x-concurrency-limit-running'), '1');
      await done.text();
      const again = await call(`/t/${f}/conc/third`, h);
      assert.equal(again.status, 200, 'the slot is free again once the first call finished');
    });

    test(`${f}: 502 / 504 name the module; 503 when it has no upstream`, async () => {
      const h = { authorization: `Bearer ${token}` };
      const dead = await call(`/t/${f}/dead/x`, h);
      assert.equal(dead.status, 502);
      assert.match(parseError(f, dead.text, dead.headers.get('content-type')).message, /The VM module is unavailable \(connection refused\)/);
      assert.equal(dead.headers.get('x-ratelimit-limit'), '1000', 'limit headers on every module response');
      const t0 = Date.now();
      const slow = await call(`/t/${f}/hang/x`, h);
      assert.equal(slow.status, 504);
      assert.ok(Date.now() - t0 < 1900, 'the configured timeout applies');
      assert.match(parseError(f, slow.text, slow.headers.get('content-type')).message, /The VM module did not answer in time/);
      const none = await call(`/t/${f}/none/x`, h);
      assert.equal(none.status, 503);
      const e = parseError(f, none.text, none.headers.get('content-type'));
      assert.match(e.message, /The OT module has no upstream configured/);
      if (f === 'service-response') assert.equal(e.code, 'SERVICE_UNAVAILABLE');
      assert.ok(!dead.text.includes('127.0.0.1') && !slow.text.includes('127.0.0.1'), 'upstream addresses stay private');
    });
  }

  test('header spoofing: identity headers and credentials the client sent never reach the upstream; status and headers come back unchanged', async () => {
    // node:http, because fetch refuses to send a Connection header naming other headers.
    const res = await new Promise<http.IncomingMessage & { text: string }>((resolve, reject) => {
      const req = http.request(s.url + '/t/json/ok/status201/spoof?a=1&b=2', {
        method: 'POST',
        headers: {
          authorization: basic,
          'x-gatehouse-user': 'root',
          'X-Gatehouse-Subscription': 'someone-else',
          'x-gatehouse-modules': 'VM,PC,WAS',
          'x-gatehouse-auth-method': 'subscription_token',
          'x-gatehouse-anything': 'x',
          'request-source': 'evil',
          clientSecret: 'should-not-pass',
          connection: 'keep-alive, x-hop',
          'x-hop': 'hop-by-hop',
          'x-custom': 'kept',
          'content-type': 'text/plain',
        },
      }, (r) => {
        let text = '';
        r.setEncoding('utf8').on('data', (c) => (text += c)).on('end', () => resolve(Object.assign(r, { text })));
      });
      req.on('error', reject);
      req.end('hello');
    });
    assert.equal(res.statusCode, 201);
    assert.equal(res.headers['x-upstream'], 'echo');
    assert.deepEqual(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
    const a = JSON.parse(res.text) as { url: string; headers: Record<string, string>; bytes: number; method: string };
    assert.equal(a.method, 'POST');
    assert.equal(a.url, '/t/json/ok/status201/spoof?a=1&b=2');
    assert.equal(a.bytes, 5);
    assert.equal(a.headers['x-gatehouse-user'], 'admin');
    assert.equal(a.headers['x-gatehouse-subscription'], s.gh.bootstrap.subscriptionId);
    assert.equal(a.headers['x-gatehouse-auth-method'], 'basic');
    assert.equal(a.headers['x-gatehouse-modules'], 'VM,PC,WAS,ETM,CSAM,TOTALCLOUD,PM,CA,CS,CERTVIEW,OT,EDR,AM');
    assert.equal(a.headers['x-gatehouse-anything'], undefined);
    assert.equal(a.headers['request-source'], 'gateway');
    assert.equal(a.headers.authorization, undefined);
    assert.equal(a.headers.clientsecret, undefined);
    assert.equal(a.headers['x-hop'], undefined);
    assert.equal(a.headers['x-custom'], 'kept');
    assert.equal(a.headers['x-forwarded-for'], '127.0.0.1');
    assert.ok(!s.logs.text.includes(ADMIN_PASSWORD) && !s.logs.text.includes(Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')), 'no secret in logs');
  });

  test('a config error names the offending key', async () => {
    const { loadConfig } = await import('../src/config.ts');
    assert.throws(() => loadConfig({ GATEHOUSE_CONFIG: writeConfig({ gateway: { routes: [{ path: '/api/v1/x', module: 'VM' }] } }) }), /gateway\.routes\.0\.path.*management API/);
    assert.throws(() => loadConfig({ GATEHOUSE_CONFIG: writeConfig({ gateway: { routes: [{ path: '/x', module: 'NOPE' }] } }) }), /gateway\.routes\.0\.module/);
    assert.throws(() => loadConfig({ GATEHOUSE_CONFIG: writeConfig({ limits: { default: { rate: -1 } } }) }), /limits\.default\.rate/);
    assert.throws(() => loadConfig({ GATEHOUSE_CONFIG: writeConfig({ gateway: { upstream: {} } }) }), /unknown key.*gateway\.upstream/);
  });
});
