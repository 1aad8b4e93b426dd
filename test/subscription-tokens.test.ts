import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { STORES, startGatehouse, createUser, type TestServer } from './helpers.ts';

const run = promisify(execFile);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The four curl calls of spec 003, verbatim (including the PDF's line breaks and stray
 * backslashes). Only the placeholders change: the base URL, the JWT from /auth and the
 * secret ID from the expiry email.
 */
const SPEC_CURLS = {
  auth: String.raw`curl --location --request POST '<qualys_base_url>/auth' \
--header 'Content-Type: application/x-www-form-urlencoded' \
--data-urlencode 'username=quays_user123' \
--data-urlencode 'password=$Pass$@123' \
--data-urlencode 'token=true' -k`,
  delete: String.raw`curl --location --request DELETE '<qualys_base_url>/qas/subscription-token/token/52abec80-b0dd-4400-a2ef-ccf4fa80652c' \ --header 'Authorization: Bearer <JWT_FROM_AUTH_ENDPOINT>' \
`,
  verify: String.raw`curl --location '<qualys-base-url>/qas/subscription-token/52abec80-
b0dd-4400-a2ef-ccf4fa80652c' \
   --header 'Authorization: Bearer <JWT_FROM_AUTH_ENDPOINT>' \
`,
  create: String.raw`curl --location '<qualys-base-url>/qas/subscription-token' \
--header 'Authorization: Bearer <JWT_FROM_AUTH_ENDPOINT>' \
--header 'Content-Type: application/json' \
--data '{ "expiry": 525600}'`,
  list: String.raw`curl --location '<qualys-base-url>/qas/subscription-token/list' \
--header 'Authorization: Bearer <JWT_FROM_AUTH_ENDPOINT>' \
`,
};

function fill(cmd: string, url: string, jwt = '', secretId = ''): string {
  return cmd
    .replace(/<qualys[_-]base[_-]url>/g, url)
    .replaceAll('<JWT_FROM_AUTH_ENDPOINT>', jwt)
    .replaceAll('52abec80-b0dd-4400-a2ef-ccf4fa80652c', secretId)
    // the verify call's secret ID is split over two lines by the PDF
    .replace('52abec80-\nb0dd-4400-a2ef-ccf4fa80652c', secretId);
}

/** Run a spec curl through a real shell and a real curl; returns what it prints. */
async function shellCurl(cmd: string): Promise<string> {
  const { stdout } = await run('bash', ['-c', cmd], { timeout: 10_000 });
  return stdout;
}

async function create(s: TestServer, token: string, body: unknown = { expiry: 525600 }) {
  return s.api('POST', '/qas/subscription-token', { token, body });
}

