import { mkdirSync } from 'node:fs';
import { makeRoom } from '../util/bounded-map.ts';
import { startCheckpointer, type Checkpointer } from './checkpointer.ts';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import SQLite from 'better-sqlite3';
import type pg from 'pg';
import { lazyRequire } from '../lazy-require.ts';

const pgModule = lazyRequire<typeof pg>('pg'); // perf (issue 9): only with DATABASE_URL
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Transaction } from 'kysely';
import { NoNulPlugin } from './no-nul.ts';
import type { Database } from './schema.ts';
import { migrationProvider, type Dialect } from './migrations.ts';
// >>> scaleout (issue 8)
import { ChangeCursor } from '../cluster/change-cursor.ts';
// <<< scaleout

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;
/** Anything queries can run on: the database or an open transaction. */
export type Executor = Db | Tx;

export interface Change {
  entity: string;
  id: string;
}

// >>> scaleout (issue 8)
/** A change read from the log (by the poll or a LISTEN notification) and delivered to listeners. */
export interface AppliedChange extends Change {
  seq: number;
  /** When the writer recorded it (ISO 8601). */
  at: string;
  source: 'poll' | 'listen';
}
// <<< scaleout

export interface StoreOptions {
  dataDir: string;
  databaseUrl?: string | undefined;
  /** How often to read the change log for changes written by other processes. */
  changePollMs?: number;
  /** harden (issue 10): how long cached verification state may be used without a successful change-feed read. */
  stateStalenessSeconds?: number;
}

/**
 * The persistence port: a Kysely instance over SQLite (default) or PostgreSQL, plus the
 * change feed that keeps every node's in-memory verification state current.
 */
export class Store {
  readonly db: Db;
  readonly dialect: Dialect;
  private readonly events = new EventEmitter();
  // >>> scaleout (issue 8): seq cursor with gap tracking; adjustable poll; cache registry
  private readonly cursor = new ChangeCursor();
  private changePollMs: number;
  /** Every StateCache of this process registers here, so /metrics can report sizes. */
  readonly stateCaches = new Set<{ readonly entity: string; readonly size: number }>();
  // <<< scaleout
  private pollTimer: NodeJS.Timeout | undefined;
  private polling: Promise<boolean> | undefined;
  private pollAgain = false;
  private closed = false;
  readonly location: string;
  /** perf (issue 9): the better-sqlite3 handle Kysely runs on (SQLite only), for the audit group commit. */
  readonly sqlite: SQLite.Database | undefined;
  private readonly closeHooks: Array<() => Promise<void>> = [];
  private readonly checkpointer: Checkpointer | undefined;
  // >>> harden (issue 10): change-feed health, for the bounded staleness of cached state
  /** When the change log was last read successfully (ms); only meaningful while following. */
  private feedOkAt = Date.now();
  /** Cached principal state may be trusted this long after the last successful feed read. */
  stateStalenessSeconds: number;
  /**
   * How long (ms) this process has gone without a successful change-log read, beyond the current
   * poll interval, while it is following the log: how stale its caches may be. 0 when not following (CLI).
   */
  feedStalenessMs(): number {
    // One poll interval is normal: with LISTEN delivering, the safety-net poll runs every 5 s.
    return this.pollTimer ? Math.max(0, Date.now() - this.feedOkAt - this.changePollMs) : 0;
  }
  // <<< harden

