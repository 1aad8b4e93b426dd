import type { Kysely, Migration } from 'kysely';
import type { Dialect } from '../store/migrations.ts';

/**
 * 0006_sessions: web console sessions. Only the SHA-256 of the session id is stored, so a
 * copy of the database does not hand out live sessions.
 */
export function consoleMigrations(_dialect: Dialect): Record<string, Migration> {
  return {
    '0006_sessions': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('sessions')
          .addColumn('id_hash', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
          .addColumn('subscription_id', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('last_seen_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('source_ip', 'text')
          .addColumn('user_agent', 'text')
          .execute();
        await db.schema.createIndex('sessions_user_idx').on('sessions').column('user_id').execute();
      },
    },
  };
}