for (const store of STORES) {
  describe(`subscription tokens (${store})`, () => {
    let s: TestServer;
    let admin: string;
    before(async () => {
      s = await startGatehouse({ store });
      admin = await s.adminToken();
      await createUser(s, admin, { username: 'quays_user123', password: '$Pass$@123', role: 'manager' });
    });
    after(async () => s?.close());

    test('the curl calls of 003, run by a real shell and curl, print what 003 shows', async () => {
      const jwt = (await shellCurl(fill(SPEC_CURLS.auth, s.url))).trim();
      assert.equal(decodeJwt(jwt).username, 'quays_user123');

      // 4. create (the long-lived JWT is the body)
      const longLived = (await shellCurl(fill(SPEC_CURLS.create, s.url, jwt))).trim();
      const claims = decodeJwt(longLived);
      assert.equal(claims.auth_method, 'subscription_token');
      assert.equal(claims.exp! - claims.iat!, 525600 * 60);
      const secretId = claims.jti!;
      assert.match(secretId, UUID);
      assert.equal((await s.api('GET', '/api/v1/me', { token: longLived })).status, 200);

      // list
      const list = JSON.parse(await shellCurl(fill(SPEC_CURLS.list, s.url, jwt)));
      assert.ok(list.tokens.some((t: { secretId: string }) => t.secretId === secretId));

      // 2. delete by secret ID (sent as fetch with the same method and header: the PDF's
      //    "\ --header" on one line makes a shell pass " --header" to curl as a URL)
      const del = await fetch(`${s.url}/qas/subscription-token/token/${secretId}`, { method: 'DELETE', headers: { Authorization: `Bearer ${jwt}` } });
      assert.equal(del.status, 200);
      assert.equal(await del.text(), `Secret with ID ${secretId} deleted successfully.`);

      // 3. verify: no token exists against the deleted secret ID
      const verify = await fetch(`${s.url}/qas/subscription-token/${secretId}`, { headers: { Authorization: `Bearer ${jwt}` } });
      assert.equal(verify.status, 404);
      assert.deepEqual(await verify.json(), { errorCode: 2003, errorMessage: 'Invalid Secret ID' });
      // the deleted secret's token is refused on its next use
      const me = await s.api('GET', '/api/v1/me', { token: longLived });
      assert.equal(me.status, 401);
      assert.match(me.body.errorMessage, /deleted/);
    });

    test('the delete and verify curls through the shell, as far as the PDF text allows', async () => {
      const jwt = await s.login('quays_user123', '$Pass$@123');
      const { text: token } = await create(s, jwt, { expiry: 60 });
      const secretId = decodeJwt(token).jti!;
      // Joined the way the commands read in the guide (the PDF wraps lines mid-argument).
      const del = fill(SPEC_CURLS.delete, s.url, jwt, secretId).replace("' \\ --header", "' \\\n--header");
      assert.equal(await shellCurl(del), `Secret with ID ${secretId} deleted successfully.`);
      const verify = fill(SPEC_CURLS.verify, s.url, jwt, secretId);
      assert.deepEqual(JSON.parse(await shellCurl(verify)), { errorCode: 2003, errorMessage: 'Invalid Secret ID' });
    });

    test('bad create requests get 400 with a numeric code and a message saying what to fix', async () => {
      const cases: Array<[string, RequestInit, number, RegExp]> = [
        ['expiry 0', { body: '{"expiry": 0}', headers: { 'content-type': 'application/json' } }, 2001, /1 to 525600/],
        ['expiry too large', { body: '{"expiry": 525601}', headers: { 'content-type': 'application/json' } }, 2001, /525601, out of range/],
        ['non-integer', { body: '{"expiry": 60.5}', headers: { 'content-type': 'application/json' } }, 2001, /not a whole number/],
        ['string', { body: '{"expiry": "60"}', headers: { 'content-type': 'application/json' } }, 2001, /JSON number/],
        ['missing expiry', { body: '{}', headers: { 'content-type': 'application/json' } }, 2001, /missing/],
        ['missing body', {}, 2000, /body is missing/],
        ['empty JSON body', { body: '', headers: { 'content-type': 'application/json' } }, 2000, /body is missing/],
        ['not JSON', { body: '{expiry: 5', headers: { 'content-type': 'application/json' } }, 2000, /not valid JSON/],
        ['form', { body: 'expiry=60', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 2000, /Content-Type must be application\/json/],
        ['unknown field', { body: '{"expiry": 60, "expires": 5}', headers: { 'content-type': 'application/json' } }, 2000, /Unknown field.*'expires'/],
        ['bad module', { body: '{"expiry": 60, "modules": ["XX"]}', headers: { 'content-type': 'application/json' } }, 2004, /unknown module/],
      ];
      for (const [name, init, code, message] of cases) {
        const res = await fetch(`${s.url}/qas/subscription-token`, { ...init, method: 'POST', headers: { ...(init.headers as object), authorization: `Bearer ${admin}` } });
        const body = await res.json();
        assert.equal(res.status, 400, name);
        assert.equal(body.errorCode, code, name);
        assert.match(body.errorMessage, message, name);
      }
      const noAuth = await s.api('POST', '/qas/subscription-token', { body: { expiry: 60 } });
      assert.equal(noAuth.status, 401);
      assert.equal(noAuth.body.errorCode, 2005);
    });

    test('list and detail: secret ID, creator, dates, last use, alert; never the token; other subscriptions see 2003', async () => {
      const { text: token, status, headers } = await create(s, admin, { expiry: 90, modules: ['VM', 'WAS'] });
      assert.equal(status, 201);
      assert.match(headers.get('content-type')!, /^text\/plain/);
      const secretId = decodeJwt(token).jti!;
      assert.equal((await s.api('GET', '/api/v1/me', { token })).status, 200);
      const list = await s.api('GET', '/qas/subscription-token/list', { token: admin });
      assert.equal(list.status, 200);
      assert.ok(!list.text.includes(token.split('.')[2]!), 'the token never appears in the list');
      const item = list.body.tokens.find((t: { secretId: string }) => t.secretId === secretId);
      assert.equal(item.createdBy.username, 'admin');
      assert.equal(Date.parse(item.expiresAt) - Date.parse(item.createdAt), 90 * 60_000);
      assert.ok(item.lastUsedAt, 'last use is shown');
      assert.equal(item.alertSent, false);
      assert.deepEqual(item.modules, ['VM', 'WAS']);
      const detail = await s.api('GET', `/qas/subscription-token/${secretId}`, { token: admin });
      assert.deepEqual(detail.body, item);

      const other = await s.gh.services.users.createSubscription(`Other ${store}`, { username: `other-mgr-${store}`, password: 'Other-Pass-123!' });
      assert.ok(other.subscription.id);
      const otherJwt = await s.login(`other-mgr-${store}`, 'Other-Pass-123!');
      const foreign = await s.api('GET', `/qas/subscription-token/${secretId}`, { token: otherJwt });
      assert.deepEqual(foreign.body, { errorCode: 2003, errorMessage: 'Invalid Secret ID' });
      assert.deepEqual((await s.api('DELETE', `/qas/subscription-token/token/${secretId}`, { token: otherJwt })).body, { errorCode: 2003, errorMessage: 'Invalid Secret ID' });
      assert.ok(!(await s.api('GET', '/qas/subscription-token/list', { token: otherJwt })).text.includes(secretId));
      assert.deepEqual((await s.api('GET', '/qas/subscription-token/not-a-uuid', { token: admin })).body, { errorCode: 2003, errorMessage: 'Invalid Secret ID' });

      // deleting twice: the second answer is 2003
      assert.equal((await s.api('DELETE', `/qas/subscription-token/token/${secretId}`, { token: admin })).status, 200);
      const again = await s.api('DELETE', `/qas/subscription-token/token/${secretId}`, { token: admin });
      assert.equal(again.status, 404);
      assert.deepEqual(again.body, { errorCode: 2003, errorMessage: 'Invalid Secret ID' });

      const audit = await s.api('GET', '/api/v1/audit?limit=1000', { token: admin });
      const mine = audit.body.events.filter((e: { targetId: string }) => e.targetId === secretId).map((e: { action: string }) => e.action).sort();
      assert.deepEqual(mine, ['subscription_token.create', 'subscription_token.delete']);
      assert.ok(!audit.text.includes(token), 'the token never reaches the audit log');
      assert.ok(!s.logs.text.includes(token), 'the token never reaches the logs');
    });

    test('a subscription token acts for the subscription with its modules and survives its creator\'s deactivation', async () => {
      const mgrId = await createUser(s, admin, { username: `creator-${store}`, role: 'manager' });
      const creator = await s.login(`creator-${store}`, 'User-Pass-123!');
      const { text: token } = await create(s, creator, { expiry: 600, modules: ['VM'] });
      assert.equal((await s.api('POST', `/api/v1/users/${mgrId}/deactivate`, { token: admin })).status, 200);
      assert.equal((await s.api('GET', '/api/v1/me', { token: creator })).status, 401, "the creator's own JWT dies");
      const me = await s.api('GET', '/api/v1/me', { token });
      assert.equal(me.status, 200);
      assert.equal(me.body.kind, 'subscription_token');
      assert.equal(me.body.user, null);
      assert.deepEqual(me.body.modules, ['VM']);
      assert.equal(me.body.secretId, decodeJwt(token).jti);
      // it is not a manager: it cannot manage subscription tokens
      const refused = await create(s, token, { expiry: 60 });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.errorCode, 2006);
    });
  });

  describe(`the limit of 10 live tokens per subscription (${store})`, () => {
    let s: TestServer;
    before(async () => {
      s = await startGatehouse({ store });
    });
    after(async () => s?.close());

    test('50 simultaneous creates leave exactly 10; the 11th is refused with 2002; a deletion frees a place', async () => {
      const admin = await s.adminToken();
      const results = await Promise.all(Array.from({ length: 50 }, () => create(s, admin, { expiry: 120 })));
      const ok = results.filter((r) => r.status === 201);
      const refused = results.filter((r) => r.status !== 201);
      assert.equal(ok.length, 10, `statuses: ${results.map((r) => r.status).join(',')}`);
      for (const r of refused) {
        assert.equal(r.status, 409);
        assert.equal(r.body.errorCode, 2002);
        assert.match(r.body.errorMessage, /already has 10 active subscription tokens/);
      }
      const list = await s.api('GET', '/qas/subscription-token/list', { token: admin });
      assert.equal(list.body.count, 10);
      const eleventh = await create(s, admin, { expiry: 120 });
      assert.equal(eleventh.status, 409);
      assert.equal(eleventh.body.errorCode, 2002);
      const victim = list.body.tokens[0].secretId;
      assert.equal((await s.api('DELETE', `/qas/subscription-token/token/${victim}`, { token: admin })).status, 200);
      assert.equal((await create(s, admin, { expiry: 120 })).status, 201);
      assert.equal((await s.api('GET', '/qas/subscription-token/list', { token: admin })).body.count, 10);
    });
  });
}

