/**
 * perf (issue 9): module calls are served by the gateway's fast path (before Fastify) when the
 * path is plain, and by the Fastify route otherwise. A caller must not be able to tell which:
 * same upstream request, same answer, same limits, same errors, same metrics.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startGatehouse, createUser, ADMIN_PASSWORD, type TestServer } from './helpers.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEchoUpstream, writeConfig, type EchoUpstream } from './gateway-upstream.ts';

describe('gateway fast path and Fastify route answer alike', () => {
  let s: TestServer;
  let up: EchoUpstream;
  let token: string;
  const basic = 'Basic ' + Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64');

  before(async () => {
    up = await startEchoUpstream();
    const routes = [
      { path: '/t/ok', module: 'VM', upstream: up.url, errorFormat: 'simple-return', auth: 'both' },
      { path: '/t/one', module: 'PC', upstream: up.url, errorFormat: 'json', auth: 'bearer' },
      { path: '/t/basic1', module: 'WAS', upstream: up.url, errorFormat: 'json', auth: 'basic' },
    ];
    const limits = { default: { rate: 1000, windowSec: 60, concurrency: 10 }, modules: { PC: { concurrency: 1 }, WAS: { concurrency: 1 } } };
    s = await startGatehouse({ store: 'sqlite', env: { GATEHOUSE_CONFIG: writeConfig({ gateway: { routes }, limits }) } });
    token = await s.adminToken();
  });
  after(async () => {
    await s?.close();
    await up?.close();
  });

  const call = (path: string, authorization = `Bearer ${token}`) => fetch(s.url + path, { headers: { authorization } });

  test('a plain path and an encoded one reach the upstream with the same identity and limit headers', async () => {
    for (const path of ['/t/ok/asset/ip/?action=list', '/t/ok/asset%2Fip/?action=list', '/t/ok//asset/ip/?action=list']) {
      const before = up.arrivals.length;
      const r = await call(path);
      assert.equal(r.status, 200, path);
      await r.arrayBuffer();
      assert.equal(r.headers.get('x-ratelimit-limit'), '1000', path);
      assert.equal(r.headers.get('x-concurrency-limit-limit'), '10', path);
      assert.equal(up.arrivals.length, before + 1, path);
      const a = up.arrivals.at(-1)!;
      assert.equal(a.url, path, 'the path and query go upstream unchanged');
      assert.equal(a.headers['x-gatehouse-user'], 'admin', path);
      assert.equal(a.headers['x-gatehouse-auth-method'], 'password', path);
      assert.equal(a.headers.authorization, undefined, 'credentials are never forwarded');
      assert.equal(a.headers['request-source'], 'gateway');
      assert.match(String(a.headers['x-forwarded-for']), /127\.0\.0\.1$/);
      assert.equal(a.headers['x-forwarded-proto'], 'http');
    }
  });

  test('refusals met on the fast path are answered in the route format, and spoofed identity headers never pass', async () => {
    const bad = await call('/t/ok/asset/ip/', 'Bearer not.a.jwt');
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('content-type') ?? '', /xml/);
    assert.match(await bad.text(), /<SIMPLE_RETURN>[\s\S]*<TEXT>[^<]+<\/TEXT>/);
    assert.match(bad.headers.get('www-authenticate') ?? '', /Basic realm=.*Bearer realm="gatehouse", error="invalid_token"/);
    const none = await fetch(s.url + '/t/ok/x');
    assert.equal(none.status, 401);
    assert.match(await none.text(), /SIMPLE_RETURN/);
    await createUser(s, token, { username: 'nomods', modules: [] });
    const nomods = await s.login('nomods', 'User-Pass-123!');
    const forbidden = await call('/t/ok/x', `Bearer ${nomods}`);
    assert.equal(forbidden.status, 403);
    assert.match(await forbidden.text(), /API permission for module VM/);
    const spoof = await fetch(s.url + '/t/ok/spoof', { headers: { authorization: `Bearer ${token}`, 'x-gatehouse-user': 'root', 'x-gatehouse-subscription': 'other' } });
    assert.equal(spoof.status, 200);
    await spoof.arrayBuffer();
    assert.equal(up.arrivals.at(-1)!.headers['x-gatehouse-user'], 'admin');
  });

  test('Basic credentials work on both paths, and a wrong password is refused on both', async () => {
    for (const path of ['/t/ok/b', '/t/ok/b%20c']) {
      const ok = await call(path, basic);
      assert.equal(ok.status, 200, path);
      await ok.arrayBuffer();
      const wrong = await call(path, 'Basic ' + Buffer.from('admin:wrong-password').toString('base64'));
      assert.equal(wrong.status, 401, path);
      await wrong.arrayBuffer();
    }
  });

  test('a concurrency slot is given back after each call: 30 calls in a row with a limit of 1 all pass', async () => {
    for (let i = 0; i < 30; i++) {
      const r = await call(`/t/one/${i}`);
      assert.equal(r.status, 200, `call ${i}: ${r.status}`);
      assert.equal(r.headers.get('x-concurrency-limit-running'), '1');
      await r.arrayBuffer();
    }
  });

  test('a client that leaves while its Basic password is still being checked does not keep its concurrency slot', async () => {
    // Fast path (plain path) and Fastify route (encoded path), each with a user whose password has
    // not been checked yet, so authentication is pending (argon2id on a worker) when the client goes.
    for (const [i, path] of ['/t/basic1/a', '/t/basic1/a%2Fb'].entries()) {
      const username = `leaver${i}`;
      await createUser(s, token, { username, password: 'Leaver-Pass-123!', modules: ['WAS'] });
      const auth = 'Basic ' + Buffer.from(`${username}:Leaver-Pass-123!`).toString('base64');
      const req = http.request(s.url + path, { headers: { authorization: auth } });
      req.on('error', () => {});
      req.end();
      await sleep(5);
      req.destroy();
      await sleep(1500); // the password check finishes, the limits are taken, and the gateway sees the client gone
      for (let k = 0; k < 3; k++) {
        const r = await call(path, auth);
        assert.equal(r.status, 200, `${path}, call ${k} after the client left: ${r.status} ${await r.clone().text()}`);
        assert.equal(r.headers.get('x-concurrency-limit-running'), '1');
        await r.arrayBuffer();
      }
    }
  });

  test('Expect: 100-continue (curl sends it for larger bodies) is answered here and the body reaches the upstream, on both paths', async () => {
    const body = Buffer.alloc(4096, 'x');
    for (const path of ['/t/ok/upload', '/t/ok/up%2Fload']) {
      const before = up.arrivals.length;
      const { status, sawContinue } = await new Promise<{ status: number; sawContinue: boolean }>((resolve, reject) => {
        let sawContinue = false;
        const req = http.request(s.url + path, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, expect: '100-continue', 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
        });
        req.on('continue', () => {
          sawContinue = true;
          req.end(body);
        });
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, sawContinue }));
        });
        req.on('error', reject);
      });
      assert.equal(sawContinue, true, `${path}: 100 Continue`);
      assert.equal(status, 200, path);
      assert.equal(up.arrivals.length, before + 1, path);
      const a = up.arrivals.at(-1)!;
      assert.equal(a.bytes, body.length, `${path}: the whole body reached the upstream`);
      assert.equal(a.headers.expect, undefined, `${path}: Expect is answered here, not forwarded`);
    }
  });

  test('calls served on the fast path are counted on /metrics under the Fastify route pattern', async () => {
    const n = 7;
    for (let i = 0; i < n; i++) await (await call(`/t/ok/count/${i}`)).arrayBuffer();
    await (await call('/t/ok')).arrayBuffer();
    const text = await (await fetch(s.url + '/metrics')).text();
    const count = (route: string) => Number(new RegExp(`gatehouse_http_requests_total\\{method="GET",route="${route.replace(/[/*]/g, '\\$&')}",status="200"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    assert.ok(count('/t/ok/*') >= n, `counted ${count('/t/ok/*')} of at least ${n}`);
    assert.ok(count('/t/ok') >= 1, 'the template path itself has its own label');
    assert.match(text, /gatehouse_http_requests_total\{method="GET",route="\/t\/ok\/\*",status="401"\} \d+/);
  });
});

describe('upstream timeouts (kept by the gateway, not per-request timers)', () => {
  let s: TestServer;
  let stalling: http.Server;
  let token: string;

  before(async () => {
    // Answers /slow-headers never, and /stall-body with a status line and half a body, then nothing.
    stalling = http.createServer((req, res) => {
      if (req.url!.startsWith('/t/sh')) return;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '10' });
      res.write('hello');
    });
    await new Promise<void>((r) => stalling.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(stalling.address() as AddressInfo).port}`;
    const routes = [
      { path: '/t/sh', module: 'VM', upstream: url, errorFormat: 'json', auth: 'bearer', timeouts: { headersMs: 300 } },
      { path: '/t/sb', module: 'VM', upstream: url, errorFormat: 'json', auth: 'bearer', timeouts: { bodyMs: 300 } },
    ];
    s = await startGatehouse({ store: 'sqlite', env: { GATEHOUSE_CONFIG: writeConfig({ gateway: { routes } }) } });
    token = await s.adminToken();
  });
  after(async () => {
    await s?.close();
    stalling?.closeAllConnections();
    await new Promise((r) => stalling?.close(r));
  });

  test('no status line within headersMs: 504 naming the module, after about that long', async () => {
    const t0 = Date.now();
    const r = await fetch(s.url + '/t/sh/x', { headers: { authorization: `Bearer ${token}` } });
    const took = Date.now() - t0;
    assert.equal(r.status, 504);
    assert.match((await r.json()).errorMessage, /VM module did not answer in time/);
    assert.ok(took >= 290 && took < 2000, `answered after ${took} ms`);
  });

  test('a body that stops for longer than bodyMs: the client sees the response cut, not a hang', async () => {
    const t0 = Date.now();
    const r = await fetch(s.url + '/t/sb/x', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200);
    await assert.rejects(r.text(), 'the body must end in an error, not complete');
    const took = Date.now() - t0;
    assert.ok(took >= 290 && took < 2000, `cut after ${took} ms`);
  });
});

describe('route matching by first segment (perf, issue 9)', () => {
  test('routeMatcher answers as matchRoute for every default route, nearby paths and random ones', async () => {
    const fc = (await import('fast-check')).default;
    const { buildRouteTable, matchRoute, routeMatcher } = await import('../src/gateway/route-table.ts');
    const routes = buildRouteTable(
      {
        enabled: true,
        defaultRoutes: true,
        upstreams: {},
        routes: [
          { path: '/{tenant}/custom', module: 'VM' },
          { path: '/bench/bearer', module: 'VM' },
          { path: '/api/{version}/fo/extra', module: 'PC' },
        ],
        timeouts: {},
        basicRealm: 'x',
        connectionsPerUpstream: 1,
      } as never,
      'http://127.0.0.1:1',
    );
    const fast = routeMatcher(routes);
    const samples = ['/api/2.0/fo/asset/ip/', '/api/2.0/fo/compliance/x', '/api/v1/users', '/api/2.0/fo', '/api/x/fo', '/qps/rest/3.0/search/was/webapp', '/qps/rest/3.0/search/am/x', '/qps/rest/2.0/x', '/msp/about.php', '/acme/custom/x', '/bench/bearer', '/bench/bearerx', '/', '/ioc/events', '/nowhere'];
    for (const p of samples) assert.equal(fast(p)?.path, matchRoute(routes, p)?.path, p);
    const seg = fc.constantFrom('api', '2.0', 'fo', 'compliance', 'qps', 'rest', '3.0', 'search', 'was', 'am', 'ca', 'msp', 'bench', 'bearer', 'custom', 'v1', 'x', 'ioc', 'etm');
    fc.assert(
      fc.property(fc.array(seg, { minLength: 1, maxLength: 6 }), fc.boolean(), (parts, slash) => {
        const p = '/' + parts.join('/') + (slash ? '/' : '');
        assert.equal(fast(p)?.path, matchRoute(routes, p)?.path, p);
      }),
      { numRuns: 3000 },
    );
  });
});
