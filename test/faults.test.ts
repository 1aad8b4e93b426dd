/**
 * Hardening (issue 10): faults. kill -9 in the middle of writes (nothing half-written, every
 * rule still holds after a restart); PostgreSQL unreachable under load (issuance 503, cached
 * verification for a bounded window, then fail closed, then recovery by itself); a hanging or
 * dead upstream never exhausts the gateway.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startGatehouse, freshPgDatabase, freePort, createUser, postForm, ADMIN_PASSWORD, type TestServer } from './helpers.ts';
import { startEchoUpstream, writeConfig, type EchoUpstream } from './gateway-upstream.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.min(ms, 2000)));

/** `node bin/gatehouse.mjs serve` as a child process on a data dir; resolves once it answers. */
async function spawnServer(dataDir: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/gatehouse.mjs'), 'serve'], {
    env: { ...process.env, GATEHOUSE_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', GATEHOUSE_ADMIN_PASSWORD: ADMIN_PASSWORD, NODE_ENV: 'test' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited: ${err}`);
    const ok = await fetch(`http://127.0.0.1:${port}/health/ready`).then((r) => r.ok, () => false);
    if (ok) return child;
    if (Date.now() > deadline) throw new Error(`server did not start: ${err}`);
    await sleep(100);
  }
}

function kill9(child: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) return r();
    child.once('exit', () => r());
    child.kill('SIGKILL');
  });
}

describe('kill -9 during writes, then restart: nothing half-written, every rule holds', () => {
  let dataDir: string;
  let port: number;
  let child: ChildProcess | undefined;
  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-kill-'));
    port = await freePort();
  });
  after(async () => {
    if (child) await kill9(child);
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('subscription tokens, clients and user updates under a SIGKILL, three rounds', async () => {
    const base = `http://127.0.0.1:${port}`;
    const issued: string[] = [];
    for (let round = 0; round < 3; round++) {
      child = await spawnServer(dataDir, port);
      const admin = await postForm(`${base}/auth`, { username: 'admin', password: ADMIN_PASSWORD, token: 'true' });
      assert.equal(admin.status, 201, admin.text);
      const auth = { authorization: `Bearer ${admin.text}`, 'content-type': 'application/json' };
      // tokens issued in earlier rounds still verify after the crash and restart
      for (const t of issued) {
        const r = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${t}` } });
        assert.ok([200, 401].includes(r.status), `earlier token: ${r.status}`);
      }
      let userId: string | undefined;
      if (round === 0) {
        const u = await fetch(`${base}/api/v1/users`, { method: 'POST', headers: auth, body: JSON.stringify({ username: 'victim', password: 'User-Pass-123!', role: 'user', apiAccess: true, uiAccess: true, modules: ['VM'] }) });
        assert.equal(u.status, 201);
        userId = ((await u.json()) as { id: string }).id;
      }
      const users = (await (await fetch(`${base}/api/v1/users`, { headers: auth })).json()) as { users: { id: string; username: string }[] };
      userId = users.users.find((u) => u.username === 'victim')!.id;
      // a burst of writes of every kind, and the process is killed in the middle of it
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 15; i++) {
        writes.push(fetch(`${base}/qas/subscription-token`, { method: 'POST', headers: auth, body: JSON.stringify({ expiry: 60 }) })
          .then(async (r) => r.status === 200 || r.status === 201 ? issued.push((await r.text()).trim()) : r.text(), () => undefined));
        writes.push(fetch(`${base}/api/v1/clients`, { method: 'POST', headers: auth, body: JSON.stringify({ name: `c-${round}-${i}`, level: 'subscription', modules: ['VM'] }) }).then((r) => r.text(), () => undefined));
        writes.push(fetch(`${base}/api/v1/users/${userId}`, { method: 'PATCH', headers: auth, body: JSON.stringify({ modules: i % 2 ? ['VM', 'PC'] : ['WAS'], email: `v${i}@example.com` }) }).then((r) => r.text(), () => undefined));
      }
      await sleep(30 + round * 40);
      await kill9(child);
      child = undefined;
      await Promise.all(writes);
    }

    // Inspect the database file directly: every row whole and accounted for.
    const db = new Database(path.join(dataDir, 'gatehouse.db'), { readonly: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      const tokens = db.prepare('select id, modules, expires_at from subscription_tokens where deleted_at is null').all() as { id: string; modules: string }[];
      assert.ok(tokens.length <= 10, `the 10-token limit holds: ${tokens.length}`);
      for (const t of tokens) {
        assert.ok(Array.isArray(JSON.parse(t.modules)));
        assert.ok(db.prepare("select 1 from audit_events where action = 'subscription_token.create' and target_id = ?").get(t.id), `audit for token ${t.id}`);
        assert.ok(db.prepare("select 1 from changes where entity = 'subscription_token' and entity_id = ?").get(t.id), `change for token ${t.id}`);
      }
      const clients = db.prepare('select id, secret_hash, modules from clients').all() as { id: string; secret_hash: string; modules: string }[];
      for (const c of clients) {
        assert.match(c.secret_hash, /^[0-9a-f]{64}$/);
        assert.ok(Array.isArray(JSON.parse(c.modules)));
        assert.ok(db.prepare("select 1 from audit_events where action = 'client.create' and target_id = ?").get(c.id), `audit for client ${c.id}`);
      }
      const created = db.prepare("select count(*) n from audit_events where action = 'client.create'").get() as { n: number };
      assert.equal(created.n, clients.length, 'no audit event without its client, no client without its event');
      const victim = db.prepare("select modules, email from users where username = 'victim'").get() as { modules: string; email: string };
      assert.ok(Array.isArray(JSON.parse(victim.modules)));
      assert.match(victim.email ?? 'v@example.com', /^v\d*@example\.com$/);
    } finally {
      db.close();
    }

    // After a last restart: the limit is enforced from what was stored.
    child = await spawnServer(dataDir, port);
    const admin = await postForm(`${base}/auth`, { username: 'admin', password: ADMIN_PASSWORD, token: 'true' });
    const auth = { authorization: `Bearer ${admin.text}`, 'content-type': 'application/json' };
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      statuses.push((await fetch(`${base}/qas/subscription-token`, { method: 'POST', headers: auth, body: JSON.stringify({ expiry: 60 }) })).status);
    }
    const list = (await (await fetch(`${base}/qas/subscription-token/list`, { headers: auth })).json()) as { count: number; tokens: unknown[] };
    const live = list.tokens.length;
    assert.equal(list.count, live);
    assert.ok(statuses.some((x) => x >= 400), `the 11th creation is refused: ${statuses.join(',')}`);
    assert.ok(live <= 10, `at most 10 live tokens listed (${live})`);
    const me = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${admin.text}` } });
    assert.equal(me.status, 200);
    await kill9(child);
    child = undefined;
  });
});

