import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { SMTPServer } from 'smtp-server';
import pg from 'pg';
import { decodeJwt } from 'jose';
import { startGatehouse, createUser, PG_ADMIN_URL, type TestServer } from './helpers.ts';

const DAY = 24 * 3600 * 1000;
const MINUTE = 60_000;

interface Mail {
  from: string;
  to: string[];
  raw: string;
}

/** A real SMTP server on a free port, speaking the protocol to nodemailer over a socket. */
async function smtpSink(opts: { rejectFirst?: number } = {}) {
  const mails: Mail[] = [];
  let toReject = opts.rejectFirst ?? 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onRcptTo(_addr, _session, cb) {
      if (toReject > 0) {
        toReject--;
        const err = new Error('mailbox busy, try again later') as Error & { responseCode: number };
        err.responseCode = 451;
        return cb(err);
      }
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return { url: `smtp://127.0.0.1:${port}`, mails, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A webhook receiver: records every POST (headers + exact body bytes). */
async function webhookReceiver() {
  const calls: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      calls.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/hooks/gatehouse`, calls, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** Time as the servers see it: real time plus an offset the test moves forward. */
function testClock() {
  let offset = 0;
  return { clock: () => new Date(Date.now() + offset), advanceTo: (ms: number) => (offset = ms) };
}

// The scheduler would fire on its own once a minute; tests trigger scans themselves.
const QUIET = { schedule: '0 0 1 1 *' };

async function setEmail(s: TestServer, token: string, email: string) {
  const me = await s.api('GET', '/api/v1/me', { token });
  const r = await s.api('PATCH', `/api/v1/users/${me.body.user.id}`, { token, body: { email } });
  assert.equal(r.status, 200);
}

async function createToken(s: TestServer, token: string, expiry: number): Promise<string> {
  const r = await s.api('POST', '/qas/subscription-token', { token, body: { expiry } });
  assert.equal(r.status, 201, r.text);
  return decodeJwt(r.text).jti!;
}

function decodeMailText(raw: string): string {
  // nodemailer may use quoted-printable for long lines; undo soft breaks and =XX escapes.
  return raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

describe('expiry alerts by SMTP (SQLite)', () => {
  test('15 days before expiry every active manager gets one mail with the secret ID and expiry (UTC ISO 8601); once, across restarts; never for a deleted token', async () => {
    const sink = await smtpSink();
    const t = testClock();
    const env = { SMTP_URL: sink.url };
    const s = await startGatehouse({ env, clock: t.clock, keepData: true, config: { alerts: QUIET } as never });
    let s2: TestServer | undefined;
    try {
      const admin = await s.adminToken();
      await setEmail(s, admin, 'admin@example.test');
      await createUser(s, admin, { username: 'mgr2', role: 'manager', email: 'mgr2@example.test' });
      const goneId = await createUser(s, admin, { username: 'mgr-gone', role: 'manager', email: 'gone@example.test' });
      await s.api('POST', `/api/v1/users/${goneId}/deactivate`, { token: admin });
      await createUser(s, admin, { username: 'plain-user', role: 'user', email: 'user@example.test' });

      const kept = await createToken(s, admin, 30 * 24 * 60);
      const deleted = await createToken(s, admin, 30 * 24 * 60);
      await createToken(s, admin, 60); // a one-hour token: its whole life is inside the window
      const expiresAt = (await s.api('GET', `/qas/subscription-token/${kept}`, { token: admin })).body.expiresAt as string;

      await s.gh.services.alerts.runOnce();
      t.advanceTo(14 * DAY); // 16 days left: not yet
      await s.gh.services.alerts.runOnce();
      assert.equal(sink.mails.length, 0);

      assert.equal((await s.api('DELETE', `/qas/subscription-token/token/${deleted}`, { token: admin })).status, 200);
      t.advanceTo(15 * DAY + MINUTE); // 15 days minus a minute left
      await s.gh.services.alerts.runOnce();
      await s.gh.services.alerts.runOnce();

      assert.equal(sink.mails.length, 2, JSON.stringify(sink.mails.map((m) => m.to)));
      assert.deepEqual(sink.mails.flatMap((m) => m.to).sort(), ['admin@example.test', 'mgr2@example.test']);
      for (const m of sink.mails) {
        const text = decodeMailText(m.raw);
        assert.ok(text.includes(kept), 'the mail names the secret ID');
        assert.ok(text.includes(expiresAt), 'the mail gives the expiry in UTC ISO 8601');
        assert.match(expiresAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.ok(!text.includes(deleted), 'nothing about the deleted token');
      }
      const item = (await s.api('GET', `/qas/subscription-token/${kept}`, { token: admin })).body;
      assert.equal(item.alertSent, true);

      const outbox = await s.api('GET', '/api/v1/outbox', { token: admin });
      assert.equal(outbox.status, 200);
      assert.equal(outbox.body.messages.length, 2);
      for (const m of outbox.body.messages) {
        assert.equal(m.status, 'sent');
        assert.equal(m.attempts, 1);
        assert.equal(m.secretId, kept);
      }
      const audit = await s.api('GET', '/api/v1/audit?action=subscription_token.alert', { token: admin });
      assert.deepEqual(audit.body.events.map((e: { targetId: string }) => e.targetId), [kept]);

      // restart on the same data: no second alert
      await s.stop();
      s2 = await startGatehouse({ env, clock: t.clock, dataDir: s.dataDir, config: { alerts: QUIET } as never });
      await s2.gh.services.alerts.runOnce();
      t.advanceTo(20 * DAY);
      await s2.gh.services.alerts.runOnce();
      assert.equal(sink.mails.length, 2);
    } finally {
      await s2?.close();
      await s.close();
      rmSync(s.dataDir, { recursive: true, force: true });
      await sink.close();
    }
  });

  test('a failed delivery is visible in the outbox and retried with back-off', async () => {
    const sink = await smtpSink({ rejectFirst: 1 });
    const t = testClock();
    const s = await startGatehouse({ env: { SMTP_URL: sink.url }, clock: t.clock, config: { alerts: { ...QUIET, retry: { initialDelaySeconds: 60 } } } as never });
    try {
      const admin = await s.adminToken();
      await setEmail(s, admin, 'admin@example.test');
      const id = await createToken(s, admin, 20 * 24 * 60);
      t.advanceTo(5 * DAY + MINUTE);
      const first = await s.gh.services.alerts.runOnce();
      assert.equal(first.failed, 1);
      let [m] = (await s.api('GET', '/api/v1/outbox', { token: admin })).body.messages;
      assert.equal(m.status, 'pending');
      assert.equal(m.attempts, 1);
      assert.match(m.lastError, /451|try again later/);
      assert.equal(Date.parse(m.nextAttemptAt) - (Date.now() + 5 * DAY + MINUTE) > 50_000, true, 'next attempt about a minute later');
      assert.equal(sink.mails.length, 0);

      await s.gh.services.alerts.runOnce(); // not due yet
      assert.equal(sink.mails.length, 0);
      t.advanceTo(5 * DAY + 3 * MINUTE);
      await s.gh.services.alerts.runOnce();
      assert.equal(sink.mails.length, 1);
      [m] = (await s.api('GET', '/api/v1/outbox', { token: admin })).body.messages;
      assert.equal(m.status, 'sent');
      assert.equal(m.attempts, 2);
      assert.equal(m.secretId, id);
    } finally {
      await s.close();
      await sink.close();
    }
  });

  test('without SMTP_URL the alert is stored in the outbox and logged without the token', async () => {
    const t = testClock();
    const s = await startGatehouse({ clock: t.clock, config: { alerts: QUIET } as never });
    try {
      const admin = await s.adminToken();
      const tok = await s.api('POST', '/qas/subscription-token', { token: admin, body: { expiry: 20 * 24 * 60 } });
      const id = decodeJwt(tok.text).jti!;
      t.advanceTo(5 * DAY + MINUTE);
      await s.gh.services.alerts.runOnce();
      const { messages } = (await s.api('GET', '/api/v1/outbox', { token: admin })).body;
      assert.equal(messages.length, 1);
      assert.equal(messages[0].status, 'stored');
      assert.equal(messages[0].channel, 'email');
      assert.ok(messages[0].body.includes(id));
      assert.ok(s.logs.text.includes('stored in the outbox'));
      assert.ok(!s.logs.text.includes(tok.text), 'the token is never logged');
      const userId = await createUser(s, admin, { username: 'not-a-manager' });
      assert.ok(userId);
      const user = await s.login('not-a-manager', 'User-Pass-123!');
      assert.equal((await s.api('GET', '/api/v1/outbox', { token: user })).status, 403);
    } finally {
      await s.close();
    }
  });
});

describe('expiry alerts with two nodes on one PostgreSQL database', () => {
  test('each manager gets the mail once and the signed webhook arrives once, however many scans run on both nodes', async () => {
    const sink = await smtpSink();
    const hook = await webhookReceiver();
    const secret = 'webhook-secret-for-tests-0123456789';
    const t = testClock();
    const alerts = { ...QUIET, webhook: { url: hook.url, secret } };
    const a = await startGatehouse({ store: 'postgres', keepData: true, env: { SMTP_URL: sink.url }, clock: t.clock, config: { alerts } as never });
    const b = await startGatehouse({
      databaseUrl: a.databaseUrl!, dataDir: a.dataDir, env: { SMTP_URL: sink.url }, clock: t.clock,
      config: { alerts, publicUrl: a.url } as never,
    });
    try {
      const admin = await a.adminToken();
      await setEmail(a, admin, 'admin@example.test');
      await createUser(a, admin, { username: 'mgr-b', role: 'manager', email: 'mgr-b@example.test' });
      const id = await createToken(a, admin, 40 * 24 * 60);
      const deleted = await createToken(a, admin, 40 * 24 * 60);
      assert.equal((await b.api('DELETE', `/qas/subscription-token/token/${deleted}`, { token: admin })).status, 200);
      t.advanceTo(25 * DAY + MINUTE);
      for (let i = 0; i < 3; i++) {
        await Promise.all([a.gh.services.alerts.runOnce(), b.gh.services.alerts.runOnce(), a.gh.services.alerts.runOnce(), b.gh.services.alerts.runOnce()]);
      }
      assert.deepEqual(sink.mails.flatMap((m) => m.to).sort(), ['admin@example.test', 'mgr-b@example.test']);
      assert.equal(hook.calls.length, 1);
      const call = hook.calls[0]!;
      const expected = 'sha256=' + createHmac('sha256', secret).update(call.body).digest('hex');
      assert.equal(call.headers['x-gatehouse-signature'], expected, 'the signature verifies with the shared secret');
      const payload = JSON.parse(call.body);
      assert.equal(payload.event, 'subscription_token.expiring');
      assert.equal(payload.secretId, id);
      assert.match(payload.expiresAt, /Z$/);
      assert.ok(!call.body.includes(deleted));
      const outbox = (await b.api('GET', '/api/v1/outbox', { token: admin })).body.messages;
      assert.deepEqual(outbox.map((m: { channel: string; status: string }) => `${m.channel}:${m.status}`).sort(), ['email:sent', 'email:sent', 'webhook:sent']);
    } finally {
      await b.close();
      await a.stop();
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${new URL(a.databaseUrl!).pathname.slice(1)} WITH (FORCE)`);
      await c.end();
      rmSync(a.dataDir, { recursive: true, force: true });
      await sink.close();
      await hook.close();
    }
  });
});
