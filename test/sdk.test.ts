/**
 * The client SDK (`gatehouse/client`) against a real Gatehouse over real sockets, plus a small
 * Qualys-compatible module server (a real HTTP peer) for 409 rate limits and concurrency
 * limits, which a module API sends and Gatehouse's own endpoints do not.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
// Imported through the package's "exports" (self-reference), as a consumer would.
import {
  GatehouseClient,
  GatehouseHttpError,
  GatehouseNetworkError,
  TokenExpiredError,
  clientToken,
  clientCredentialsToken,
  passwordToken,
  decodeClaims,
  type Credentials,
} from 'gatehouse/client';
import { ADMIN_PASSWORD, createUser, freePort, startGatehouse, type TestServer } from './helpers.ts';
import { TestIdp, IDP_AUDIENCE } from './idp-provider.ts';
import { idpsConfigSchema } from '../src/idp/config-schema.ts';

async function auditCount(s: TestServer, admin: string, pred: (e: { action: string; outcome: string; actorName: string | null; targetId: string | null }) => boolean): Promise<number> {
  const r = await s.api('GET', '/api/v1/audit?limit=1000', { token: admin });
  assert.equal(r.status, 200);
  return (r.body.events as Array<Parameters<typeof pred>[0]>).filter(pred).length;
}

/**
 * A Qualys-style module API: `/api/2.0/fo/...` checks the bearer at Gatehouse (`/api/v1/me`),
 * answers 409 + `X-RateLimit-ToWait-Sec` while `rateLimited` > 0, reports its concurrency
 * limit, and records the most calls it ever had in flight.
 */