/** A TCP proxy in front of PostgreSQL that the test can cut and restore. */
async function pgProxy(target: { host: string; port: number }) {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  const port = await freePort();
  const open = () =>
    new Promise<void>((resolve) => {
      server = net.createServer((c) => {
        const up = net.connect(target.port, target.host);
        sockets.add(c).add(up);
        const drop = () => {
          c.destroy();
          up.destroy();
          sockets.delete(c);
          sockets.delete(up);
        };
        c.on('error', drop).on('close', drop);
        up.on('error', drop).on('close', drop);
        c.pipe(up).pipe(c);
      });
      server.listen(port, '127.0.0.1', () => resolve());
    });
  await open();
  return {
    port,
    /** Refuse new connections and break every open one: the database is gone. */
    async cut() {
      const closed = new Promise<void>((r) => server!.close(() => r()));
      for (const s of sockets) s.destroy();
      sockets.clear();
      await closed;
    },
    restore: open,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => (server?.listening ? server.close(() => r()) : r()));
    },
  };
}

describe('PostgreSQL unreachable under load', () => {
  let s: TestServer;
  let proxy: Awaited<ReturnType<typeof pgProxy>>;
  let drop: () => Promise<void>;
  before(async () => {
    const db = await freshPgDatabase();
    drop = db.drop;
    const u = new URL(db.url);
    proxy = await pgProxy({ host: u.hostname, port: Number(u.port || 5432) });
    u.host = `127.0.0.1:${proxy.port}`;
    s = await startGatehouse({ databaseUrl: u.toString(), env: { GATEHOUSE_CONFIG: writeConfig({ limits: { default: { rate: 0, concurrency: 0 } } }) }, config: { tokens: { ttlSeconds: 4 * 3600, audience: 'gatehouse', clockSkewSeconds: 30, keyOverlapSeconds: 366 * 86400, rotateEveryDays: 90, stateStalenessSeconds: 3 }, sampleModules: true } as never });
  });
  after(async () => {
    await s?.close();
    await proxy?.close();
    await drop?.();
  });

  test('issuance 503 with a clear message; known tokens verify from cache for the window, then fail closed; recovery by itself', async () => {
    const admin = await s.adminToken();
    await createUser(s, admin, { username: 'outage-user', modules: ['VM'] });
    const user = await s.login('outage-user', 'User-Pass-123!');
    const c = await s.api('POST', '/api/v1/clients', { token: admin, body: { name: 'outage-client', level: 'subscription', modules: ['VM'] } });
    const clientTok = await fetch(s.url + '/auth/oauth', { method: 'POST', headers: { clientId: c.body.clientId, clientSecret: c.body.clientSecret } }).then((r) => r.text());
    const known = [admin, user, clientTok];
    const gw = (t: string) => fetch(s.url + '/api/2.0/fo/asset/ip/?action=list', { headers: { authorization: `Bearer ${t}` } }).then(async (r) => (await r.arrayBuffer(), r.status));
    for (const t of known) assert.equal(await gw(t), 200, 'warm');

    // background load during the whole outage: verification at the gateway; never a 500
    const seen: number[] = [];
    let loading = true;
    const load = (async () => {
      while (loading) {
        seen.push(...(await Promise.all(known.map((t) => gw(t).catch(() => 0)))));
        await sleep(20);
      }
    })();
    // A failed assertion must stop the load too, or the test process never ends.
    try {
      await proxy.cut();
      const cutAt = Date.now();
      // issuance: 503 with a message that says what is wrong
      const login = await postForm(s.url + '/auth', { username: 'outage-user', password: 'User-Pass-123!', token: 'true' });
      assert.equal(login.status, 503, login.text);
      assert.match(login.text, /database is unreachable/);
      const clientCreate = await s.api('POST', '/api/v1/clients', { token: admin, body: { name: 'during-outage', level: 'subscription', modules: ['VM'] } });
      assert.equal(clientCreate.status, 503, clientCreate.text);
      const sub = await s.api('POST', '/qas/subscription-token', { token: admin, body: { expiry: 60 } });
      assert.equal(sub.status, 503, sub.text);
      assert.equal((await fetch(s.url + '/health/ready')).status, 503);
      // within the window, known tokens still work from cached state
      if (Date.now() - cutAt < 2500) for (const t of known) assert.equal(await gw(t), 200, 'cached state within the window');

      // past the window: fail closed
      let closed = false;
      for (const deadline = Date.now() + 8000; Date.now() < deadline && !closed; ) {
        await sleep(250);
        closed = (await Promise.all(known.map(gw))).every((st) => st === 503);
      }
      assert.ok(closed, 'every known token refused once the state is too old');
      assert.ok(Date.now() - cutAt >= 3000, 'not before the window');
      const me = await s.api('GET', '/api/v1/me', { token: user });
      assert.equal(me.status, 503);
      assert.match(me.body.errorMessage, /database has been unreachable/);

      await proxy.restore();
      let back = false;
      for (const deadline = Date.now() + 15_000; Date.now() < deadline && !back; ) {
        await sleep(250);
        back = (await Promise.all(known.map(gw))).every((st) => st === 200);
      }
      assert.ok(back, 'verification recovers by itself');
      assert.equal((await postForm(s.url + '/auth', { username: 'outage-user', password: 'User-Pass-123!', token: 'true' })).status, 201, 'issuance recovers');
    } finally {
      loading = false;
      await load;
    }
    assert.ok(seen.length > 0);
    assert.ok(seen.every((st) => st === 200 || st === 503), `only 200 or 503 under load: ${[...new Set(seen)].join(',')}`);
  });
});

