/**
 * perf (issue 9): POST /auth is served by a fast path (before Fastify) when the request is the
 * common shape — no query, an urlencoded body with its Content-Length — and by the Fastify route
 * otherwise. A caller must not be able to tell which: same answers, same audit rows, same
 * throttling, same metrics. Also the username lookup from memory: changes apply at once.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startGatehouse, createUser, postForm, ADMIN_PASSWORD, type TestServer } from './helpers.ts';

const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

/** One raw HTTP/1.1 exchange: `parts` are written with a pause between them; resolves with the response text. */
function raw(url: string, parts: string[], pauseMs = 30): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), '127.0.0.1');
    let out = '';
    sock.on('data', (d) => {
      out += d.toString();
      const m = /content-length: (\d+)/i.exec(out);
      const end = out.indexOf('\r\n\r\n');
      if (m && end >= 0 && out.length >= end + 4 + Number(m[1])) sock.end();
    });
    sock.on('end', () => resolve(out));
    sock.on('error', reject);
    sock.on('connect', async () => {
      for (const p of parts) {
        sock.write(p);
        await new Promise((r) => setTimeout(r, pauseMs));
      }
    });
  });
}

describe('POST /auth: the fast path and the Fastify route answer alike', () => {
  let s: TestServer;
  let admin: string;
  before(async () => {
    s = await startGatehouse({ store: 'sqlite' });
    admin = await s.adminToken();
    await createUser(s, admin, { username: 'fp-user', modules: ['VM'] });
  });
  after(async () => s?.close());

  // The same form three ways: the fast path (plain), and two shapes it leaves to Fastify.
  const send = async (fields: Record<string, string>, how: 'fast' | 'query' | 'chunked') => {
    const body = new URLSearchParams(fields).toString();
    if (how === 'chunked') {
      // A streamed body has no Content-Length (Transfer-Encoding: chunked).
      const res = await fetch(s.url + '/auth', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode(body)), c.close()) }),
        duplex: 'half',
      } as RequestInit);
      return { status: res.status, text: await res.text(), headers: res.headers };
    }
    return postForm(s.url + (how === 'query' ? '/auth?via=fastify' : '/auth'), fields);
  };

  test('success: 201, the same headers, a token for the user', async () => {
    for (const how of ['fast', 'query', 'chunked'] as const) {
      const r = await send({ username: 'fp-user', password: 'User-Pass-123!', token: 'true' }, how);
      assert.equal(r.status, 201, `${how}: ${r.text}`);
      assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8', how);
      assert.equal(r.headers.get('cache-control'), 'no-store', how);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', how);
      assert.equal(Number(r.headers.get('content-length')), r.text.length, how);
      assert.equal(claims(r.text).username, 'fp-user', how);
      assert.equal(claims(r.text).auth_method, 'password', how);
    }
  });

  test('errors: the same status and body whichever path met them', async () => {
    const cases: Array<[Record<string, string>, number, string]> = [
      [{ username: 'fp-user', password: 'wrong-password', token: 'true' }, 401, 'invalid_credentials'],
      [{ username: 'nobody-here', password: 'User-Pass-123!', token: 'true' }, 401, 'invalid_credentials'],
      [{ username: 'fp-user', password: 'User-Pass-123!' }, 400, 'missing_parameter'],
      [{ username: 'fp-user', token: 'true' }, 400, 'missing_parameter'],
      [Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`f${i}`, 'x'])), 400, 'bad_request'],
    ];
    for (const [fields, status, code] of cases) {
      const seen = [];
      for (const how of ['fast', 'query', 'chunked'] as const) {
        const r = await send(fields, how);
        assert.equal(r.status, status, `${how} ${JSON.stringify(fields).slice(0, 60)}: ${r.text}`);
        assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8');
        assert.equal(JSON.parse(r.text).errorCode, code, r.text);
        seen.push(r.text);
      }
      assert.equal(new Set(seen).size, 1, `one body for all three paths: ${seen.join(' | ')}`);
    }
  });

  test('each failed login is audited once and counted once toward the lockout', async () => {
    await createUser(s, admin, { username: 'fp-count', modules: ['VM'] });
    for (let i = 0; i < 3; i++) assert.equal((await send({ username: 'fp-count', password: 'nope-nope', token: 'true' }, 'fast')).status, 401);
    const audit = await s.api('GET', '/api/v1/audit?action=auth.password&limit=200', { token: admin });
    const mine = audit.body.events.filter((e: { actorName: string }) => e.actorName === 'fp-count');
    assert.deepEqual(mine.map((e: { outcome: string }) => e.outcome), ['failure', 'failure', 'failure']);
    assert.equal((await send({ username: 'fp-count', password: 'User-Pass-123!', token: 'true' }, 'fast')).status, 201);
    const after = await s.api('GET', '/api/v1/audit?action=auth.password&limit=200', { token: admin });
    assert.equal(after.body.events.filter((e: { actorName: string; outcome: string }) => e.actorName === 'fp-count' && e.outcome === 'success').length, 1);
  });

  test('a charset parameter, a body sent in pieces, and a client that leaves mid-body', async () => {
    const ok = await postForm(s.url + '/auth', { username: 'fp-user', password: 'User-Pass-123!', token: 'true' }, { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' });
    assert.equal(ok.status, 201, ok.text);

    const body = 'username=fp-user&password=User-Pass-123%21&token=true';
    const head = `POST /auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
    const pieces = await raw(s.url, [head, body.slice(0, 10), body.slice(10)]);
    assert.match(pieces, /^HTTP\/1\.1 201 /, pieces);

    // Headers and half the body, then gone: nothing to answer, and the server carries on.
    await new Promise<void>((resolve) => {
      const sock = net.connect(Number(new URL(s.url).port), '127.0.0.1', () => {
        sock.write(head + body.slice(0, 20));
        setTimeout(() => (sock.destroy(), resolve()), 50);
      });
    });
    assert.equal((await send({ username: 'fp-user', password: 'User-Pass-123!', token: 'true' }, 'fast')).status, 201);
  });

  test('successful fast-path logins are counted in the request metrics under POST /auth', async () => {
    const count = async () => {
      const text = await (await fetch(s.url + '/metrics')).text();
      const m = /gatehouse_http_requests_total\{method="POST",route="\/auth",status="201"\} (\d+)/.exec(text);
      return m ? Number(m[1]) : 0;
    };
    const before = await count();
    for (let i = 0; i < 3; i++) assert.equal((await send({ username: 'fp-user', password: 'User-Pass-123!', token: 'true' }, 'fast')).status, 201);
    assert.equal(await count(), before + 3);
  });
});

describe('the user behind a username comes from memory, and changes apply at once', () => {
  let s: TestServer;
  let admin: string;
  before(async () => {
    s = await startGatehouse({ store: 'sqlite' });
    admin = await s.adminToken();
  });
  after(async () => s?.close());

  const login = (username: string, password: string) => postForm(s.url + '/auth', { username, password, token: 'true' });

  test('a new password works at once and the old one is refused', async () => {
    const id = await createUser(s, admin, { username: 'mem-pw', modules: ['VM'] });
    assert.equal((await login('mem-pw', 'User-Pass-123!')).status, 201);
    assert.equal((await s.api('PATCH', `/api/v1/users/${id}`, { token: admin, body: { password: 'Other-Pass-456!' } })).status, 200);
    assert.equal((await login('mem-pw', 'User-Pass-123!')).status, 401);
    assert.equal((await login('mem-pw', 'Other-Pass-456!')).status, 201);
  });

  test('a username tried before the user existed logs in once the user is created', async () => {
    assert.equal((await login('mem-late', 'User-Pass-123!')).status, 401);
    await createUser(s, admin, { username: 'mem-late', modules: ['VM'] });
    assert.equal((await login('mem-late', 'User-Pass-123!')).status, 201);
  });

  test('a new subscription\'s manager logs in at once, even under a name tried before (in process and from the CLI)', async () => {
    assert.equal((await login('late-boss', 'Late-Pass-123!')).status, 401);
    await s.gh.services.users.createSubscription('Late', { username: 'late-boss', password: 'Late-Pass-123!' });
    assert.equal((await login('late-boss', 'Late-Pass-123!')).status, 201);

    // Another process (the operator CLI) writing the same SQLite file: the change feed tells this one.
    assert.equal((await login('cli-boss', 'Cli-Pass-123!')).status, 401);
    const root = path.resolve(import.meta.dirname, '..');
    execFileSync(process.execPath, ['bin/gatehouse.mjs', 'subscription', 'create', '--name', 'ViaCli', '--manager', 'cli-boss', '--password', 'Cli-Pass-123!', '--json'], {
      cwd: root, env: { ...process.env, GATEHOUSE_DATA_DIR: s.dataDir, GATEHOUSE_ADMIN_PASSWORD: ADMIN_PASSWORD }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let status = 0;
    for (const deadline = Date.now() + 5000; Date.now() < deadline && status !== 201; ) {
      status = (await login('cli-boss', 'Cli-Pass-123!')).status;
      if (status !== 201) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(status, 201, 'the CLI-created manager logs in once the change feed has it');
  });

  test('deactivation refuses the next login, activation allows it; the username is case-insensitive', async () => {
    const id = await createUser(s, admin, { username: 'mem-Case', modules: ['VM'] });
    assert.equal((await login('MEM-case', 'User-Pass-123!')).status, 201);
    assert.equal((await s.api('POST', `/api/v1/users/${id}/deactivate`, { token: admin })).status, 200);
    const refused = await login('mem-case', 'User-Pass-123!');
    assert.equal(refused.status, 401);
    assert.match(refused.text, /deactivated/);
    assert.equal((await s.api('POST', `/api/v1/users/${id}/activate`, { token: admin })).status, 200);
    assert.equal(claims((await login('mem-case', 'User-Pass-123!')).text).username, 'mem-Case');
  });
});

describe('a hostile audit row does not fail another request\'s login (PostgreSQL)', () => {
  let s: TestServer;
  before(async () => {
    s = await startGatehouse({ store: 'postgres' });
  });
  after(async () => s?.close());

  test('a NUL in a username is stored as U+FFFD; logins in the same turn succeed', async () => {
    const login = (username: string, password: string) => postForm(s.url + '/auth', { username, password, token: 'true' });
    const results = await Promise.all([
      login('admin', ADMIN_PASSWORD),
      login('nul\u0000name', 'Whatever-123!'),
      login('admin', ADMIN_PASSWORD),
    ]);
    assert.deepEqual(results.map((r) => r.status), [201, 401, 201], results.map((r) => r.text.slice(0, 80)).join(' | '));
    // An unknown user's failure belongs to no subscription (no tenant's audit view shows it): read the table.
    const rows = await s.gh.services.store.db.selectFrom('audit_events').select(['actor_name']).where('action', '=', 'auth.password').where('outcome', '=', 'failure').execute();
    assert.ok(rows.some((r) => r.actor_name === 'nul\uFFFDname'), `the failure is on record, NUL replaced: ${JSON.stringify(rows)}`);
  });

  test('a NUL anywhere a client can put one is never a 500 (PostgreSQL refuses NUL in text)', async () => {
    const admin = await s.adminToken();
    const nul = 'a\u0000b';
    const basic = 'Basic ' + Buffer.from(`${nul}:Secret-123!`).toString('base64');
    const answers = [
      await postForm(s.url + '/oauth2/token', { grant_type: 'client_credentials', client_id: nul, client_secret: nul }),
      await postForm(s.url + '/auth/oidc', { clientId: nul, clientSecret: nul }),
      await s.api('POST', '/api/v1/session', { body: { username: nul, password: 'Secret-123!' } }),
      await s.api('GET', '/api/v1/me', { headers: { authorization: basic } }),
      await s.api('GET', `/api/v1/users/${encodeURIComponent(nul)}`, { token: admin }),
      await s.api('GET', `/api/v1/audit?actor=${encodeURIComponent(nul)}&action=${encodeURIComponent(nul)}`, { token: admin }),
      await s.api('POST', '/api/v1/users', { token: admin, body: { username: nul, password: 'User-Pass-123!', role: 'user', apiAccess: true, uiAccess: false, modules: [] } }),
    ];
    // Credentials and ids with a NUL match nothing (4xx); a search for one finds nothing (200, empty).
    const audit = answers.splice(5, 1)[0]!;
    assert.equal(audit.status, 200, audit.text);
    assert.deepEqual(JSON.parse(audit.text).events, []);
    for (const [i, r] of answers.entries()) assert.ok(r.status >= 400 && r.status < 500, `#${i}: ${r.status} ${r.text.slice(0, 120)}`);
  });
});