describe('deletion reaches another node sharing the PostgreSQL database', () => {
  test('a token deleted on node A is refused on node B at its next use', async () => {
    const a = await startGatehouse({ store: 'postgres', keepData: true });
    // (a's issuer is its own URL; b is told to use it)
    // one issuer for the cluster, as behind a load balancer
    const b = await startGatehouse({ databaseUrl: a.databaseUrl!, dataDir: a.dataDir, config: { publicUrl: a.url } });
    try {
      const admin = await a.adminToken();
      const { text: token } = await create(a, admin, { expiry: 60 });
      assert.equal((await b.api('GET', '/api/v1/me', { token })).status, 200);
      assert.equal((await a.api('DELETE', `/qas/subscription-token/token/${decodeJwt(token).jti}`, { token: admin })).status, 200);
      let status = 200;
      for (let i = 0; i < 20 && status === 200; i++) {
        await new Promise((r) => setTimeout(r, 100));
        status = (await b.api('GET', '/api/v1/me', { token })).status;
      }
      assert.equal(status, 401);
    } finally {
      await b.close();
      await a.stop();
      const { default: pg } = await import('pg');
      const name = new URL(a.databaseUrl!).pathname.slice(1);
      const c = new pg.Client({ connectionString: process.env.GATEHOUSE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres' });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    }
  });
});

describe('CLI: gatehouse subscription-token', () => {
  test('create, list, show, delete on the local store', async () => {
    const s = await startGatehouse({ keepData: true });
    await s.stop();
    const env = { ...process.env, GATEHOUSE_DATA_DIR: s.dataDir };
    const bin = path.resolve(import.meta.dirname, '../bin/gatehouse.mjs');
    const cli = (...args: string[]) => run(process.execPath, [bin, ...args], { env, timeout: 30_000 });
    try {
      const created = JSON.parse((await cli('--json', 'subscription-token', 'create', '--expiry', '60', '--modules', 'VM')).stdout);
      assert.match(created.secretId, UUID);
      assert.equal(decodeJwt(created.token).jti, created.secretId);
      const list = JSON.parse((await cli('--json', 'subscription-token', 'list')).stdout);
      assert.equal(list.length, 1);
      assert.equal(list[0].secretId, created.secretId);
      assert.ok(!JSON.stringify(list).includes(created.token));
      assert.match((await cli('subscription-token', 'show', created.secretId)).stdout, /modules VM/);
      assert.equal((await cli('subscription-token', 'delete', created.secretId)).stdout.trim(), `Secret with ID ${created.secretId} deleted successfully.`);
      await assert.rejects(cli('subscription-token', 'delete', created.secretId), (e: { stderr: string; code: number }) => /Invalid Secret ID/.test(e.stderr) && e.code === 4);
      await assert.rejects(cli('subscription-token', 'create', '--expiry', '525601'), (e: { stderr: string }) => /525601, out of range/.test(e.stderr));
    } finally {
      const { rmSync } = await import('node:fs');
      rmSync(s.dataDir, { recursive: true, force: true });
    }
  });
});
