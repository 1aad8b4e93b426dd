import type { AuditEvent, AuditEventInput } from '../domain/types.ts';
import type SQLite from 'better-sqlite3';
import type { Executor, Store } from './db.ts';
import { newTimeOrderedId } from './ids.ts';
import { withoutNul } from './no-nul.ts';

export async function insertAuditEvent(db: Executor, e: AuditEventInput): Promise<void> {
  await db.insertInto('audit_events').values(auditRow(e)).execute();
}

type AuditRow = ReturnType<typeof auditRow>;

/** The row of an event; its id and time are taken now (when the event happened), not at commit. */
// A name or reason can carry whatever a client sent (`username=x%00`): NUL becomes U+FFFD, in every store.
const text = withoutNul;

function auditRow(e: AuditEventInput) {
  const now = Date.now();
  return {
    id: newTimeOrderedId(now),
    at: new Date(now).toISOString(),
    subscription_id: text(e.subscriptionId),
    actor_type: e.actorType,
    actor_id: text(e.actorId),
    actor_name: text(e.actorName),
    action: e.action,
    target_type: e.targetType ?? null,
    target_id: text(e.targetId ?? null),
    outcome: e.outcome,
    reason: text(e.reason ?? null),
    source_ip: text(e.sourceIp ?? null),
    // JSON text escapes U+0000 as \u0000 (six ASCII characters).
    details: e.details ? JSON.stringify(e.details) : null,
  };
}

const AUDIT_COLUMNS = [
  'id', 'at', 'subscription_id', 'actor_type', 'actor_id', 'actor_name', 'action', 'target_type', 'target_id', 'outcome', 'reason', 'source_ip', 'details',
] as const satisfies ReadonlyArray<keyof AuditRow>;
/** Rows per multi-row INSERT (13 parameters each; far below SQLite's and PostgreSQL's limits). */
const MAX_ROWS_PER_INSERT = 500;

interface Pending {
  row: AuditRow;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * perf (issue 9): group commit for audit events written outside a caller's transaction.
 * Every event queued during one event-loop turn is written by ONE transaction (SQLite: a
 * prepared INSERT per row inside one BEGIN/COMMIT on the raw better-sqlite3 handle;
 * PostgreSQL: one multi-row INSERT). Each caller's promise resolves only after that commit, so
 * whatever the caller does after awaiting it (returning a token) still happens after its audit
 * row is durable. When a batch's commit fails (none of it was written), its rows are written again one
 * by one, so only an event whose own row cannot be written is rejected.
 * Per token this replaced a Kysely INSERT with its own implicit transaction (query building,
 * promise and mutex hops, one WAL commit) by a share of one commit.
 */
export class AuditBatchWriter {
  private queue: Pending[] = [];
  private scheduled = false;
  private inFlight: Promise<void> | undefined;
  private insertMany: ((rows: AuditRow[]) => void) | undefined;

  constructor(private readonly store: Store) {}