describe('a hanging or dead upstream never exhausts the gateway', () => {
  let s: TestServer;
  let up: EchoUpstream;
  let token: string;
  before(async () => {
    up = await startEchoUpstream();
    const dead = await freePort();
    const routes = [
      { path: '/slow', module: 'VM', upstream: up.url, errorFormat: 'json', auth: 'both', timeouts: { headersMs: 800 } },
      { path: '/fast', module: 'PC', upstream: up.url, errorFormat: 'json', auth: 'both' },
      { path: '/dead', module: 'WAS', upstream: `http://127.0.0.1:${dead}`, errorFormat: 'json', auth: 'both', timeouts: { connectMs: 500 } },
    ];
    s = await startGatehouse({ env: { GATEHOUSE_CONFIG: writeConfig({ gateway: { routes, connectionsPerUpstream: 8 }, limits: { default: { rate: 0, concurrency: 0 } } }) } });
    token = await s.adminToken();
  });
  after(async () => {
    await s?.close();
    await up?.close();
  });

  test('120 requests hang on one module while another keeps answering fast; the hung ones end in 504, the dead one in 502', async () => {
    const h = { authorization: `Bearer ${token}` };
    const t0 = Date.now();
    const hung = Array.from({ length: 120 }, (_, i) => fetch(`${s.url}/slow/hang/${i}`, { headers: h }).then((r) => r.status, () => 0));
    await sleep(100);
    const fast: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = Date.now();
      const r = await fetch(`${s.url}/fast/ok/${i}`, { headers: h });
      await r.arrayBuffer();
      assert.equal(r.status, 200);
      fast.push(Date.now() - t);
    }
    assert.ok(Math.max(...fast) < 1000, `other modules keep flowing: max ${Math.max(...fast)} ms`);
    const dead = await fetch(`${s.url}/dead/x`, { headers: h });
    assert.equal(dead.status, 502);
    const statuses = await Promise.all(hung);
    // each ends: 504 when its turn came and the module did not answer, 503 when the bounded queue was full
    assert.ok(statuses.every((x) => x === 504 || x === 503), `hung requests end: ${[...new Set(statuses)].join(',')}`);
    assert.ok(statuses.includes(504));
    assert.ok(Date.now() - t0 < 15_000);
    // and the gateway is healthy afterwards
    assert.equal((await fetch(`${s.url}/fast/after`, { headers: h })).status, 200);
  });
});