class FakeModuleServer {
  server!: http.Server;
  url = '';
  rateLimited = 0;
  toWaitSec = 1;
  concurrencyLimit: number | undefined;
  delayMs = 40;
  inFlight = 0;
  maxInFlight = 0;
  calls: Array<{ at: number; status: number }> = [];
  constructor(private readonly gatehouseUrl: string) {}

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const me = await fetch(this.gatehouseUrl + '/api/v1/me', { headers: { authorization: req.headers.authorization ?? '' } });
      await new Promise((r) => setTimeout(r, this.delayMs));
      const headers: Record<string, string> = { 'content-type': 'text/xml' };
      if (this.concurrencyLimit) headers['x-concurrency-limit-limit'] = String(this.concurrencyLimit);
      let status = 200;
      let body = '<?xml version="1.0" encoding="UTF-8" ?><SCAN_LIST_OUTPUT><RESPONSE><SCAN_LIST/></RESPONSE></SCAN_LIST_OUTPUT>';
      if (me.status !== 200) {
        status = 401;
        body = '<SIMPLE_RETURN><RESPONSE><CODE>2001</CODE><TEXT>Bad Login/Password</TEXT></RESPONSE></SIMPLE_RETURN>';
      } else if (this.rateLimited > 0) {
        this.rateLimited--;
        status = 409;
        headers['x-ratelimit-limit'] = '300';
        headers['x-ratelimit-window-sec'] = '3600';
        headers['x-ratelimit-remaining'] = '0';
        headers['x-ratelimit-towait-sec'] = String(this.toWaitSec);
        body = '<SIMPLE_RETURN><RESPONSE><CODE>1965</CODE><TEXT>This API cannot be run again for another 1 second</TEXT></RESPONSE></SIMPLE_RETURN>';
      }
      this.calls.push({ at: Date.now(), status });
      res.writeHead(status, headers).end(body);
    } finally {
      this.inFlight--;
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

describe('SDK: token caching, single flight, rotation (real Gatehouse)', () => {
  let s: TestServer;
  let admin: string;
  before(async () => {
    s = await startGatehouse();
    admin = await s.adminToken();
  });
  after(async () => s?.close());

  test('100 concurrent calls with password credentials make exactly one POST /auth', async () => {
    await createUser(s, admin, { username: 'sdk-user', password: 'Sdk-User-Pass-1!', modules: ['VM'] });
    const client = new GatehouseClient({ baseUrl: s.url, credentials: { kind: 'password', username: 'sdk-user', password: 'Sdk-User-Pass-1!' } });
    const results = await Promise.all(Array.from({ length: 100 }, () => client.me()));
    assert.ok(results.every((m) => m.user?.username === 'sdk-user'));
    assert.equal(await auditCount(s, admin, (e) => e.action === 'auth.password' && e.outcome === 'success' && e.actorName === 'sdk-user'), 1);
    assert.equal(client.tokenRequests, 1);
    // the cached token is reused afterwards too
    await client.me();
    assert.equal(await auditCount(s, admin, (e) => e.action === 'auth.password' && e.outcome === 'success' && e.actorName === 'sdk-user'), 1);
  });

  test('100 concurrent calls with client credentials make exactly one POST /auth/oidc; /auth/oauth for subscription-level', async () => {
    for (const level of ['user', 'subscription'] as const) {
      const c = await s.api('POST', '/api/v1/clients', { token: admin, body: { name: `sdk ${level}`, level, modules: ['all'] } });
      assert.equal(c.status, 201);
      const client = new GatehouseClient({ baseUrl: s.url, credentials: { kind: 'client', clientId: c.body.clientId, clientSecret: c.body.clientSecret, level } });
      const results = await Promise.all(Array.from({ length: 100 }, () => client.fetch('/api/v1/me')));
      assert.ok(results.every((r) => r.status === 200));
      await Promise.all(results.map((r) => r.body?.cancel()));
      const issued = await auditCount(s, admin, (e) => e.action === 'client.token' && e.outcome === 'success' && e.targetId === c.body.clientId);
      assert.equal(issued, 1, `${level}: one token for 100 calls`);
      const me = await client.me();
      assert.equal(me.clientId, c.body.clientId);
      assert.equal(me.kind, level === 'user' ? 'user' : 'client', 'a user-level client acts as its user');
      assert.equal(me.authMethod, level === 'user' ? 'user_client' : 'subscription_client');
    }
  });

  test('the token endpoint helpers return JWTs with their expiry; bad credentials give a clear error', async () => {
    const pw = await passwordToken(s.url, 'admin', ADMIN_PASSWORD);
    assert.equal(decodeClaims(pw.token)?.username, 'admin');
    assert.ok(pw.expiresAt && Math.abs(pw.expiresAt.getTime() - Date.now() - 4 * 3600_000) < 60_000, 'valid 4 hours');
    const c = await s.api('POST', '/api/v1/clients', { token: admin, body: { name: 'sdk helpers', level: 'subscription', modules: ['VM', 'WAS'] } });
    const viaQualys = await clientToken(s.url, c.body.clientId, c.body.clientSecret, 'subscription');
    assert.equal(decodeClaims(viaQualys.token)?.auth_method, 'subscription_client');
    const viaOAuth = await clientCredentialsToken(s.url, c.body.clientId, c.body.clientSecret, ['VM']);
    assert.equal(viaOAuth.scope, 'VM');

    await assert.rejects(passwordToken(s.url, 'admin', 'wrong'), (e: unknown) =>
      e instanceof GatehouseHttpError && e.status === 401 && /Invalid username or password/.test(e.message) && !e.message.includes('wrong'));
    await assert.rejects(clientToken(s.url, c.body.clientId, 'not-the-secret'), (e: unknown) =>
      e instanceof GatehouseHttpError && e.status === 401 && /Invalid client credentials/.test(e.message) && !e.message.includes('not-the-secret'));
    const bad = new GatehouseClient({ baseUrl: s.url, credentials: { kind: 'password', username: 'admin', password: 'wrong' } });
    await assert.rejects(bad.me(), (e: unknown) => e instanceof GatehouseHttpError && e.status === 401 && e.path === '/auth');
  });

  test('bad options and unreachable servers give clear errors; credentials never go to another origin', async () => {
    const creds: Credentials = { kind: 'password', username: 'admin', password: ADMIN_PASSWORD };
    assert.throws(() => new GatehouseClient({ baseUrl: 'not a url', credentials: creds }), /not a URL/);
    assert.throws(() => new GatehouseClient({ baseUrl: s.url, credentials: { kind: 'client', clientId: 'x', clientSecret: '' } }), /clientSecret/);
    assert.throws(() => new GatehouseClient({ baseUrl: s.url, credentials: creds, maxConcurrency: 0 }), /maxConcurrency/);
    assert.throws(() => new GatehouseClient({ baseUrl: s.url, credentials: { kind: 'nope' } as never }), /unknown credentials kind 'nope'/);
    const client = new GatehouseClient({ baseUrl: s.url, credentials: creds });
    await assert.rejects(client.fetch('https://evil.example/api/v1/me'), /refusing to send credentials to https:\/\/evil\.example/);
    await assert.rejects(client.subscriptionTokens.create({ expiryMinutes: 525601 }), /1 to 525600/);
    const down = new GatehouseClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, credentials: creds });
    await assert.rejects(down.me(), (e: unknown) => e instanceof GatehouseNetworkError && /cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/.test(e.message));
  });

  test('subscription tokens: create, list, get, delete; rotation leaves exactly one new live token', async () => {
    const warnings: string[] = [];
    const mgr = new GatehouseClient({ baseUrl: s.url, credentials: { kind: 'password', username: 'admin', password: ADMIN_PASSWORD }, onWarning: (m) => warnings.push(m) });
    for (const t of (await mgr.subscriptionTokens.list()).tokens) await mgr.subscriptionTokens.delete(t.secretId);

    const created = await mgr.subscriptionTokens.create({ expiryMinutes: 525600, modules: ['VM', 'WAS'] });
    assert.equal(decodeClaims(created.token)?.jti, created.secretId);
    const before = await mgr.subscriptionTokens.list();
    assert.deepEqual(before.tokens.map((t) => t.secretId), [created.secretId]);
    assert.equal(before.tokens[0]!.expiresSoon, false);

    // the new token works as a credential
    const user = new GatehouseClient({ baseUrl: s.url, credentials: { kind: 'subscriptionToken', token: created.token } });
    assert.equal((await user.me()).kind, 'subscription_token');

    const rotated = await mgr.subscriptionTokens.rotate(created.secretId);
    assert.equal(rotated.replacedSecretId, created.secretId);
    assert.notEqual(rotated.secretId, created.secretId);
    const after = await mgr.subscriptionTokens.list();
    assert.deepEqual(after.tokens.map((t) => t.secretId), [rotated.secretId], 'exactly one live token: the new one');
    assert.deepEqual(after.tokens[0]!.modules, ['VM', 'WAS'], 'modules carried over');
    assert.equal(Date.parse(after.tokens[0]!.expiresAt) - Date.parse(after.tokens[0]!.createdAt), 525600 * 60_000, 'lifetime carried over');
    // the old one is gone (spec 003's verify step) and refused; the new one works
    await assert.rejects(mgr.subscriptionTokens.get(created.secretId), (e: unknown) => e instanceof GatehouseHttpError && e.status === 404 && e.errorCode === 2003 && /Invalid Secret ID/.test(e.message));
    assert.equal((await user.fetch('/api/v1/me')).status, 401, 'a static token is not retried: the old token is refused');
    const rotatedUser = new GatehouseClient({ baseUrl: s.url, credentials: { kind: 'subscriptionToken', token: rotated.token } });
    assert.equal((await rotatedUser.me()).secretId, rotated.secretId);
    assert.match(await mgr.subscriptionTokens.delete(rotated.secretId), /^Secret with ID .* deleted successfully\.$/);
    assert.deepEqual(warnings, []);
  });

  test('a subscription token within 15 days of expiry is flagged and warned about (once), never printed', async () => {
    const warnings: string[] = [];
    const mgr = new GatehouseClient({ baseUrl: s.url, credentials: { kind: 'jwt', token: admin }, onWarning: (m) => warnings.push(m) });
    const soon = await mgr.subscriptionTokens.create({ expiryMinutes: 60 * 24 * 10 });
    const list = await mgr.subscriptionTokens.list();
    assert.equal(list.tokens.find((t) => t.secretId === soon.secretId)?.expiresSoon, true);
    const using = new GatehouseClient({ baseUrl: s.url, credentials: { kind: 'subscriptionToken', token: soon.token }, onWarning: (m) => warnings.push(m) });
    await using.me();
    await using.me();
    assert.equal(warnings.length, 2, 'once from the listing, once from using it');
    assert.ok(warnings.every((w) => w.includes(soon.secretId) && /expires on .* \(in 10 day\(s\)\); rotate it/.test(w) && !w.includes(soon.token)));
    await mgr.subscriptionTokens.delete(soon.secretId);

    // a static token past its expiry fails before any request, saying when it expired
    const later = new GatehouseClient({ baseUrl: s.url, credentials: { kind: 'jwt', token: admin }, now: () => Date.now() + 5 * 3600_000 });
    await assert.rejects(later.me(), (e: unknown) => e instanceof TokenExpiredError && /the token expired at \d{4}-/.test(e.message));
  });

  test('IdP tokens: used as they are, or exchanged (RFC 8693) through a callback', async () => {
    const idp = await TestIdp.start({ 'admin-idp': { preferred_username: 'admin' } });
    // the running server accepts IdPs added through the API; allow http for the local IdP
    const s2 = await startGatehouse({ config: { idps: idpsConfigSchema.parse({ allowHttp: true, jwksCooldownSeconds: 1 }) } });
    try {
      const admin2 = await s2.adminToken();
      const r = await s2.api('POST', '/api/v1/idps', { token: admin2, body: { issuer: idp.issuer, audiences: [IDP_AUDIENCE], algorithms: ['ES256'] } });
      assert.equal(r.status, 201, r.text);
      let calls = 0;
      const provide = () => {
        calls++;
        return idp.token('admin-idp');
      };
      const exchanged = new GatehouseClient({ baseUrl: s2.url, credentials: { kind: 'idpToken', token: provide, exchange: true } });
      const mes = await Promise.all(Array.from({ length: 20 }, () => exchanged.me()));
      assert.ok(mes.every((m) => m.user?.username === 'admin' && m.authMethod === 'idp'));
      assert.equal(calls, 1, 'one IdP token and one exchange for 20 calls');
      assert.equal(exchanged.tokenRequests, 1);
      assert.equal(decodeClaims(await exchanged.getToken())?.iss, s2.url, 'a Gatehouse JWT');

      const direct = new GatehouseClient({ baseUrl: s2.url, credentials: { kind: 'idpToken', token: await idp.token('admin-idp') } });
      assert.equal((await direct.me()).user?.username, 'admin');
      assert.equal(decodeClaims(await direct.getToken())?.iss, idp.issuer, 'the IdP token itself');
    } finally {
      await s2.close();
      await idp.close();
    }
  });
});

