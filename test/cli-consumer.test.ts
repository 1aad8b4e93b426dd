/**
 * The consumer CLI (`gatehouse login | token | call | subscription-token …`) as a user runs it:
 * the real binary in a child process, a temporary XDG_CONFIG_HOME, a real Gatehouse.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { ADMIN_PASSWORD, createUser, freePort, startGatehouse, type TestServer } from './helpers.ts';

const BIN = path.resolve(import.meta.dirname, '../bin/gatehouse.mjs');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function fakeJwt(claims: Record<string, unknown>): string {
  const b = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ alg: 'ES256', typ: 'at+jwt' })}.${b(claims)}.c2ln`;
}

describe('consumer CLI against a real Gatehouse', () => {
  let s: TestServer;
  let admin: string;
  let home: string;
  let env: NodeJS.ProcessEnv;
  const profileFile = () => path.join(home, 'gatehouse', 'profiles.json');
  const profiles = () => JSON.parse(readFileSync(profileFile(), 'utf8'));

  function cli(args: string[], o: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...args], { env: { ...env, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      const timer = setTimeout(() => child.kill(), 30_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
      child.stdin.end(o.input ?? '');
    });
  }

  before(async () => {
    s = await startGatehouse();
    admin = await s.adminToken();
    home = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-xdg-'));
    env = { ...process.env, XDG_CONFIG_HOME: home };
    for (const k of ['GATEHOUSE_DATA_DIR', 'DATABASE_URL', 'GATEHOUSE_PROFILE', 'GATEHOUSE_TOKEN', 'GATEHOUSE_CLIENT_ID', 'GATEHOUSE_CLIENT_SECRET', 'GATEHOUSE_PASSWORD']) delete env[k];
  });
  after(async () => {
    await s?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  test('login with a password writes a 0600 profile holding the JWT, never the password', async () => {
    const r = await cli(['login', '--url', s.url, '--username', 'admin', '--stdin'], { input: `${ADMIN_PASSWORD}\n` });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Logged in to http:\/\/127\.0\.0\.1:\d+ as user 'admin' \(manager\)/);
    assert.match(r.stdout, /The password was not stored: this token expires at \d{4}-\d\d-\d\dT/);
    assert.equal(statSync(profileFile()).mode & 0o777, 0o600);
    assert.equal(statSync(path.dirname(profileFile())).mode & 0o777, 0o700);
    const text = readFileSync(profileFile(), 'utf8');
    assert.ok(!text.includes(ADMIN_PASSWORD), 'no password in the profile');
    const p = profiles().profiles.default;
    assert.equal(p.url, s.url);
    assert.deepEqual(p.auth, { kind: 'password', username: 'admin' });
    assert.equal(decodeJwt(p.token.jwt).username, 'admin');
    assert.ok(!r.stdout.includes(p.token.jwt) && !r.stderr.includes(ADMIN_PASSWORD));
  });

  test('token prints a JWT that works at /api/v1/me; call /api/v1/me prints the body', async () => {
    const t = await cli(['token']);
    assert.equal(t.code, 0, t.stderr);
    const jwt = t.stdout.trim();
    const me = await s.api('GET', '/api/v1/me', { token: jwt });
    assert.equal(me.status, 200);
    assert.equal(me.body.user.username, 'admin');

    const c = await cli(['call', '/api/v1/me']);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(JSON.parse(c.stdout).user.username, 'admin');
    const j = await cli(['--json', 'call', '/api/v1/me', '-H', 'Accept: application/json']);
    const out = JSON.parse(j.stdout);
    assert.equal(out.status, 200);
    assert.equal(out.body.kind, 'user');
  });

  test('call: curl-like -X/-d/-H; HTTP errors print the body and exit non-zero', async () => {
    const missing = await cli(['call', '/api/v1/users/00000000-0000-4000-8000-000000000000']);
    assert.equal(missing.code, 4);
    assert.match(missing.stderr, /HTTP 404/);
    assert.match(missing.stdout, /errorMessage/);
    const bad = await cli(['call', '-X', 'POST', '/qas/subscription-token', '-d', '{"expiry": 0}']);
    assert.equal(bad.code, 2);
    assert.equal(JSON.parse(bad.stdout).errorCode, 2001);
    const header = await cli(['call', '/api/v1/me', '-H', 'no colon']);
    assert.equal(header.code, 2);
    assert.match(header.stderr, /header 'no colon' is not 'Name: value'/);
    const created = await cli(['call', '/api/v1/users', '-d', '{"username":"cli-bob","password":"Bob-Pass-1234!","role":"user","apiAccess":true,"uiAccess":false,"modules":["VM"]}']);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(JSON.parse(created.stdout).username, 'cli-bob');
  });

  test('subscription-token create | list --json | show | rotate | delete over HTTP; rotation leaves one new live token', async () => {
    const created = await cli(['--json', 'subscription-token', 'create', '--expiry', '525600', '--modules', 'VM,WAS']);
    assert.equal(created.code, 0, created.stderr);
    const c = JSON.parse(created.stdout);
    assert.equal(decodeJwt(c.token).jti, c.secretId);
    const list = await cli(['--json', 'subscription-token', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout).map((t: { secretId: string }) => t.secretId), [c.secretId]);
    const show = await cli(['subscription-token', 'show', c.secretId]);
    assert.match(show.stdout, /modules VM,WAS/);

    const rotated = await cli(['--json', 'subscription-token', 'rotate', c.secretId]);
    assert.equal(rotated.code, 0, rotated.stderr);
    const r = JSON.parse(rotated.stdout);
    assert.equal(r.replacedSecretId, c.secretId);
    const live = (await s.api('GET', '/qas/subscription-token/list', { token: admin })).body.tokens;
    assert.deepEqual(live.map((t: { secretId: string }) => t.secretId), [r.secretId], 'exactly one live token, the new one');
    assert.deepEqual(live[0].modules, ['VM', 'WAS']);
    assert.equal((await s.api('GET', '/api/v1/me', { token: c.token })).status, 401, 'the old token is refused');
    assert.equal((await s.api('GET', '/api/v1/me', { token: r.token })).status, 200);

    const gone = await cli(['subscription-token', 'show', c.secretId]);
    assert.equal(gone.code, 4);
    assert.match(gone.stderr, /Invalid Secret ID/);
    const del = await cli(['subscription-token', 'delete', r.secretId]);
    assert.equal(del.stdout.trim(), `Secret with ID ${r.secretId} deleted successfully.`);
    const bad = await cli(['subscription-token', 'create', '--expiry', '525601']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /expiry 525601 is out of range: give whole minutes, 1 to 525600/);
    // operator-only flags say what is wrong
    const both = await cli(['subscription-token', 'list', '--local', '--profile', 'default']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--local .* cannot be combined/);
  });

  test('a client profile stores ID and secret (0600) and renews its token; a subscription-token profile works', async () => {
    const c = await s.api('POST', '/api/v1/clients', { token: admin, body: { name: 'cli client', level: 'subscription', modules: ['all'] } });
    const login = await cli(['--json', 'login', '--url', s.url, '--client-id', c.body.clientId, '--level', 'subscription', '--profile', 'ci'], { env: { GATEHOUSE_CLIENT_SECRET: c.body.clientSecret } });
    assert.equal(login.code, 0, login.stderr);
    assert.equal(JSON.parse(login.stdout).kind, 'client');
    assert.deepEqual(profiles().profiles.ci.auth, { kind: 'client', clientId: c.body.clientId, clientSecret: c.body.clientSecret, level: 'subscription' });
    assert.equal(statSync(profileFile()).mode & 0o777, 0o600);
    const first = profiles().profiles.ci.token.jwt;
    assert.equal((await cli(['token', '--profile', 'ci'])).stdout.trim(), first, 'the cached token is reused');
    // the cached token is about to expire: `token` renews it and stores the new one
    const f = profiles();
    f.profiles.ci.token.expiresAt = new Date(Date.now() + 5_000).toISOString();
    writeFileSync(profileFile(), JSON.stringify(f), { mode: 0o600 });
    const renewed = (await cli(['token', '--profile', 'ci'])).stdout.trim();
    assert.notEqual(renewed, first);
    assert.equal(profiles().profiles.ci.token.jwt, renewed);
    assert.equal((await s.api('GET', '/api/v1/me', { token: renewed })).body.clientId, c.body.clientId);

    const st = (await s.api('POST', '/qas/subscription-token', { token: admin, body: { expiry: 60 } })).text;
    const stLogin = await cli(['login', '--url', s.url, '--subscription-token', '--stdin', '--profile', 'st'], { input: st });
    assert.equal(stLogin.code, 0, stLogin.stderr);
    assert.match(stLogin.stdout, /as subscription token /);
    assert.match(stLogin.stderr, /warning: subscription token .* expires on .*rotate it/, 'a token within 15 days of expiry is flagged');
    const me = await cli(['call', '/api/v1/me', '--profile', 'st']);
    assert.equal(JSON.parse(me.stdout).kind, 'subscription_token');
    const denied = await cli(['subscription-token', 'list', '--profile', 'st']);
    assert.equal(denied.code, 7, 'a subscription token is not a manager: 403');

    const listed = JSON.parse((await cli(['--json', 'profiles'])).stdout);
    assert.deepEqual(listed.map((p: { profile: string }) => p.profile).sort(), ['ci', 'default', 'st']);
    assert.ok(!JSON.stringify(listed).includes(c.body.clientSecret));
  });

  test('--url with credentials from the environment, no profile', async () => {
    const r = await cli(['call', '/api/v1/me', '--url', s.url], { env: { GATEHOUSE_TOKEN: admin } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).user.username, 'admin');
    const none = await cli(['token', '--url', s.url]);
    assert.equal(none.code, 3);
    assert.match(none.stderr, /set GATEHOUSE_TOKEN/);
  });

  test('errors: exit codes and messages that say what to do', async () => {
    const noProfile = await cli(['token', '--profile', 'nope']);
    assert.equal(noProfile.code, 3);
    assert.match(noProfile.stderr, /no profile 'nope' .*run: gatehouse login --url/);

    await createUser(s, admin, { username: 'cli-carol', password: 'Carol-Pass-1234!' });
    const wrong = await cli(['login', '--url', s.url, '--username', 'cli-carol', '--stdin', '--profile', 'carol'], { input: 'not-her-password' });
    assert.equal(wrong.code, 6);
    assert.match(wrong.stderr, /401 Invalid username or password/);
    assert.ok(!wrong.stderr.includes('not-her-password'));
    assert.equal(profiles().profiles.carol, undefined, 'nothing saved');

    const noSecret = await cli(['login', '--url', s.url, '--username', 'cli-carol', '--profile', 'carol']);
    assert.equal(noSecret.code, 2);
    assert.match(noSecret.stderr, /pipe it with --stdin, set GATEHOUSE_PASSWORD/);
    const twoKinds = await cli(['login', '--url', s.url, '--username', 'x', '--subscription-token']);
    assert.equal(twoKinds.code, 2);

    const port = await freePort();
    const down = await cli(['login', '--url', `http://127.0.0.1:${port}`, '--username', 'admin', '--stdin', '--profile', 'down'], { input: 'x' });
    assert.equal(down.code, 8);
    assert.match(down.stderr, /cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);

    // a password profile whose JWT has expired: log in again (the password was never stored)
    const f = profiles();
    f.profiles.old = { url: s.url, auth: { kind: 'password', username: 'admin' }, token: { jwt: fakeJwt({ exp: 1_700_000_000, username: 'admin' }), expiresAt: '2023-11-14T22:13:20.000Z' }, savedAt: '2023-11-14T18:13:20.000Z' };
    writeFileSync(profileFile(), JSON.stringify(f), { mode: 0o600 });
    const expired = await cli(['call', '/api/v1/me', '--profile', 'old']);
    assert.equal(expired.code, 6);
    assert.match(expired.stderr, /the token of profile 'old' expired at 2023-11-14T22:13:20.000Z; run: gatehouse login --url .* --username admin --profile old/);

    const rotateLocal = await cli(['subscription-token', 'rotate', 'x', '--local']);
    assert.equal(rotateLocal.code, 2);
    assert.match(rotateLocal.stderr, /rotate runs over HTTP/);

    const out = await cli(['logout', '--profile', 'old']);
    assert.equal(out.code, 0);
    assert.equal(profiles().profiles.old, undefined);
    assert.ok(existsSync(profileFile()));
  });
});
