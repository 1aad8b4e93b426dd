/**
 * Hardening (issue 10): hostile input, property-based (fast-check, bounded runs). Every public
 * endpoint gets random and adversarial bodies, headers, encodings, lengths and content types:
 * never a 5xx, never a stack trace or a secret in the body, never access without a credential,
 * and nothing stored half-way. Plus the fixed limits: body size, header size, JSON depth and
 * size, form field count, malformed HTTP.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { startGatehouse, ADMIN_PASSWORD, type TestServer } from './helpers.ts';

const STACK = /\n\s+at \S|\(\/[^)]*:\d+:\d+\)|node_modules|\/src\/[\w/-]+\.ts|TypeError|ReferenceError|RangeError|SQLITE_|syntax error at or near/;
const CREATES = new Set(['POST /api/v1/users', 'POST /api/v1/clients', 'POST /qas/subscription-token']);

const ENDPOINTS: [string, string][] = [
  ['POST', '/auth'],
  ['POST', '/auth/oidc'],
  ['POST', '/auth/oauth'],
  ['POST', '/oauth2/token'],
  ['POST', '/oauth2/introspect'],
  ['POST', '/oauth2/revoke'],
  ['POST', '/qas/subscription-token'],
  ['GET', '/qas/subscription-token/list'],
  ['GET', '/qas/subscription-token/{id}'],
  ['DELETE', '/qas/subscription-token/token/{id}'],
  ['GET', '/api/v1/me'],
  ['POST', '/api/v1/users'],
  ['PATCH', '/api/v1/users/{id}'],
  ['POST', '/api/v1/users/{id}/unlock'],
  ['POST', '/api/v1/clients'],
  ['DELETE', '/api/v1/clients/{id}'],
  ['POST', '/api/v1/clients/{id}/token'],
  ['POST', '/api/v1/session'],
  ['GET', '/api/v1/session'],
  ['DELETE', '/api/v1/session'],
  ['GET', '/api/v1/audit'],
  ['GET', '/api/2.0/fo/asset/ip/'],
  ['POST', '/api/2.0/fo/scan/'],
  ['POST', '/qps/rest/3.0/search/was/webapp'],
  ['GET', '/csapi/v1.3/containers'],
  ['POST', '/pm/v1/patchcatalog/patches/domains'],
  ['GET', '/gateway/decide'],
  ['POST', '/gateway/decide/api/2.0/fo/scan/'],
];

const printable = (max: number) => fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: max });

const contentType = fc.oneof(
  fc.constantFrom(
    'application/json', 'application/x-www-form-urlencoded', 'text/plain', 'application/xml', 'multipart/form-data; boundary=x',
    'application/json; charset=utf-16', 'APPLICATION/JSON', 'application/merge-patch+json', 'application/x-www-form-urlencoded; charset=latin1',
    '', ';;;', 'application/json, text/plain', '*/*',
  ),
  printable(60),
);

/** Bodies that look like what the endpoints parse, broken in the ways attackers break them. */
const body = fc.oneof(
  fc.json({ maxDepth: 4 }),
  fc.string({ maxLength: 300 }),
  fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)),
  fc.dictionary(fc.constantFrom('username', 'password', 'token', 'grant_type', 'client_id', 'client_secret', 'scope', 'expiry', 'modules', '__proto__', 'constructor', 'role', 'name', 'level'), fc.oneof(printable(40), fc.constant(ADMIN_PASSWORD), fc.constant('true'), fc.constant('admin'))).map((d) => new URLSearchParams(d).toString()),
  fc.record({ username: fc.oneof(fc.constant('admin'), printable(300)), password: fc.oneof(printable(50), fc.constant('')) }).map((o) => JSON.stringify(o)),
  fc.record({ expiry: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null), fc.array(fc.integer())), modules: fc.anything({ maxDepth: 2 }) }).map((o) => JSON.stringify(o)),
  fc.record({ name: fc.string({ maxLength: 150 }), level: fc.string(), modules: fc.array(fc.string(), { maxLength: 60 }) }).map((o) => JSON.stringify(o)),
  fc.integer({ min: 20, max: 60 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
  fc.integer({ min: 20, max: 60 }).map((d) => '{"a":'.repeat(d) + '1' + '}'.repeat(d)),
  fc.constantFrom('{"__proto__":{"isAdmin":true}}', '{"constructor":{"prototype":{"x":1}}}', '{"username":"admin","username":"x"}', '\u0000', '\ufeff{}', '{"a":1e999}', '"\\ud800"', 'null', '[]', 'true'),
  fc.integer({ min: 1, max: 200 }).map((n) => Array.from({ length: n }, (_, i) => `f${i}=${'x'.repeat(i % 7)}`).join('&')),
);

const authorization = fc.oneof(
  fc.constant(undefined),
  printable(200).map((s) => `Bearer ${s}`),
  fc.tuple(printable(40), printable(40)).map(([u, p]) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`),
  fc.constantFrom('Bearer', 'Bearer ', 'Basic', 'Basic =', 'Basic !!!!', 'Digest x', 'bearer a.b.c', 'Bearer eyJhbGciOiJub25lIn0.e30.', `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD.slice(0, -1)}`).toString('base64')}`, 'Bearer ' + 'a'.repeat(9000)),
  printable(100),
);