describe('SDK: expired tokens are renewed without the caller noticing (tokens.ttlSeconds: 2)', () => {
  let s: TestServer;
  let admin: string;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-sdk-'));
    writeFileSync(path.join(dir, 'gatehouse.yaml'), 'tokens:\n  ttlSeconds: 2\n  clockSkewSeconds: 0\n');
    s = await startGatehouse({ env: { GATEHOUSE_CONFIG: path.join(dir, 'gatehouse.yaml') } });
    admin = await s.adminToken();
  });
  after(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('renewed ahead of expiry: every call succeeds across token lifetimes', async () => {
    const c = await s.api('POST', '/api/v1/clients', { token: admin, body: { name: 'short-lived', level: 'user', modules: ['all'] } });
    const client = new GatehouseClient({ baseUrl: s.url, credentials: { kind: 'client', clientId: c.body.clientId, clientSecret: c.body.clientSecret } });
    const first = await client.getToken();
    assert.equal((await client.me()).clientId, c.body.clientId);
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal((await s.api('GET', '/api/v1/me', { token: first })).status, 401, 'the first token is dead at the server');
    const results = await Promise.all(Array.from({ length: 30 }, () => client.fetch('/api/v1/me')));
    assert.deepEqual([...new Set(results.map((r) => r.status))], [200]);
    assert.notEqual(await client.getToken(), first);
    assert.equal(client.tokenRequests, 2, 'one renewal for 30 calls');
  });

  test('a 401 (the client believed the token still valid) is retried once with a fresh token', async () => {
    // The client's clock runs 10 s behind: it thinks the token is fresh when the server does not.
    const client = new GatehouseClient({ baseUrl: s.url, credentials: { kind: 'password', username: 'admin', password: ADMIN_PASSWORD }, now: () => Date.now() - 10_000 });
    const first = await client.getToken();
    await new Promise((r) => setTimeout(r, 2100));
    const results = await Promise.all(Array.from({ length: 10 }, () => client.me()));
    assert.ok(results.every((m) => m.user?.username === 'admin'));
    assert.notEqual(await client.getToken(), first);
    assert.equal(client.tokenRequests, 2, 'ten 401s, one renewal');
  });
});

