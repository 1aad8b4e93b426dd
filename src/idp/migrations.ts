import type { Kysely, Migration } from 'kysely';
import type { Dialect } from '../store/migrations.ts';

/** Trusted external identity providers, one row per (subscription, issuer). */
export function idpMigrations(_dialect: Dialect): Record<string, Migration> {
  return {
    '0005_idps': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('idps')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('subscription_id', 'text', (c) => c.notNull().references('subscriptions.id'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('issuer', 'text', (c) => c.notNull())
          .addColumn('jwks_uri', 'text')
          .addColumn('audiences', 'text', (c) => c.notNull())
          .addColumn('algorithms', 'text', (c) => c.notNull())
          .addColumn('user_claim', 'text')
          .addColumn('modules_claim', 'text')
          .addColumn('allow_api_tokens', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('allow_exchange', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('cap_to_subject_expiry', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('source', 'text', (c) => c.notNull().defaultTo('api'))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('idps_subscription_issuer_idx').on('idps').columns(['subscription_id', 'issuer']).unique().execute();
        await db.schema.createIndex('idps_issuer_idx').on('idps').column('issuer').execute();
      },
    },
  };
}
