import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import { loadConfig, ConfigError } from '../src/config.ts';
import { STORES, startGatehouse, createUser, postForm, freePort, ADMIN_PASSWORD, type TestServer } from './helpers.ts';

const root = path.resolve(import.meta.dirname, '..');
const cli = (args: string[], env: Record<string, string>) =>
  execFileSync(process.execPath, ['bin/gatehouse.mjs', ...args], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

for (const store of STORES) {
  describe(`users management API (${store})`, () => {
    let s: TestServer;
    let admin: string;
    before(async () => {
      s = await startGatehouse({ store });
      admin = await s.adminToken();
    });
    after(async () => s?.close());

    test('a manager creates, lists, reads and edits users of their subscription', async () => {
      const created = await s.api('POST', '/api/v1/users', {
        token: admin,
        body: { username: 'alice', password: 'Alice-Pass-1', email: 'alice@example.com', role: 'user', apiAccess: true, uiAccess: false, modules: ['WAS', 'VM', 'VM'] },
      });
      assert.equal(created.status, 201);
      assert.deepEqual(created.body.modules, ['VM', 'WAS']);
      assert.equal(created.body.passwordHash, undefined);
      assert.ok(!created.text.includes('Alice-Pass-1'));
      const list = await s.api('GET', '/api/v1/users', { token: admin });
      assert.deepEqual(list.body.users.map((u: { username: string }) => u.username).sort(), ['admin', 'alice']);
      const patched = await s.api('PATCH', `/api/v1/users/${created.body.id}`, { token: admin, body: { role: 'manager', uiAccess: true } });
      assert.equal(patched.body.role, 'manager');
      const dup = await s.api('POST', '/api/v1/users', { token: admin, body: { username: 'ALICE', password: 'Alice-Pass-1', role: 'user', apiAccess: true, uiAccess: true, modules: [] } });
      assert.equal(dup.status, 409, 'usernames are unique regardless of case');
    });

    test('bad input gets 400 naming the problem, and nothing is stored', async () => {
      const cases: Array<[unknown, RegExp]> = [
        [{ username: 'x1', password: 'Passw0rd!!', role: 'user', apiAccess: true, uiAccess: true, modules: ['NOPE'] }, /modules|must be one of/],
        [{ username: 'x2', password: 'Passw0rd!!', role: 'boss', apiAccess: true, uiAccess: true, modules: [] }, /role/],
        [{ username: 'x3', password: 'Passw0rd!!', role: 'user', apiAccess: true, uiAccess: true, modules: [], isAdmin: true }, /unknown field 'isAdmin'/],
        [{ username: 'x4', password: 'short', role: 'user', apiAccess: true, uiAccess: true, modules: [] }, /at least 8/],
        [{ username: "x5'; DROP TABLE users; --", password: 'Passw0rd!!', role: 'user', apiAccess: true, uiAccess: true, modules: [] }, /username/],
        [{ username: 'x6', password: 'Passw0rd!!', role: 'user', apiAccess: 'yes', uiAccess: true, modules: [] }, /boolean/],
        [{ username: 'x7', role: 'user', apiAccess: true, uiAccess: true, modules: [] }, /password/],
      ];
      for (const [body, msg] of cases) {
        const r = await s.api('POST', '/api/v1/users', { token: admin, body });
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.match(r.body.errorMessage, msg);
      }
      const text = await s.api('POST', '/api/v1/users', { token: admin, body: 'username=x', headers: { 'content-type': 'text/plain' } });
      assert.equal(text.status, 400);
      assert.match(text.body.errorMessage, /application\/json/);
      const broken = await s.api('POST', '/api/v1/users', { token: admin, body: '{"username":', headers: { 'content-type': 'application/json' } });
      assert.equal(broken.status, 400);
      const names = (await s.api('GET', '/api/v1/users', { token: admin })).body.users.map((u: { username: string }) => u.username);
      assert.ok(!names.some((n: string) => /^x\d/.test(n)));
    });

    test('non-managers get 403 with a reason; another subscription\'s users are out of reach', async () => {
      await createUser(s, admin, { username: 'plain', modules: ['VM'] });
      const plain = await s.login('plain', 'User-Pass-123!');
      const r = await s.api('GET', '/api/v1/users', { token: plain });
      assert.equal(r.status, 403);
      assert.match(r.body.errorMessage, /managers/);
      assert.equal((await s.api('POST', '/api/v1/users', { token: plain, body: { username: 'sneaky', password: 'Passw0rd!!', role: 'manager', apiAccess: true, uiAccess: true, modules: [] } })).status, 403);
      const me = await s.api('GET', '/api/v1/me', { token: plain });
      assert.equal(me.body.user.role, 'user');
      assert.deepEqual(me.body.modules, ['VM']);

      const other = await s.gh.services.users.createSubscription('Other', { username: 'other-mgr', password: 'Other-Pass-1' });
      const otherToken = await s.login('other-mgr', 'Other-Pass-1');
      const adminId = (await s.api('GET', '/api/v1/me', { token: admin })).body.user.id;
      const cross = await s.api('GET', `/api/v1/users/${adminId}`, { token: otherToken });
      assert.equal(cross.status, 404);
      const crossDeact = await s.api('POST', `/api/v1/users/${adminId}/deactivate`, { token: otherToken });
      assert.equal(crossDeact.status, 404);
      assert.deepEqual((await s.api('GET', '/api/v1/users', { token: otherToken })).body.users.map((u: { username: string }) => u.username), ['other-mgr']);
      assert.ok(other.subscription.id);
    });

    test('the last active manager cannot be demoted or deactivated', async () => {
      const sub = await s.gh.services.users.createSubscription('Solo', { username: `solo-${store}`, password: 'Solo-Pass-1' });
      const t = await s.login(`solo-${store}`, 'Solo-Pass-1');
      const r = await s.api('PATCH', `/api/v1/users/${sub.manager.id}`, { token: t, body: { role: 'user' } });
      assert.equal(r.status, 409);
      assert.match(r.body.errorMessage, /last active manager/);
    });

    test('Basic credentials work on the management API with the same checks', async () => {
      const basic = 'Basic ' + Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64');
      const me = await s.api('GET', '/api/v1/me', { headers: { authorization: basic } });
      assert.equal(me.status, 200);
      assert.equal(me.body.authMethod, 'basic');
      const bad = await s.api('GET', '/api/v1/me', { headers: { authorization: 'Basic ' + Buffer.from('admin:wrong').toString('base64') } });
      assert.equal(bad.status, 401);
    });

    test('the audit log records who did what, without secrets', async () => {
      const r = await s.api('GET', '/api/v1/audit?action=user.create', { token: admin });
      assert.equal(r.status, 200);
      assert.ok(r.body.events.length >= 1);
      const e = r.body.events[0];
      assert.equal(e.actorName, 'admin');
      assert.equal(e.outcome, 'success');
      assert.ok(e.sourceIp);
      assert.ok(!r.text.includes('Pass'), 'no passwords in audit');
    });

    test('health: live and ready', async () => {
      assert.equal((await s.api('GET', '/health/live')).status, 200);
      const ready = await s.api('GET', '/health/ready');
      assert.equal(ready.status, 200);
      assert.equal(ready.body.store, store);
    });
  });
}

describe('configuration', () => {
  test('an unknown or invalid YAML key is named in the error', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gh-cfg-'));
    const f = path.join(dir, 'g.yaml');
    writeFileSync(f, 'tokens:\n  ttlSeconds: 3600\n  ttlSecnds: 5\n');
    assert.throws(() => loadConfig({ GATEHOUSE_CONFIG: f }), (e: Error) => e instanceof ConfigError && /tokens\.ttlSecnds/.test(e.message));
    writeFileSync(f, 'auth:\n  maxFailuresPerUser: -3\n');
    assert.throws(() => loadConfig({ GATEHOUSE_CONFIG: f }), /auth\.maxFailuresPerUser/);
    writeFileSync(f, 'tokens:\n  ttlSeconds: 600\n');
    assert.equal(loadConfig({ GATEHOUSE_CONFIG: f }).tokens.ttlSeconds, 600);
    assert.throws(() => loadConfig({ DATABASE_URL: 'mysql://x' }), /DATABASE_URL/);
    assert.throws(() => loadConfig({ PORT: 'eighty' }), /PORT/);
    rmSync(dir, { recursive: true });
  });

  test('the CLI reports a configuration error and exits non-zero', () => {
    assert.throws(() => cli(['user', 'list'], { DATABASE_URL: 'mysql://nope' }), (e: { status: number; stderr: string }) => e.status === 3 && /DATABASE_URL/.test(e.stderr));
  });
});