const extraHeaders = fc.dictionary(
  fc.constantFrom('clientId', 'clientSecret', 'client-id', 'cookie', 'x-csrf-token', 'x-original-uri', 'x-forwarded-for', 'x-forwarded-proto', 'x-gatehouse-user', 'accept', 'accept-encoding', 'content-encoding', 'origin', 'x-original-method', 'request-source'),
  fc.oneof(printable(120), fc.constantFrom('gzip', 'gatehouse_session=x; gatehouse_session=y', '../../etc/passwd', 'admin', '*')),
  { maxKeys: 4 },
);

const idParam = fc.oneof(fc.uuid(), printable(80), fc.constantFrom('..%2F..%2F', '%00', "1' OR '1'='1", 'a'.repeat(300), '%', '%E0%A4%A', '..', ' ', '-1', '1e309'));

describe('hostile input, property-based', () => {
  let s: TestServer;
  let admin: string;
  let userId: string;
  const rowCounts = async () => {
    const db = s.gh.services.store.db;
    const n = async (t: 'users' | 'clients' | 'subscription_tokens' | 'signing_keys' | 'subscriptions') =>
      Number((await db.selectFrom(t).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    return { users: await n('users'), clients: await n('clients'), subscription_tokens: await n('subscription_tokens'), signing_keys: await n('signing_keys'), subscriptions: await n('subscriptions') };
  };

  before(async () => {
    s = await startGatehouse({
      config: { sampleModules: true, auth: { maxFailuresPerUser: 1_000_000, maxFailuresPerIp: 1_000_000, failureWindowSeconds: 60, lockoutSeconds: 1, maxLockoutSeconds: 1 } } as never,
    });
    admin = await s.adminToken();
    userId = (await s.api('GET', '/api/v1/me', { token: admin })).body.user.id;
  });
  after(async () => s?.close());

  let sent = 0;
  let skipped = 0;
  async function send(method: string, rawPath: string, id: string, ct: string, b: string | Buffer, headers: Record<string, string>) {
    const path = rawPath.replace('{id}', encodeURIComponent(id).slice(0, 600));
    const h: Record<string, string> = { ...headers };
    if (ct) h['content-type'] = ct;
    const hasBody = method !== 'GET' && method !== 'HEAD';
    let res: Response;
    try {
      res = await fetch(s.url + path, { method, headers: h, ...(hasBody ? { body: typeof b === "string" ? b : new Uint8Array(b) } : {}) });
    } catch (e) {
      // fetch itself refused the input (e.g. an invalid header value): nothing reached the server
      if (e instanceof TypeError && !/fetch failed/.test(e.message)) return skipped++, { status: 0, text: '' };
      throw e;
    }
    sent++;
    return { status: res.status, text: await res.text() };
  }

  test('without a valid credential: never a 5xx, never a stack, never a 2xx granting access, no rows written', async () => {
    const before = await rowCounts();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ENDPOINTS), idParam, contentType, body, authorization, extraHeaders, async ([method, p], id, ct, b, auth, extra) => {
        const headers: Record<string, string> = { ...extra };
        if (auth !== undefined) headers.authorization = auth;
        const r = await send(method, p, id, ct, b, headers);
        if (r.status === 0) return;
        assert.ok(r.status < 500, `${method} ${p} → ${r.status}: ${r.text.slice(0, 300)}`);
        assert.doesNotMatch(r.text, STACK, `${method} ${p}: ${r.text.slice(0, 300)}`);
        assert.ok(!r.text.includes(ADMIN_PASSWORD), 'no secret echoed');
        // 2xx without a credential is possible only where no credential is needed
        if (r.status < 300) {
          assert.ok(
            (p === '/api/v1/session' && method === 'DELETE') || (p.startsWith('/auth') && r.status === 201 && /admin/.test(String(b))),
            `${method} ${p} answered ${r.status} without credentials: ${r.text.slice(0, 200)}`,
          );
        }
      }),
      { numRuns: 400, seed: 10_10_2026 },
    );
    assert.deepEqual(await rowCounts(), before, 'nothing stored by refused requests');
    assert.ok(sent >= 300, `the requests reached the server (${sent} sent, ${skipped} refused by fetch itself)`);
  });

  test('with the manager\'s own token: hostile bodies never cause a 5xx or a half-written row', async () => {
    const before = await rowCounts();
    let created = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ENDPOINTS.filter(([, p]) => !p.includes('session'))), fc.oneof(idParam, fc.constant(userId)), contentType, body, extraHeaders, async ([method, p], id, ct, b, extra) => {
        const r = await send(method, p, id, ct, b, { ...extra, authorization: `Bearer ${admin}` });
        if (r.status === 0) return;
        assert.ok(r.status < 500, `${method} ${p} → ${r.status}: ${r.text.slice(0, 300)}`);
        assert.doesNotMatch(r.text, STACK, `${method} ${p}: ${r.text.slice(0, 300)}`);
        if (r.status === 201 && CREATES.has(`${method} ${p}`)) created++;
      }),
      { numRuns: 400, seed: 20_10_2026 },
    );
    const after = await rowCounts();
    const delta = after.users + after.clients + after.subscription_tokens - (before.users + before.clients + before.subscription_tokens);
    assert.equal(delta, created, 'every new row belongs to a 201');
    assert.equal(after.signing_keys, before.signing_keys);
    assert.equal(after.subscriptions, before.subscriptions);
    // the manager is still a manager and can still act
    const me = await s.api('GET', '/api/v1/me', { token: admin });
    assert.equal(me.status, 200);
    assert.equal(me.body.user.role, 'manager');
  });

  test('gateway paths: random methods, paths and query strings never reach a module without a credential', async () => {
    const seg = fc.oneof(printable(20).map((x) => encodeURIComponent(x)), fc.constantFrom('..', '%2e%2e', '%2F', 'api', '2.0', 'fo', 'qps', 'rest', '3.0', 'v1', '.well-known', '%00'));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'),
        fc.constantFrom('/api/2.0/fo', '/qps/rest/3.0', '/csapi', '/pm/v1', '/etm', '/easm', '/cloudview-api', '/certview', '/ot', '/msp', ''),
        fc.array(seg, { maxLength: 6 }),
        printable(100).map((q) => (q ? `?${encodeURIComponent(q)}` : '')),
        authorization,
        async (method, prefix, segs, q, auth) => {
          const headers: Record<string, string> = auth !== undefined ? { authorization: auth } : {};
          const r = await send(method, `${prefix}/${segs.join('/')}${q}`, '', '', '', headers);
          if (r.status === 0) return;
          assert.ok(r.status < 500 || r.status === 503, `${method} ${prefix} → ${r.status}: ${r.text.slice(0, 200)}`);
          // what the server saw, after the client normalised dot segments
          const seen = new URL(`${s.url}${prefix}/${segs.join('/')}`).pathname;
          const modulePath = /^\/(api\/[^/]+\/fo|qps\/rest|csapi|pm|etm|easm|cloudview-api|certview|ot|msp)(\/|$)/.test(seen);
          if (modulePath) assert.ok(r.status >= 400, `${method} ${seen} → ${r.status}`);
          assert.doesNotMatch(r.text, STACK);
        },
      ),
      { numRuns: 250, seed: 30_10_2026 },
    );
  });
});