  /** Queue an event; resolves once its row is committed, rejects when the commit failed. */
  write(e: AuditEventInput): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ row: auditRow(e), resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // The check phase: after the poll phase has read every socket that was ready, so the
        // batch holds every request of this turn (a microtask would commit them one by one).
        setImmediate(this.flush);
      }
    });
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const raw = this.store.sqlite;
    // SQLite, no transaction of Kysely's open on the connection: write now, synchronously (no
    // other code runs in between). Inside an open Kysely transaction the rows would join it (and
    // its rollback), so then go through Kysely, which waits for that transaction to finish.
    if (raw && !raw.inTransaction) {
      try {
        this.writeSqlite(raw, batch);
      } catch (err) {
        // One bad row must not fail the others (issuance waits for its row): write them one by one.
        if (batch.length === 1) batch[0]!.reject(err);
        else for (const p of batch) this.writeOneSqlite(raw, p);
        return;
      }
      for (const p of batch) p.resolve();
      return;
    }
    const done = this.writeKysely(batch).then(
      () => {
        for (const p of batch) p.resolve();
      },
      async (err: unknown) => {
        if (batch.length === 1) return batch[0]!.reject(err);
        // As above: each row on its own, so only the row that cannot be written fails.
        for (const p of batch) await this.writeKysely([p]).then(p.resolve, p.reject);
      },
    );
    const all: Promise<void> = (this.inFlight ? Promise.all([this.inFlight, done]).then(() => undefined) : done).finally(() => {
      if (this.inFlight === all) this.inFlight = undefined;
    });
    this.inFlight = all;
  };

  private writeOneSqlite(raw: SQLite.Database, p: Pending): void {
    try {
      this.writeSqlite(raw, [p]);
    } catch (err) {
      p.reject(err);
      return;
    }
    p.resolve();
  }

  private writeSqlite(raw: SQLite.Database, batch: Pending[]): void {
    if (!this.insertMany) {
      const stmt = raw.prepare(`insert into audit_events (${AUDIT_COLUMNS.join(', ')}) values (${AUDIT_COLUMNS.map(() => '?').join(', ')})`);
      const insert = (r: AuditRow) =>
        stmt.run(r.id, r.at, r.subscription_id, r.actor_type, r.actor_id, r.actor_name, r.action, r.target_type, r.target_id, r.outcome, r.reason, r.source_ip, r.details);
      const many = raw.transaction((rows: AuditRow[]) => {
        for (const r of rows) insert(r);
      });
      // One row: the statement is its own (autocommit) transaction; more: BEGIN, the rows, COMMIT.
      this.insertMany = (rows) => (rows.length === 1 ? void insert(rows[0]!) : many(rows));
    }
    this.insertMany(batch.map((p) => p.row));
  }

  /** One multi-row INSERT per 500 rows; several run in one transaction, so the batch is all or nothing. */
  private async writeKysely(batch: Pending[]): Promise<void> {
    const rows = batch.map((p) => p.row);
    if (rows.length <= MAX_ROWS_PER_INSERT) {
      await this.store.db.insertInto('audit_events').values(rows).execute();
      return;
    }
    await this.store.transaction(async (tx) => {
      for (let i = 0; i < rows.length; i += MAX_ROWS_PER_INSERT) {
        await tx.insertInto('audit_events').values(rows.slice(i, i + MAX_ROWS_PER_INSERT)).execute();
      }
    });
  }

  /** Write what is queued and wait for writes in flight (before the store closes). */
  async drain(): Promise<void> {
    if (this.scheduled) this.flush();
    while (this.inFlight) await this.inFlight.catch(() => undefined);
  }
}

export interface AuditQuery {
  subscriptionId: string;
  action?: string | undefined;
  outcome?: string | undefined;
  actorId?: string | undefined;
  since?: string | undefined;
  limit?: number | undefined;
}

export async function listAuditEvents(db: Executor, q: AuditQuery): Promise<AuditEvent[]> {
  let query = db.selectFrom('audit_events').selectAll().where('subscription_id', '=', q.subscriptionId);
  if (q.action) query = query.where('action', '=', q.action);
  if (q.outcome) query = query.where('outcome', '=', q.outcome);
  if (q.actorId) query = query.where('actor_id', '=', q.actorId);
  if (q.since) query = query.where('at', '>=', q.since);
  const rows = await query.orderBy('at', 'desc').orderBy('id').limit(Math.min(q.limit ?? 100, 1000)).execute();
  return rows.map((r) => ({
    id: r.id,
    at: r.at,
    subscriptionId: r.subscription_id,
    actorType: r.actor_type as AuditEvent['actorType'],
    actorId: r.actor_id,
    actorName: r.actor_name,
    action: r.action,
    targetType: r.target_type,
    targetId: r.target_id,
    outcome: r.outcome as AuditEvent['outcome'],
    reason: r.reason,
    sourceIp: r.source_ip,
    details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null,
  }));
}