  constructor(opts: StoreOptions) {
    this.changePollMs = opts.changePollMs ?? 500;
    this.stateStalenessSeconds = opts.stateStalenessSeconds ?? 60; // harden (issue 10)
    this.events.setMaxListeners(100);
    if (opts.databaseUrl) {
      this.dialect = 'postgres';
      const u = new URL(opts.databaseUrl);
      this.location = `postgres://${u.host}${u.pathname}`;
      // harden (issue 10): a database that does not answer must fail requests (503), not hang them
      const pool = new (pgModule().Pool)({ connectionString: opts.databaseUrl, max: 10, connectionTimeoutMillis: 5000 });
      // An idle client losing its connection must not crash the process.
      pool.on('error', () => {});
      this.db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), plugins: [new NoNulPlugin()] }); // harden: NUL in text
    } else {
      this.dialect = 'sqlite';
      mkdirSync(opts.dataDir, { recursive: true });
      const file = path.join(opts.dataDir, 'gatehouse.db');
      this.location = file;
      const database = new SQLite(file);
      database.pragma('journal_mode = WAL');
      database.pragma('synchronous = NORMAL');
      database.pragma('foreign_keys = ON');
      database.pragma('busy_timeout = 5000');
      // perf (issue 9): checkpoints run on a worker thread (src/store/checkpointer.ts); the event
      // loop's connection keeps SQLite's default of 1,000 pages (4 MB) as the safety net, which
      // the worker normally beats.
      database.pragma('wal_autocheckpoint = 1000');
      this.checkpointer = startCheckpointer(file);
      this.sqlite = database;
      this.db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(database) }) });
    }
  }

  async migrate(): Promise<void> {
    const migrator = new Migrator({ db: this.db, provider: migrationProvider(this.dialect) });
    const { error, results } = await migrator.migrateToLatest();
    if (error) {
      const failed = results?.find((r) => r.status === 'Error');
      throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message ?? String(error)}`);
    }
    const last = await this.db.selectFrom('changes').select((eb) => eb.fn.max('seq').as('m')).executeTakeFirst();
    // >>> scaleout (issue 8): seqs just below the start that are not there yet are open gaps
    const max = Number(last?.m ?? 0);
    const present = await this.db.selectFrom('changes').select('seq').where('seq', '>', max - 5000).execute();
    this.cursor.reset(max, present.map((r) => Number(r.seq)));
    // <<< scaleout
  }

  /** True when migrations are applied and the database answers. */
  async ready(): Promise<boolean> {
    try {
      const migrator = new Migrator({ db: this.db, provider: migrationProvider(this.dialect) });
      const list = await migrator.getMigrations();
      return list.every((m) => m.executedAt !== undefined);
    } catch {
      return false;
    }
  }

  /**
   * Record a change that affects verification. Call inside the writing transaction, so the
   * change log and the data commit together; `afterCommit` then notifies this process.
   */
  async recordChange(tx: Executor, entity: string, id: string): Promise<void> {
    await tx.insertInto('changes').values({ entity, entity_id: id, at: new Date().toISOString() } as any).execute();
  }

  /** Tell this process's listeners now (the poller tells other processes). */
  notify(entity: string, id: string): void {
    this.events.emit('change', { entity, id } satisfies Change);
  }

  onChange(listener: (c: Change) => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }

  /** Start following changes written by other processes sharing this database. */
  startChangeFollower(): void {
    if (this.pollTimer || this.closed) return;
    this.feedOkAt = Date.now(); // harden (issue 10)
    this.pollTimer = setInterval(() => void this.pollChanges(), this.changePollMs);
    this.pollTimer.unref();
  }

  /**
   * Read the log from where this process stands (also the resynchronisation after a lost
   * LISTEN connection). Resolves true when the read succeeded.
   */
  async pollChanges(): Promise<boolean> {
    if (this.closed) return false;
    // One read at a time; a caller arriving during a read waits for the next one.
    if (this.polling) {
      this.pollAgain = true;
      return this.polling;
    }
    const run = async (): Promise<boolean> => {
      let ok = true;
      do {
        this.pollAgain = false;
        ok = await this.readChanges();
      } while (ok && this.pollAgain && !this.closed);
      return ok;
    };
    this.polling = run().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async readChanges(): Promise<boolean> {
    try {
      // >>> scaleout (issue 8): new rows plus open gaps (seqs committed out of order)
      for (;;) {
        const last = this.cursor.lastSeq;
        const gaps = this.cursor.openGaps();
        const rows = await this.db
          .selectFrom('changes')
          .select(['seq', 'entity', 'entity_id', 'at'])
          .where((eb) => (gaps.length ? eb.or([eb('seq', '>', last), eb('seq', 'in', gaps)]) : eb('seq', '>', last)))
          .orderBy('seq')
          .limit(1000)
          .execute();
        for (const r of rows) this.applyFeedChange({ seq: Number(r.seq), entity: r.entity, id: r.entity_id, at: r.at }, 'poll');
        if (rows.length < 1000) {
          this.feedOkAt = Date.now(); // harden (issue 10)
          return true;
        }
      }
      // <<< scaleout
    } catch {
      // Database briefly unreachable: try again on the next tick; nothing is lost because
      // the cursor only advances past rows we have seen.
      return false;
    }
  }

  // >>> scaleout (issue 8)
  /** Deliver one change from the log (poll or NOTIFY) unless this process already has it. */
  applyFeedChange(c: { seq: number; entity: string; id: string; at: string }, source: AppliedChange['source']): boolean {
    if (this.closed || !this.cursor.accept(c.seq)) return false;
    this.notify(c.entity, c.id);
    this.events.emit('applied', { ...c, source } satisfies AppliedChange);
    return true;
  }

  onApplied(listener: (c: AppliedChange) => void): () => void {
    this.events.on('applied', listener);
    return () => this.events.off('applied', listener);
  }

  /** Slow the safety-net poll while LISTEN delivers; speed it up again when it does not. */
  setChangePollMs(ms: number): void {
    if (ms === this.changePollMs) return;
    this.changePollMs = ms;
    if (this.pollTimer) {
      clearInterval(this.pollTimer);
      this.pollTimer = undefined;
      this.startChangeFollower();
    }
  }

  get feedPosition(): { lastSeq: number; openGaps: number; pollMs: number } {
    return { lastSeq: this.cursor.lastSeq, openGaps: this.cursor.gapCount, pollMs: this.changePollMs };
  }
  // <<< scaleout

  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  /** Run before the database closes (pending writes, e.g. the audit batch). */
  beforeClose(fn: () => Promise<void>): void {
    this.closeHooks.push(fn);
  }

  async close(): Promise<void> {
    if (!this.closed) for (const fn of this.closeHooks) await fn().catch(() => {});
    this.closed = true;
    await this.checkpointer?.close(); // after the last writes (the hooks above)
    if (this.pollTimer) clearInterval(this.pollTimer);
    await this.db.destroy();
  }
}

/**
 * perf (issue 9): Kysely's SQLite driver prepares every query anew; the profile of token
 * issuance showed better-sqlite3's prepare() at ~6% of the CPU. Statements are reused by their
 * SQL text (bounded; SQLite re-prepares a statement itself after a schema change). Kysely runs one
 * query at a time on its single connection, so a cached statement is never used twice at once.
 */
function withStatementCache(database: SQLite.Database): { prepare(sql: string): SQLite.Statement; close(): void } {
  const cache = new Map<string, SQLite.Statement>();
  return {
    prepare(sql: string) {
      let stmt = cache.get(sql);
      if (!stmt) {
        stmt = database.prepare(sql);
        makeRoom(cache, 500);
        cache.set(sql, stmt);
      }
      return stmt;
    },
    close() {
      cache.clear();
      database.close();
    },
  };
}