describe('operator CLI', () => {
  test('subscription create, user add/list/deactivate, --help', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gh-cli-'));
    const env = { GATEHOUSE_DATA_DIR: dir, GATEHOUSE_ADMIN_PASSWORD: ADMIN_PASSWORD };
    try {
      assert.match(cli(['--help'], env), /serve[\s\S]*subscription[\s\S]*user[\s\S]*keys/);
      assert.match(cli(['user', 'add', '--help'], env), /--modules/);
      const sub = JSON.parse(cli(['subscription', 'create', '--name', 'Acme', '--manager', 'acme-boss', '--json'], env));
      assert.ok(sub.generatedPassword.length >= 12);
      const s = await startGatehouse({ dataDir: dir });
      try {
        const t = await s.login('acme-boss', sub.generatedPassword);
        assert.equal((await s.api('GET', '/api/v1/me', { token: t })).body.subscription.name, 'Acme');
        cli(['user', 'add', '--username', 'bob', '--password', 'Bob-Pass-123', '--modules', 'vm,was', '--api-access', '--subscription', 'Acme'], env);
        const bob = await s.login('bob', 'Bob-Pass-123');
        assert.deepEqual((await s.api('GET', '/api/v1/me', { token: bob })).body.modules, ['VM', 'WAS']);
        const list = cli(['user', 'list', '--subscription', 'Acme'], env);
        assert.match(list, /bob/);
        // deactivation through the CLI reaches the running server through the change log
        cli(['user', 'deactivate', 'bob'], env);
        let status = 200;
        for (let i = 0; i < 40 && status === 200; i++) {
          await new Promise((r) => setTimeout(r, 100));
          status = (await s.api('GET', '/api/v1/me', { token: bob })).status;
        }
        assert.equal(status, 401);
        assert.throws(() => cli(['user', 'add', '--username', 'x', '--role', 'king'], env), /--role/);
      } finally {
        await s.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('serving', () => {
  test('`npm start` on an empty data dir prints the URL and the generated admin login, which works', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gh-start-'));
    const port = await freePort();
    const child = spawn('npm', ['start', '--silent'], { cwd: root, detached: true, env: { ...process.env, GATEHOUSE_DATA_DIR: dir, PORT: String(port), GATEHOUSE_ADMIN_PASSWORD: '' } });
    try {
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      for (let i = 0; i < 100 && !/manager password: (\S+)/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(out, new RegExp(`listening on http://127\\.0\\.0\\.1:${port}`));
      const pw = /manager password: (\S+)/.exec(out)![1]!;
      const r = await postForm(`http://127.0.0.1:${port}/auth`, { username: 'admin', password: pw, token: 'true' });
      assert.equal(r.status, 201);
    } finally {
      // npm does not always pass signals on: stop the whole process group.
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(-child.pid!, 'SIGTERM');
      await exited;
      child.stdout.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('HTTPS on the same port when GATEHOUSE_TLS_CERT/KEY are set', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gh-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    const s = await startGatehouse({ env: { GATEHOUSE_TLS_CERT: path.join(dir, 'cert.pem'), GATEHOUSE_TLS_KEY: path.join(dir, 'key.pem') } });
    try {
      assert.match(s.url, /^https:/);
      const body = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = https.request(s.url + '/auth', { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
          let t = '';
          res.on('data', (d) => (t += d));
          res.on('end', () => resolve({ status: res.statusCode!, text: t }));
        });
        req.on('error', reject);
        req.end(`username=admin&password=${encodeURIComponent(ADMIN_PASSWORD)}&token=true`);
      });
      assert.equal(body.status, 201);
      assert.equal(body.text.split('.').length, 3);
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('/health/ready answers 503 when the database is gone, 200 while it is there', async () => {
  const s = await startGatehouse({ store: 'postgres' });
  try {
    assert.equal((await s.api('GET', '/health/ready')).status, 200);
    const pg = (await import('pg')).default;
    const admin = new pg.Client({ connectionString: (await import('./helpers.ts')).PG_ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE ${new URL(s.databaseUrl!).pathname.slice(1)} WITH (FORCE)`);
    await admin.end();
    const r = await s.api('GET', '/health/ready');
    assert.equal(r.status, 503);
    assert.equal(r.body.status, 'not ready');
    assert.equal((await s.api('GET', '/health/live')).status, 200);
  } finally {
    await s.close();
  }
});
