import type { Kysely, Migration } from 'kysely';
import type { Dialect } from '../store/migrations.ts';

/**
 * 0002_clients: OIDC/OAuth clients (user- and subscription-level) and the revoked-token list
 * of the standard OAuth endpoints (RFC 7009).
 */
export function clientMigrations(_dialect: Dialect): Record<string, Migration> {
  return {
    '0002_clients': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('clients')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('subscription_id', 'text', (c) => c.notNull().references('subscriptions.id'))
          .addColumn('name', 'text', (c) => c.notNull())
          /** Lower-cased name: unique per subscription, case-insensitively. */
          .addColumn('name_key', 'text', (c) => c.notNull())
          .addColumn('level', 'text', (c) => c.notNull())
          .addColumn('all_modules', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('modules', 'text', (c) => c.notNull().defaultTo('[]'))
          .addColumn('created_by', 'text', (c) => c.notNull().references('users.id'))
          .addColumn('secret_hash', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('secret_rotated_at', 'text')
          .addColumn('last_used_at', 'text')
          .addColumn('expires_at', 'text')
          .execute();
        await db.schema.createIndex('clients_sub_name_uq').on('clients').columns(['subscription_id', 'name_key']).unique().execute();
        await db.schema.createIndex('clients_created_by_idx').on('clients').column('created_by').execute();
        await db.schema
          .createTable('revoked_tokens')
          .addColumn('jti', 'text', (c) => c.primaryKey())
          .addColumn('subscription_id', 'text')
          .addColumn('client_id', 'text')
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('revoked_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('revoked_tokens_exp_idx').on('revoked_tokens').column('expires_at').execute();
      },
    },
  };
}
