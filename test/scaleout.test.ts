import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import pg from 'pg';
import { startGatehouse, freshPgDatabase, freePort, createUser, ADMIN_PASSWORD, type TestServer } from './helpers.ts';
import { spawnNode, login, call, msUntilRefused, killConnections, type NodeProcess } from './cluster-helpers.ts';

const DAY = 24 * 3600 * 1000;

describe('two Gatehouse processes on one PostgreSQL database', () => {
  let db: { url: string; drop: () => Promise<void> };
  let a: NodeProcess;
  let b: NodeProcess;
  let admin: string;
  const B_APP = `gh_b_${randomBytes(4).toString('hex')}`;

  before(async () => {
    db = await freshPgDatabase();
    const cluster = { databaseUrl: db.url, publicUrl: 'https://gatehouse.example.test', masterKey: randomBytes(24).toString('base64url') };
    a = await spawnNode('a', cluster); // the first node migrates and bootstraps; the second finds both done
    b = await spawnNode('b', cluster, { applicationName: B_APP });
    admin = await login(a.url, 'admin');
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
  });

  test('a user deactivated through node A is refused by node B within one second', async () => {
    await call(a.url, 'POST', '/api/v1/users', admin, { username: 'carol', password: 'User-Pass-123!', role: 'user', apiAccess: true, uiAccess: true, modules: [] });
    const token = await login(b.url, 'carol', 'User-Pass-123!');
    assert.equal((await call(b.url, 'GET', '/api/v1/me', token)).status, 200, 'B knows the user (and caches it)');
    const me = (await call(a.url, 'GET', '/api/v1/me', token)).body;
    const t0 = Date.now();
    assert.equal((await call(a.url, 'POST', `/api/v1/users/${me.user.id}/deactivate`, admin)).status, 200);
    const lag = await msUntilRefused(b.url, token, t0);
    console.log(`# user deactivation A -> B refused after ${lag} ms`);
    assert.ok(lag < 1000, `refused after ${lag} ms`);
  });

  test('a subscription token deleted through node A is refused by node B within one second', async () => {
    const created = await call(a.url, 'POST', '/qas/subscription-token', admin, { expiry: 60 });
    assert.equal(created.status, 201, created.text);
    const secretId = decodeJwt(created.text).jti!;
    assert.equal((await call(b.url, 'GET', '/api/v1/me', created.text)).status, 200);
    const t0 = Date.now();
    assert.equal((await call(a.url, 'DELETE', `/qas/subscription-token/token/${secretId}`, admin)).status, 200);
    const lag = await msUntilRefused(b.url, created.text, t0);
    console.log(`# subscription token deletion A -> B refused after ${lag} ms`);
    assert.ok(lag < 1000, `refused after ${lag} ms`);
  });

  test("killing node B's database connections loses no revocation made while it was deaf", async () => {
    const tokens: Array<{ jwt: string; secretId: string }> = [];
    for (let i = 0; i < 3; i++) {
      const r = await call(a.url, 'POST', '/qas/subscription-token', admin, { expiry: 60 });
      assert.equal(r.status, 201, r.text);
      tokens.push({ jwt: r.text, secretId: decodeJwt(r.text).jti! });
      assert.equal((await call(b.url, 'GET', '/api/v1/me', r.text)).status, 200);
    }
    const before = (await call(b.url, 'GET', '/health/ready')).body.changeFeed;
    assert.equal(before.state, 'listening');

    // Kill B's connections (LISTEN and pool) and revoke through A at once, then keep killing
    // for a while, so revocations land while B's listener is down or reconnecting.
    const t0 = Date.now();
    let killed = await killConnections(db.url, B_APP);
    assert.ok(killed >= 1, 'B had connections to kill');
    assert.equal((await call(a.url, 'DELETE', `/qas/subscription-token/token/${tokens[0]!.secretId}`, admin)).status, 200);
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 100));
      killed += await killConnections(db.url, B_APP);
      if (i === 2) assert.equal((await call(a.url, 'DELETE', `/qas/subscription-token/token/${tokens[1]!.secretId}`, admin)).status, 200);
    }
    const lags = [];
    for (const t of tokens.slice(0, 2)) lags.push(await msUntilRefused(b.url, t.jwt, t0, 10_000));
    console.log(`# after killing B's connections (${killed} backends): revocations applied by B after ${lags.join(' ms, ')} ms`);
    for (const lag of lags) assert.ok(lag < 10_000, `revocation applied after ${lag} ms`);
    assert.equal((await call(b.url, 'GET', '/api/v1/me', tokens[2]!.jwt)).status, 200, 'the untouched token still works');

    // B listens again, and its LISTEN path (not only the poll) delivers the next revocation.
    let ready;
    for (let i = 0; i < 100; i++) {
      ready = (await call(b.url, 'GET', '/health/ready')).body;
      if (ready.changeFeed.state === 'listening' && !ready.degraded) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(ready.status, 'ready', JSON.stringify(ready));
    assert.ok(ready.changeFeed.reconnects > before.reconnects, 'B reconnected');
    const t1 = Date.now();
    assert.equal((await call(a.url, 'DELETE', `/qas/subscription-token/token/${tokens[2]!.secretId}`, admin)).status, 200);
    const lag = await msUntilRefused(b.url, tokens[2]!.jwt, t1);
    console.log(`# after reconnecting: revocation applied by B after ${lag} ms`);
    assert.ok(lag < 1000);
    assert.match(b.output(), /LISTEN connection lost/);
  });

  test('the 10-token limit holds when 30 creates are spread over both nodes', async () => {
    const live = (await call(a.url, 'GET', '/qas/subscription-token/list', admin)).body;
    const liveCount = (Array.isArray(live) ? live : live.tokens ?? live.items ?? []).filter((t: { status?: string }) => !t.status || t.status === 'active').length;
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => call(i % 2 ? b.url : a.url, 'POST', '/qas/subscription-token', admin, { expiry: 60 })),
    );
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 201).length, 10 - liveCount, statuses.join(','));
    assert.ok(statuses.every((s) => s === 201 || (s >= 400 && s < 500)), statuses.join(','));
  });

  test('GET /metrics on a node shows requests, issuance, refusals, caches and change-feed lag', async () => {
    const res = await fetch(b.url + '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    assert.match(text, /gatehouse_http_requests_total\{method="POST",route="\/auth",status="201"\} \d+/);
    assert.match(text, /gatehouse_tokens_issued_total\{method="[a-z_]+"\} \d+/);
    assert.match(text, /gatehouse_token_verification_failures_total\{reason="revoked"\} \d+/);
    assert.match(text, /# TYPE gatehouse_upstream_duration_seconds histogram/);
    assert.match(text, /gatehouse_cache_entries\{cache="user"\} \d+/);
    assert.match(text, /gatehouse_cache_entries\{cache="subscription_token"\} \d+/);
    assert.match(text, /gatehouse_change_feed_lag_seconds_bucket\{le="[0-9.]+",source="listen"\} \d+/);
    assert.match(text, /gatehouse_change_feed_listening 1/);
    assert.ok(!text.includes(admin), 'no token in metrics');
    assert.ok(!/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}/.test(text.replace(/^#.*$/gm, '')), 'no ids in labels');
  });

  test('SIGTERM: in-flight requests finish, then the node exits cleanly', async () => {
    const inflight = Array.from({ length: 6 }, () => login(b.url, 'admin').then(() => 'ok', (e: Error) => e.message));
    await new Promise((r) => setTimeout(r, 5));
    const code = await b.stop('SIGTERM');
    const outcomes = await Promise.all(inflight);
    assert.equal(code, 0, b.output().slice(-2000));
    assert.deepEqual(outcomes, Array(6).fill('ok'));
    assert.match(b.output(), /shut down cleanly/);
  });
});

describe('exactly-once jobs with two nodes (in-process, driven clock)', () => {
  let a: TestServer;
  let b: TestServer;
  let offset = 0;
  const clock = () => new Date(Date.now() + offset);

  before(async () => {
    const quiet = { schedule: '0 0 1 1 *' };
    a = await startGatehouse({ store: 'postgres', keepData: true, clock, config: { alerts: quiet } as never });
    b = await startGatehouse({ databaseUrl: a.databaseUrl!, dataDir: a.dataDir, clock, config: { alerts: quiet, publicUrl: a.url } as never });
  });

  after(async () => {
    await b?.close();
    await a?.stop();
    const c = new pg.Client({ connectionString: process.env.GATEHOUSE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres' });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${new URL(a.databaseUrl!).pathname.slice(1)} WITH (FORCE)`);
    await c.end();
  });

  test('an expiry alert is created once, however many scans run on both nodes', async () => {
    const admin = await a.adminToken();
    await createUser(a, admin, { username: 'mgr2', role: 'manager', email: 'mgr2@example.test' });
    const r = await a.api('POST', '/qas/subscription-token', { token: admin, body: { expiry: 40 * 24 * 60 } });
    const secretId = decodeJwt(r.text).jti!;
    offset = 26 * DAY;
    try {
      for (let i = 0; i < 3; i++) {
        await Promise.all([a.gh.services.alerts.runOnce(), b.gh.services.alerts.runOnce(), a.gh.services.alerts.runOnce(), b.gh.services.alerts.runOnce()]);
      }
    } finally {
      offset = 0;
    }
    const outbox = (await b.api('GET', '/api/v1/outbox', { token: admin })).body.messages as Array<{ secretId: string; recipient: string | null }>;
    assert.equal(outbox.filter((m) => m.secretId === secretId).length, 2, 'one message per active manager');
    const audit = (await a.api('GET', '/api/v1/audit?action=subscription_token.alert', { token: admin })).body.events as Array<{ targetId: string }>;
    assert.deepEqual(audit.map((e) => e.targetId), [secretId]);
  });

  test('scheduled key rotation: one node rotates per period, the other signs with the new key within a second', async () => {
    const admin = await a.adminToken();
    const oldKid = decodeProtectedHeader(admin).kid;
    assert.equal(await a.gh.services.cluster.keyRotation.runOnce(), null, 'a fresh key is not rotated');
    offset = 91 * DAY;
    let results: Array<string | null>;
    try {
      results = await Promise.all([a.gh.services.cluster.keyRotation.runOnce(), b.gh.services.cluster.keyRotation.runOnce()]);
      assert.equal(results.filter(Boolean).length, 1, `exactly one node rotated: ${JSON.stringify(results)}`);
      assert.deepEqual(await Promise.all([a.gh.services.cluster.keyRotation.runOnce(), b.gh.services.cluster.keyRotation.runOnce()]), [null, null]);
    } finally {
      offset = 0;
    }
    const newKid = results.find(Boolean)!;
    assert.notEqual(newKid, oldKid);
    const t0 = Date.now();
    let kidB: string | undefined;
    while (Date.now() - t0 < 1000) {
      kidB = decodeProtectedHeader(await b.adminToken()).kid;
      if (kidB === newKid) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(kidB, newKid, 'B signs with the new key');
    assert.equal((await a.api('GET', '/api/v1/me', { token: admin })).status, 200, 'tokens of the old key still verify');
    const jwks = (await b.api('GET', '/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid);
    assert.ok(jwks.includes(oldKid) && jwks.includes(newKid));
  });
});

describe('shared counters in Redis', () => {
  test('two nodes share the login lockout through Redis', async () => {
    const prefixEnv = { REDIS_URL: 'redis://127.0.0.1:6379' };
    const a = await startGatehouse({ store: 'postgres', keepData: true, env: prefixEnv, config: { auth: { maxFailuresPerUser: 3, maxFailuresPerIp: 1000, failureWindowSeconds: 60, lockoutSeconds: 30, maxLockoutSeconds: 60 } } as never });
    const b = await startGatehouse({ databaseUrl: a.databaseUrl!, dataDir: a.dataDir, env: prefixEnv, config: { auth: a.config.auth, publicUrl: a.url } as never });
    try {
      const admin = await a.adminToken();
      const username = `lock-${randomBytes(4).toString('hex')}`;
      await createUser(a, admin, { username });
      for (let i = 0; i < 3; i++) {
        const node = i % 2 ? b : a;
        await assert.rejects(node.login(username, 'wrong-password'), /401/);
      }
      await assert.rejects(b.login(username, 'User-Pass-123!'), /429/, 'the lockout made on both nodes holds on B');
      const ready = await a.api('GET', '/health/ready');
      assert.equal(ready.status, 200);
      assert.equal(ready.body.status, 'ready');
      assert.equal(ready.body.redis.status, 'ok');
      await a.api('POST', `/api/v1/users/${(await a.api('GET', '/api/v1/users', { token: admin })).body.users.find((u: { username: string }) => u.username === username).id}/unlock`, { token: admin });
    } finally {
      await b.close();
      await a.close();
    }
  });

  test('Redis unreachable: login still works, /health/ready is 200 and says degraded, the log says why', async () => {
    const port = await freePort(); // nothing listens here
    const s = await startGatehouse({ env: { REDIS_URL: `redis://127.0.0.1:${port}` } });
    try {
      const token = await s.adminToken();
      assert.ok(token.split('.').length === 3);
      await assert.rejects(s.login('admin', 'wrong'), /401/);
      const ready = await s.api('GET', '/health/ready');
      assert.equal(ready.status, 200);
      assert.equal(ready.body.status, 'degraded');
      assert.equal(ready.body.redis.status, 'degraded');
      assert.equal(ready.body.redis.limits, 'per-node (in memory)');
      assert.ok(ready.body.degraded.some((d: string) => d.includes('redis')));
      assert.match(s.logs.text, /Redis is unreachable/);
      assert.match((await s.api('GET', '/metrics')).text, /gatehouse_redis_up 0/);
    } finally {
      await s.close();
    }
  });

  test('Redis going away and coming back: degraded while gone, shared again after', async () => {
    const port = await freePort();
    const start = (): ChildProcess => spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: 'ignore' });
    let redis = start();
    const waitFor = async (s: TestServer, want: string) => {
      for (let i = 0; i < 100; i++) {
        const r = await s.api('GET', '/health/ready');
        if (r.body.redis?.status === want) return r;
        await new Promise((res) => setTimeout(res, 50));
      }
      throw new Error(`redis status never became ${want}`);
    };
    const s = await startGatehouse({ env: { REDIS_URL: `redis://127.0.0.1:${port}` } });
    try {
      await waitFor(s, 'ok');
      redis.kill('SIGKILL');
      await new Promise((r) => redis.once('exit', r));
      const down = await waitFor(s, 'degraded');
      assert.equal(down.status, 200);
      assert.equal((await fetch(s.url + '/auth', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ username: 'admin', password: ADMIN_PASSWORD, token: 'true' }) })).status, 201);
      redis = start();
      const up = await waitFor(s, 'ok');
      assert.equal(up.body.status, 'ready');
      assert.match(s.logs.text, /Redis is reachable again/);
    } finally {
      await s.close();
      redis.kill('SIGKILL');
    }
  });
});

describe('/metrics access', () => {
  test('with a metrics token, /metrics needs it; the token never appears in the output', async () => {
    const token = 'scrape-token-' + randomBytes(12).toString('hex');
    const s = await startGatehouse({ env: { GATEHOUSE_METRICS_TOKEN: token } });
    try {
      assert.equal((await s.api('GET', '/metrics')).status, 401);
      assert.equal((await s.api('GET', '/metrics', { token: 'wrong-token-000000000' })).status, 401);
      const ok = await s.api('GET', '/metrics', { token });
      assert.equal(ok.status, 200);
      assert.match(ok.text, /gatehouse_change_feed_last_seq \d+/);
      assert.ok(!ok.text.includes(token));
      assert.ok(!s.logs.text.includes(token));
    } finally {
      await s.close();
    }
  });
});

describe('master key rotation (gatehouse keys rewrap)', () => {
  test('re-seals the signing keys with the new master key; tokens keep verifying; the old key no longer opens them', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const path = await import('node:path');
    const { rmSync } = await import('node:fs');
    const run = promisify(execFile);
    const bin = path.resolve(import.meta.dirname, '../bin/gatehouse.mjs');
    const oldKey = 'old-master-' + randomBytes(16).toString('hex');
    const newKey = 'new-master-' + randomBytes(16).toString('hex');
    const s = await startGatehouse({ keepData: true, env: { GATEHOUSE_MASTER_KEY: oldKey } });
    const token = await s.adminToken();
    await s.stop();
    try {
      const env = { ...process.env, GATEHOUSE_DATA_DIR: s.dataDir, GATEHOUSE_MASTER_KEY: newKey };
      await assert.rejects(run(process.execPath, [bin, 'keys', 'rewrap'], { env }), /exactly one way/);
      const r = await run(process.execPath, [bin, 'keys', 'rewrap'], { env: { ...env, GATEHOUSE_OLD_MASTER_KEY: oldKey } });
      assert.match(r.stdout, /re-sealed 1 signing key\(s\)/);
      const again = await run(process.execPath, [bin, 'keys', 'rewrap'], { env: { ...env, GATEHOUSE_OLD_MASTER_KEY: oldKey } });
      assert.match(again.stdout, /re-sealed 0 signing key\(s\) with the new master key; 1 already were/);
      assert.ok(!r.stdout.includes(oldKey) && !r.stderr.includes(oldKey));
      const s2 = await startGatehouse({ dataDir: s.dataDir, env: { GATEHOUSE_MASTER_KEY: newKey, GATEHOUSE_PUBLIC_URL: s.config.publicUrl } });
      try {
        assert.equal((await s2.api('GET', '/api/v1/me', { token })).status, 200, 'a token signed before the rotation still verifies');
        assert.equal((await s2.adminToken()).split('.').length, 3, 'the re-sealed key signs');
      } finally {
        await s2.stop();
      }
      await assert.rejects(startGatehouse({ dataDir: s.dataDir, env: { GATEHOUSE_MASTER_KEY: oldKey } }), /master key/);
    } finally {
      rmSync(s.dataDir, { recursive: true, force: true });
    }
  });
});

describe('change feed cursor', () => {
  test('a change whose seq commits after a later one is still applied (poll only, out-of-order commit)', async () => {
    const s = await startGatehouse({ store: 'postgres', config: { cluster: { changeFeed: 'poll' } } as never });
    const applied: number[] = [];
    s.gh.services.store.onApplied((c) => { if (c.entity === 'test') applied.push(c.seq); });
    const t1 = new pg.Client({ connectionString: s.databaseUrl });
    const t2 = new pg.Client({ connectionString: s.databaseUrl });
    await Promise.all([t1.connect(), t2.connect()]);
    try {
      const at = new Date().toISOString();
      await t1.query('BEGIN');
      const first = Number((await t1.query(`INSERT INTO changes (at, entity, entity_id) VALUES ($1, 'test', 'slow') RETURNING seq`, [at])).rows[0].seq);
      const second = Number((await t2.query(`INSERT INTO changes (at, entity, entity_id) VALUES ($1, 'test', 'fast') RETURNING seq`, [at])).rows[0].seq);
      assert.ok(second > first);
      for (let i = 0; i < 40 && !applied.includes(second); i++) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(applied, [second], 'the later seq is applied first');
      await t1.query('COMMIT');
      for (let i = 0; i < 40 && !applied.includes(first); i++) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(applied, [second, first], 'the earlier seq, committed later, is not skipped; nothing twice');
    } finally {
      await Promise.all([t1.end(), t2.end()]);
      await s.close();
    }
  });
});
