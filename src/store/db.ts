import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Transaction } from 'kysely';
import type { Database } from './schema.ts';
import { migrationProvider, type Dialect } from './migrations.ts';

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;
/** Anything queries can run on: the database or an open transaction. */
export type Executor = Db | Tx;

export interface Change {
  entity: string;
  id: string;
}

export interface StoreOptions {
  dataDir: string;
  databaseUrl?: string | undefined;
  /** How often to read the change log for changes written by other processes. */
  changePollMs?: number;
}

/**
 * The persistence port: a Kysely instance over SQLite (default) or PostgreSQL, plus the
 * change feed that keeps every node's in-memory verification state current.
 */
export class Store {
  readonly db: Db;
  readonly dialect: Dialect;
  private readonly events = new EventEmitter();
  private lastSeq = 0;
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;
  private readonly changePollMs: number;
  readonly location: string;

  constructor(opts: StoreOptions) {
    this.changePollMs = opts.changePollMs ?? 500;
    this.events.setMaxListeners(100);
    if (opts.databaseUrl) {
      this.dialect = 'postgres';
      const u = new URL(opts.databaseUrl);
      this.location = `postgres://${u.host}${u.pathname}`;
      const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: 10 });
      // An idle client losing its connection must not crash the process.
      pool.on('error', () => {});
      this.db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
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
      this.db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
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
    this.lastSeq = Number(last?.m ?? 0);
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
    this.pollTimer = setInterval(() => void this.pollChanges(), this.changePollMs);
    this.pollTimer.unref();
  }

  async pollChanges(): Promise<void> {
    if (this.polling || this.closed) return;
    this.polling = true;
    try {
      const rows = await this.db
        .selectFrom('changes')
        .select(['seq', 'entity', 'entity_id'])
        .where('seq', '>', this.lastSeq)
        .orderBy('seq')
        .limit(1000)
        .execute();
      for (const r of rows) {
        this.lastSeq = Math.max(this.lastSeq, Number(r.seq));
        this.notify(r.entity, r.entity_id);
      }
    } catch {
      // Database briefly unreachable: try again on the next tick; nothing is lost because
      // lastSeq only advances past rows we have seen.
    } finally {
      this.polling = false;
    }
  }

  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    await this.db.destroy();
  }
}
