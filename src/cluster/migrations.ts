import { sql, type Migration } from 'kysely';
import type { Dialect } from '../store/migrations.ts';

/** The channel every node LISTENs on; one notification per row of `changes`. */
export const CHANGE_CHANNEL = 'gatehouse_changes';

/**
 * On PostgreSQL a trigger on `changes` calls pg_notify in the inserting transaction, so the
 * notification is sent exactly when (and only if) the change commits, whoever wrote it: a
 * node, the operator CLI, or a future writer that knows nothing of LISTEN. SQLite: nothing.
 */
export function scaleoutMigrations(dialect: Dialect): Record<string, Migration> {
  return {
    '0008_change_notify': {
      async up(db) {
        if (dialect !== 'postgres') return;
        await sql`
          CREATE OR REPLACE FUNCTION gatehouse_notify_change() RETURNS trigger AS $$
          BEGIN
            PERFORM pg_notify(${sql.lit(CHANGE_CHANNEL)}, json_build_object(
              'seq', NEW.seq, 'entity', NEW.entity, 'id', NEW.entity_id, 'at', NEW.at)::text);
            RETURN NULL;
          END $$ LANGUAGE plpgsql`.execute(db);
        await sql`
          CREATE TRIGGER changes_notify AFTER INSERT ON changes
          FOR EACH ROW EXECUTE FUNCTION gatehouse_notify_change()`.execute(db);
      },
      async down(db) {
        if (dialect !== 'postgres') return;
        await sql`DROP TRIGGER IF EXISTS changes_notify ON changes`.execute(db);
        await sql`DROP FUNCTION IF EXISTS gatehouse_notify_change()`.execute(db);
      },
    },
  };
}