describe('fixed limits', () => {
  let s: TestServer;
  let admin: string;
  before(async () => {
    s = await startGatehouse();
    admin = await s.adminToken();
  });
  after(async () => s?.close());

  test('body over 1 MiB → 413 on JSON, form and raw endpoints', async () => {
    const big = 'x'.repeat(1024 * 1024 + 10);
    for (const [p, ct] of [['/api/v1/users', 'application/json'], ['/auth', 'application/x-www-form-urlencoded'], ['/auth/oidc', 'application/octet-stream'], ['/oauth2/token', 'application/x-www-form-urlencoded']] as const) {
      const r = await fetch(s.url + p, { method: 'POST', headers: { 'content-type': ct, authorization: `Bearer ${admin}` }, body: big }).catch(() => null);
      if (r) assert.equal(r.status, 413, p);
    }
  });

  test('headers over Node\'s maxHeaderSize → 431, and the server keeps serving', async () => {
    const r = await fetch(s.url + '/api/v1/me', { headers: { 'x-filler': 'a'.repeat(20_000), authorization: `Bearer ${admin}` } }).catch(() => null);
    if (r) assert.equal(r.status, 431);
    assert.equal((await s.api('GET', '/api/v1/me', { token: admin })).status, 200);
  });

  test('JSON nested deeper than 32 levels or with more than 10 000 elements → 400 naming the limit; 32 levels are fine', async () => {
    const deep = (d: number) => JSON.stringify({ username: 'x', password: 'y', role: 'user', apiAccess: true, uiAccess: true, modules: [], email: JSON.parse('['.repeat(d) + ']'.repeat(d)) });
    const r = await s.api('POST', '/api/v1/users', { token: admin, body: '['.repeat(100_000) + ']'.repeat(100_000) });
    assert.equal(r.status, 400);
    assert.match(r.body.errorMessage, /deeper than 32/);
    assert.match((await s.api('POST', '/api/v1/users', { token: admin, body: deep(40) })).body.errorMessage, /deeper than 32/);
    const poisoned = '{"__proto__":1,"x":' + '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000) + '}';
    assert.equal((await s.api('POST', '/api/v1/session', { body: poisoned })).status, 400);
    const wide = JSON.stringify({ modules: Array.from({ length: 20_000 }, () => 'VM') });
    const w = await s.api('POST', '/api/v1/clients', { token: admin, body: wide });
    assert.equal(w.status, 400);
    assert.match(w.body.errorMessage, /more than 10000 elements/);
    // within the limits, validation answers as before
    const ok = await s.api('POST', '/api/v1/users', { token: admin, body: deep(20) });
    assert.equal(ok.status, 400);
    assert.doesNotMatch(ok.body.errorMessage, /deeper/);
    assert.match((await s.api('POST', '/api/v1/users', { token: admin, body: '{"__proto__":{"role":"manager"}}' })).body.errorMessage, /__proto__/);
  });

  test('a form with more than 100 fields → 400', async () => {
    const form = Array.from({ length: 101 }, (_, i) => `f${i}=1`).join('&');
    const r = await fetch(s.url + '/auth', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `username=admin&password=x&token=true&${form}` });
    assert.equal(r.status, 400);
    assert.match(await r.text(), /more than 100 fields/);
  });

  test('malformed HTTP on a raw socket: 400 from the HTTP parser, never a crash', async () => {
    const port = Number(new URL(s.url).port);
    const raw = (data: string) =>
      new Promise<string>((resolve) => {
        const c = net.connect(port, '127.0.0.1', () => c.end(data));
        let out = '';
        c.on('data', (d) => (out += d.toString()));
        c.on('close', () => resolve(out));
        c.on('error', () => resolve(out));
        c.setTimeout(3000, () => c.destroy());
      });
    for (const req of [
      'GET /api/v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\0b\r\n\r\n',
      'GET /api/v1/me HTTP/1.1\r\nHost: x\r\n folded: header\r\n\r\n',
      'POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
      'GARBAGE\r\n\r\n',
      `GET /${'a'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    ]) {
      const out = await raw(req);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0);
      assert.ok(status === 0 || (status >= 400 && status < 500), `${JSON.stringify(req.slice(0, 60))} → ${out.slice(0, 80)}`);
    }
    assert.equal((await s.api('GET', '/api/v1/me', { token: admin })).status, 200);
  });

  test('ids and path parameters: over-long, encoded, injected → 4xx', async () => {
    for (const id of ['a'.repeat(300), "1' OR '1'='1", '..%2F..%2Fetc', '%00', randomUUID()]) {
      for (const p of [`/api/v1/users/${id}`, `/api/v1/clients/${id}`, `/qas/subscription-token/${id}`]) {
        const r = await s.api('GET', p, { token: admin });
        assert.ok(r.status >= 400 && r.status < 500, `${p} → ${r.status}`);
      }
    }
  });
});
