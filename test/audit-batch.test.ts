/**
 * perf (issue 9): the audit group commit. Events recorded without a transaction during one
 * event-loop turn are written together; each record() settles after its row is committed; an
 * event recorded while a Kysely transaction is open never joins (and never rolls back with) it;
 * closing the store writes what is still queued. On SQLite and PostgreSQL.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Store } from '../src/store/db.ts';
import { AuditLog } from '../src/audit/audit.ts';
import { listAuditEvents } from '../src/store/audit.ts';
import { STORES, freshPgDatabase } from './helpers.ts';

const SUB = 'sub-audit-batch';
const event = (action: string, i = 0) => ({
  subscriptionId: SUB, actorType: 'system' as const, actorId: null, actorName: null, action, outcome: 'success' as const,
  details: { i, clientSecret: 'must-be-dropped' },
});

for (const kind of STORES) {
  describe(`audit group commit (${kind})`, () => {
    let store: Store;
    let audit: AuditLog;
    let dir: string;
    let drop: (() => Promise<void>) | undefined;
    let databaseUrl: string | undefined;

    before(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'gh-audit-'));
      if (kind === 'postgres') {
        const db = await freshPgDatabase();
        databaseUrl = db.url;
        drop = db.drop;
      }
      store = new Store({ dataDir: dir, databaseUrl });
      await store.migrate();
      audit = new AuditLog(store, pino({ level: 'silent' }));
    });
    after(async () => {
      await store.close().catch(() => {});
      await drop?.();
      rmSync(dir, { recursive: true, force: true });
    });

    test('events of one turn are all committed when their promises settle; ids time-ordered, secrets scrubbed', async () => {
      const n = 1200; // more than one multi-row INSERT on PostgreSQL
      await Promise.all(Array.from({ length: n }, (_, i) => audit.record(event('batch.test', i))));
      const rows = await listAuditEvents(store.db, { subscriptionId: SUB, action: 'batch.test', limit: 1000 });
      assert.equal(rows.length, 1000);
      const count = await store.db.selectFrom('audit_events').select((eb) => eb.fn.countAll().as('n')).where('action', '=', 'batch.test').executeTakeFirst();
      assert.equal(Number(count?.n), n);
      for (const r of rows) {
        assert.match(r.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        assert.deepEqual(Object.keys(r.details ?? {}), ['i']);
      }
    });

    test("an event recorded while a transaction is open does not join it or its rollback", async () => {
      let outside: Promise<void> | undefined;
      await assert.rejects(
        store.transaction(async (tx) => {
          await audit.record(event('batch.inside'), tx);
          outside = audit.record(event('batch.outside'));
          // let the batch's turn pass while the transaction is still open
          await new Promise((r) => setTimeout(r, 20));
          throw new Error('roll back');
        }),
        /roll back/,
      );
      await outside;
      const inside = await listAuditEvents(store.db, { subscriptionId: SUB, action: 'batch.inside' });
      const kept = await listAuditEvents(store.db, { subscriptionId: SUB, action: 'batch.outside' });
      assert.equal(inside.length, 0, 'the transaction rolled back with its own event');
      assert.equal(kept.length, 1, 'the event recorded outside the transaction is committed');
    });

    test('closing the store writes what is still queued', async () => {
      const pending = audit.record(event('batch.close'));
      await store.close();
      await pending;
      store = new Store({ dataDir: dir, databaseUrl });
      const rows = await listAuditEvents(store.db, { subscriptionId: SUB, action: 'batch.close' });
      assert.equal(rows.length, 1);
    });
  });
}