describe('SDK: module APIs behind a Qualys-style gateway (409 + X-RateLimit-ToWait-Sec, concurrency limit)', () => {
  let s: TestServer;
  let mod: FakeModuleServer;
  let creds: Credentials;
  before(async () => {
    s = await startGatehouse();
    mod = await new FakeModuleServer(s.url).start();
    creds = { kind: 'jwt', token: await s.adminToken() };
  });
  after(async () => {
    await mod?.close();
    await s?.close();
  });

  test('a 409 with X-RateLimit-ToWait-Sec is waited out and the call then succeeds', async () => {
    mod.rateLimited = 1;
    mod.toWaitSec = 1;
    mod.calls = [];
    const client = new GatehouseClient({ baseUrl: mod.url, credentials: creds });
    const t0 = Date.now();
    const res = await client.fetch('/api/2.0/fo/scan/?action=list', { headers: { 'X-Requested-With': 'curl' } });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /SCAN_LIST_OUTPUT/);
    assert.deepEqual(mod.calls.map((c) => c.status), [409, 200]);
    assert.ok(mod.calls[1]!.at - mod.calls[0]!.at >= 950, `waited ${mod.calls[1]!.at - mod.calls[0]!.at} ms`);
    assert.ok(Date.now() - t0 < 2900);
  });

  test('retries are bounded: after maxRetries the 409 is returned, and typed calls throw with the server message', async () => {
    mod.rateLimited = 5;
    mod.toWaitSec = 0;
    mod.calls = [];
    const client = new GatehouseClient({ baseUrl: mod.url, credentials: creds, rateLimit: { maxRetries: 2 } });
    const res = await client.fetch('/api/2.0/fo/scan/?action=list');
    assert.equal(res.status, 409);
    assert.equal(res.headers.get('x-ratelimit-towait-sec'), '0');
    assert.equal(mod.calls.length, 3, 'first try + 2 retries');
    mod.rateLimited = 3;
    await assert.rejects(client.request('GET', '/api/2.0/fo/scan/?action=list'), (e: unknown) =>
      e instanceof GatehouseHttpError && e.status === 409 && e.errorCode === 1965 && /cannot be run again/.test(e.message));
    mod.rateLimited = 1;
    mod.toWaitSec = 3600;
    const impatient = new GatehouseClient({ baseUrl: mod.url, credentials: creds, rateLimit: { maxWaitSeconds: 60 } });
    const t0 = Date.now();
    assert.equal((await impatient.fetch('/api/2.0/fo/scan/?action=list')).status, 409, 'a wait longer than maxWaitSeconds is not waited');
    assert.ok(Date.now() - t0 < 1000);
    mod.rateLimited = 0;
  });

  test('X-Concurrency-Limit-Limit bounds the calls in flight; an explicit maxConcurrency too', async () => {
    mod.concurrencyLimit = 3;
    mod.maxInFlight = 0;
    const client = new GatehouseClient({ baseUrl: mod.url, credentials: creds });
    const results = await Promise.all(Array.from({ length: 24 }, () => client.fetch('/api/2.0/fo/scan/?action=list')));
    assert.ok(results.every((r) => r.status === 200));
    assert.equal(client.concurrencyLimit, 3);
    assert.equal(mod.maxInFlight, 3, 'never more than the announced limit, and the limit is used');

    mod.concurrencyLimit = undefined;
    mod.maxInFlight = 0;
    const fixed = new GatehouseClient({ baseUrl: mod.url, credentials: creds, maxConcurrency: 2 });
    await Promise.all(Array.from({ length: 12 }, () => fixed.fetch('/api/2.0/fo/scan/?action=list').then((r) => r.text())));
    assert.equal(mod.maxInFlight, 2);

    mod.maxInFlight = 0;
    const open = new GatehouseClient({ baseUrl: mod.url, credentials: creds });
    await Promise.all(Array.from({ length: 12 }, () => open.fetch('/api/2.0/fo/scan/?action=list').then((r) => r.text())));
    assert.equal(open.concurrencyLimit, Number.POSITIVE_INFINITY, 'no header: no limit after the first call');
    assert.ok(mod.maxInFlight > 2);
  });
});
