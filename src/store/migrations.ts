import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
// --- clients (issue 3) ---
import { clientMigrations } from '../clients/migrations.ts';
// --- end clients ---
// --- subscription tokens (issue 4) ---
import { subscriptionTokenMigrations } from '../subscription-tokens/migrations.ts';
// --- end subscription tokens ---
// >>> idp (issue 6)
import { idpMigrations } from '../idp/migrations.ts';
// <<< idp
// >>> console (issue 7)
import { consoleMigrations } from '../console/migrations.ts';
// <<< console
import { scaleoutMigrations } from '../cluster/migrations.ts'; // scaleout (issue 8)

export type Dialect = 'sqlite' | 'postgres';

/**
 * Migrations in code, applied at start. Each capability appends its own; never edit one
 * that has shipped. `dialect` is there for the few places the two stores differ.
 */
/**
 * Capabilities register their migrations here, one line each, named NNNN_capability so they
 * sort in order (Kysely applies them by name).
 */
const capabilityMigrations: Array<(dialect: Dialect) => Record<string, Migration>> = [
  // e.g. clientMigrations, subscriptionTokenMigrations, ...
  clientMigrations, // issue 3: clients + revoked_tokens
  subscriptionTokenMigrations, // issue 4: 0003_subscription_tokens
  idpMigrations, // idp (issue 6): 0005_idps
  consoleMigrations, // console (issue 7): 0006_sessions
  scaleoutMigrations, // scaleout (issue 8): 0008_change_notify (PostgreSQL NOTIFY trigger)
];

export function migrations(dialect: Dialect): Record<string, Migration> {
  return Object.assign({}, foundation(dialect), ...capabilityMigrations.map((m) => m(dialect)));
}

function foundation(dialect: Dialect): Record<string, Migration> {
  const seqType = dialect === 'postgres' ? 'bigserial' : 'integer';
  return {
    '0001_foundation': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('subscriptions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('users')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('subscription_id', 'text', (c) => c.notNull().references('subscriptions.id'))
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('username_key', 'text', (c) => c.notNull().unique())
          .addColumn('email', 'text')
          .addColumn('password_hash', 'text')
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('sso_enabled', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('api_access', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('ui_access', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('modules', 'text', (c) => c.notNull().defaultTo('[]'))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('users_subscription_idx').on('users').column('subscription_id').execute();
        await db.schema
          .createTable('audit_events')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('subscription_id', 'text')
          .addColumn('actor_type', 'text', (c) => c.notNull())
          .addColumn('actor_id', 'text')
          .addColumn('actor_name', 'text')
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('target_type', 'text')
          .addColumn('target_id', 'text')
          .addColumn('outcome', 'text', (c) => c.notNull())
          .addColumn('reason', 'text')
          .addColumn('source_ip', 'text')
          .addColumn('details', 'text')
          .execute();
        await db.schema.createIndex('audit_sub_at_idx').on('audit_events').columns(['subscription_id', 'at']).execute();
        await db.schema
          .createTable('signing_keys')
          .addColumn('kid', 'text', (c) => c.primaryKey())
          .addColumn('alg', 'text', (c) => c.notNull())
          .addColumn('public_jwk', 'text', (c) => c.notNull())
          .addColumn('private_key_enc', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('retired_at', 'text')
          .addColumn('not_after', 'text')
          .execute();
        await db.schema
          .createTable('changes')
          .addColumn('seq', sql.raw(seqType) as any, (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('entity', 'text', (c) => c.notNull())
          .addColumn('entity_id', 'text', (c) => c.notNull())
          .execute();
      },
    },
  };
}

export function migrationProvider(dialect: Dialect, extra: Record<string, Migration> = {}): MigrationProvider {
  return { getMigrations: async () => ({ ...migrations(dialect), ...extra }) };
}
