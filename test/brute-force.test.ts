/**
 * Hardening (issue 10): brute force and enumeration on every credential endpoint. Throttled per
 * account / client ID and per source IP; unknown and known names answer alike (body and
 * timing); every failure is audited; managers can unlock users and clients.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startGatehouse, createUser, postForm, ADMIN_PASSWORD, type TestServer } from './helpers.ts';

interface Client {
  clientId: string;
  clientSecret: string;
}

async function newClient(s: TestServer, token: string, name: string): Promise<Client> {
  const r = await s.api('POST', '/api/v1/clients', { token, body: { name, level: 'subscription', modules: ['VM'] } });
  assert.equal(r.status, 201, r.text);
  return r.body as Client;
}

const oidc = (s: TestServer, path: string, id: string, secret: string) =>
  fetch(s.url + path, { method: 'POST', headers: { clientId: id, clientSecret: secret } }).then(async (r) => ({ status: r.status, text: await r.text(), headers: r.headers }));

const oauthToken = (s: TestServer, id: string, secret: string) =>
  postForm(s.url + '/oauth2/token', { grant_type: 'client_credentials', client_id: id, client_secret: secret });

const consoleLogin = (s: TestServer, username: string, password: string) =>
  fetch(s.url + '/api/v1/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) })
    .then(async (r) => ({ status: r.status, text: await r.text(), headers: r.headers }));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timed<T>(f: () => Promise<T>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

describe('throttling per account and per client ID (lockout after 3 failures)', () => {
  let s: TestServer;
  let admin: string;
  before(async () => {
    s = await startGatehouse({ config: { auth: { maxFailuresPerUser: 3, maxFailuresPerIp: 10_000, failureWindowSeconds: 900, lockoutSeconds: 60, maxLockoutSeconds: 3600 } } as never });
    admin = await s.adminToken();
  });
  after(async () => s?.close());

  for (const path of ['/auth/oidc', '/auth/oauth']) {
    test(`${path}: a client ID is locked after repeated wrong secrets; the right secret is refused while locked; a manager unlocks it`, async () => {
      const c = await newClient(s, admin, `bf-${path.slice(6)}`);
      for (let i = 0; i < 3; i++) assert.equal((await oidc(s, path, c.clientId, 'wrong-secret')).status, 401);
      const locked = await oidc(s, path, c.clientId, c.clientSecret);
      assert.equal(locked.status, 429, locked.text);
      assert.match(locked.text, /Too many failed authentication attempts for this client/);
      assert.ok(Number(locked.headers.get('retry-after')) >= 1);
      // the lockout holds at the standard token endpoint too (same client ID)
      assert.equal((await oauthToken(s, c.clientId, c.clientSecret)).status, 429);
      const audit = await s.api('GET', `/api/v1/audit?action=client.authenticate&limit=100`, { token: admin });
      const mine = audit.body.events.filter((e: { targetId: string | null; details: { clientId?: string } | null }) =>
        e.targetId === c.clientId || e.details?.clientId === c.clientId);
      assert.equal(mine.filter((e: { outcome: string }) => e.outcome === 'failure').length, 3, 'each failure audited');
      assert.ok(mine.filter((e: { outcome: string }) => e.outcome === 'denied').length >= 2, 'each refusal while locked audited');
      const lockedEvt = await s.api('GET', `/api/v1/audit?action=client.locked`, { token: admin });
      assert.ok(lockedEvt.body.events.some((e: { targetId: string }) => e.targetId === c.clientId));
      const unlock = await s.api('POST', `/api/v1/clients/${c.clientId}/unlock`, { token: admin });
      assert.equal(unlock.status, 204, unlock.text);
      assert.equal((await oidc(s, path, c.clientId, c.clientSecret)).status, 201);
    });
  }

  test('/oauth2/token: client_secret_post and client_secret_basic are throttled per client ID', async () => {
    const c = await newClient(s, admin, 'bf-oauth2');
    for (let i = 0; i < 2; i++) assert.equal((await oauthToken(s, c.clientId, 'nope')).status, 401);
    const basic = `Basic ${Buffer.from(`${c.clientId}:nope`).toString('base64')}`;
    assert.equal((await postForm(s.url + '/oauth2/token', { grant_type: 'client_credentials' }, { authorization: basic })).status, 401);
    const r = await oauthToken(s, c.clientId, c.clientSecret);
    assert.equal(r.status, 429, r.text);
    assert.ok(r.headers.get('retry-after'));
    // introspection and revocation authenticate the same way
    assert.equal((await postForm(s.url + '/oauth2/introspect', { token: 'x.y.z', client_id: c.clientId, client_secret: c.clientSecret })).status, 429);
  });

  test('unknown client IDs are counted like known ones: the lockout reveals nothing', async () => {
    const ghost = randomUUID();
    for (let i = 0; i < 3; i++) assert.equal((await oidc(s, '/auth/oidc', ghost, 'wrong')).status, 401);
    const r = await oidc(s, '/auth/oidc', ghost, 'wrong');
    assert.equal(r.status, 429);
    assert.match(r.text, /Too many failed authentication attempts for this client/);
  });

  test('a non-manager cannot unlock a subscription client; unlocking another tenant\'s id is a 404', async () => {
    const c = await newClient(s, admin, 'bf-perm');
    await createUser(s, admin, { username: 'bf-plain', modules: ['VM'] });
    const user = await s.login('bf-plain', 'User-Pass-123!');
    assert.equal((await s.api('POST', `/api/v1/clients/${c.clientId}/unlock`, { token: user })).status, 403);
    assert.equal((await s.api('POST', `/api/v1/clients/${randomUUID()}/unlock`, { token: admin })).status, 404);
  });

  test('console sign-in (POST /api/v1/session) shares the account lockout; a manager unlocks the user', async () => {
    const id = await createUser(s, admin, { username: 'bf-console', modules: ['VM'] });
    for (let i = 0; i < 3; i++) assert.equal((await consoleLogin(s, 'bf-console', 'wrong')).status, 401);
    const locked = await consoleLogin(s, 'bf-console', 'User-Pass-123!');
    assert.equal(locked.status, 429, locked.text);
    assert.ok(locked.headers.get('retry-after'));
    // the same account is locked at /auth and at Basic on the gateway too
    assert.equal((await postForm(s.url + '/auth', { username: 'BF-Console', password: 'User-Pass-123!', token: 'true' })).status, 429);
    const audit = await s.api('GET', '/api/v1/audit?action=auth.password&limit=200', { token: admin });
    const fails = audit.body.events.filter((e: { actorName: string; outcome: string; details: { method?: string } }) =>
      e.actorName === 'bf-console' && e.outcome === 'failure' && e.details?.method === 'console');
    assert.equal(fails.length, 3, 'each console failure audited');
    assert.equal((await s.api('POST', `/api/v1/users/${id}/unlock`, { token: admin })).status, 204);
    assert.equal((await consoleLogin(s, 'bf-console', 'User-Pass-123!')).status, 201);
  });
});

describe('throttling per source IP', () => {
  let s: TestServer;
  let admin: string;
  before(async () => {
    s = await startGatehouse({ config: { auth: { maxFailuresPerUser: 1000, maxFailuresPerIp: 6, failureWindowSeconds: 900, lockoutSeconds: 60, maxLockoutSeconds: 3600 } } as never });
    admin = await s.adminToken();
  });
  after(async () => s?.close());

  test('client authentication: many client IDs from one address → that address is throttled, even with a valid pair', async () => {
    const c = await newClient(s, admin, 'ip-client');
    for (let i = 0; i < 7; i++) await oidc(s, '/auth/oauth', randomUUID(), 'guess');
    const r = await oidc(s, '/auth/oauth', c.clientId, c.clientSecret);
    assert.equal(r.status, 429, r.text);
    assert.match(r.text, /from this address/);
  });

  test('password logins (console): many usernames from one address → throttled', async () => {
    for (let i = 0; i < 7; i++) await consoleLogin(s, `nobody-${i}`, 'guess');
    const r = await consoleLogin(s, 'admin', ADMIN_PASSWORD);
    assert.equal(r.status, 429, r.text);
    assert.match(r.text, /from this address/);
  });
});

describe('no enumeration: unknown and known names get the same answer in similar time', () => {
  let s: TestServer;
  let admin: string;
  let client: Client;
  before(async () => {
    s = await startGatehouse();
    admin = await s.adminToken();
    await createUser(s, admin, { username: 'enum-known', modules: ['VM'] });
    client = await newClient(s, admin, 'enum-client');
  });
  after(async () => s?.close());

  test('/auth, Basic at the gateway, and the console: identical status and body for an unknown user and a wrong password', async () => {
    const known = await postForm(s.url + '/auth', { username: 'enum-known', password: 'wrong', token: 'true' });
    const unknown = await postForm(s.url + '/auth', { username: 'enum-unknown', password: 'wrong', token: 'true' });
    assert.equal(known.status, 401);
    assert.deepEqual([unknown.status, unknown.text], [known.status, known.text]);
    const ck = await consoleLogin(s, 'enum-known', 'wrong');
    const cu = await consoleLogin(s, 'enum-unknown', 'wrong');
    assert.deepEqual([cu.status, cu.text], [ck.status, ck.text]);
    const basic = (u: string) => fetch(s.url + '/api/v1/me', { headers: { authorization: `Basic ${Buffer.from(`${u}:wrong`).toString('base64')}` } }).then(async (r) => [r.status, await r.text()]);
    assert.deepEqual(await basic('enum-unknown'), await basic('enum-known'));
  });

  test('/auth/oidc, /auth/oauth, /oauth2/token: identical status and body for an unknown client ID and a wrong secret', async () => {
    for (const path of ['/auth/oidc', '/auth/oauth']) {
      const k = await oidc(s, path, client.clientId, 'wrong');
      const u = await oidc(s, path, randomUUID(), 'wrong');
      const junk = await oidc(s, path, 'not-a-uuid', 'wrong');
      assert.equal(k.status, 401);
      assert.deepEqual([u.status, u.text], [k.status, k.text]);
      assert.deepEqual([junk.status, junk.text], [k.status, k.text]);
    }
    const k = await oauthToken(s, client.clientId, 'wrong');
    const u = await oauthToken(s, randomUUID(), 'wrong');
    assert.deepEqual([u.status, u.text], [k.status, k.text]);
  });

  test('timing: an unknown username costs what a wrong password costs (one argon2 verification each)', async () => {
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 6; i++) {
      // interleaved, so machine load hits both alike; the known user's count stays under the lockout
      known.push(await timed(() => postForm(s.url + '/auth', { username: 'enum-known', password: `wrong-${i}`, token: 'true' })));
      unknown.push(await timed(() => postForm(s.url + '/auth', { username: `enum-nobody-${i}`, password: `wrong-${i}`, token: 'true' })));
    }
    const [a, b] = [median(known), median(unknown)];
    assert.ok(Math.max(a, b) / Math.min(a, b) < 2.5, `known ${a.toFixed(1)} ms vs unknown ${b.toFixed(1)} ms`);
    await s.gh.services.throttle.unlock('enum-known');
  });

  test('timing: an unknown client ID costs what a wrong secret costs', async () => {
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 8; i++) {
      known.push(await timed(() => oidc(s, '/auth/oidc', client.clientId, `wrong-${i}`)));
      unknown.push(await timed(() => oidc(s, '/auth/oidc', randomUUID(), `wrong-${i}`)));
    }
    const [a, b] = [median(known), median(unknown)];
    // both are a hash, a constant-time compare and an audit write: within a few ms of each other
    assert.ok(Math.abs(a - b) < 15 || Math.max(a, b) / Math.min(a, b) < 2.5, `known ${a.toFixed(1)} ms vs unknown ${b.toFixed(1)} ms`);
  });
});
