import type { Kysely, Migration } from 'kysely';
import type { Dialect } from '../store/migrations.ts';

/**
 * Subscription tokens (issue 4) and the alert outbox. The token row's id is the secret ID
 * (the JWT's `jti`); the JWT itself is never stored.
 */
export function subscriptionTokenMigrations(_dialect: Dialect): Record<string, Migration> {
  return {
    '0003_subscription_tokens': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('subscription_tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('subscription_id', 'text', (c) => c.notNull().references('subscriptions.id'))
          .addColumn('created_by', 'text')
          .addColumn('created_by_name', 'text')
          .addColumn('modules', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('deleted_at', 'text')
          .addColumn('last_used_at', 'text')
          .addColumn('alert_claimed_at', 'text')
          .execute();
        await db.schema.createIndex('subscription_tokens_sub_idx').on('subscription_tokens').columns(['subscription_id', 'expires_at']).execute();
        await db.schema.createIndex('subscription_tokens_alert_idx').on('subscription_tokens').columns(['alert_claimed_at', 'expires_at']).execute();
        await db.schema
          .createTable('outbox')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('subscription_id', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('channel', 'text', (c) => c.notNull())
          .addColumn('recipient', 'text')
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('body', 'text', (c) => c.notNull())
          .addColumn('secret_id', 'text')
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('last_error', 'text')
          .addColumn('next_attempt_at', 'text', (c) => c.notNull())
          .addColumn('lease_until', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('sent_at', 'text')
          .execute();
        await db.schema.createIndex('outbox_due_idx').on('outbox').columns(['status', 'next_attempt_at']).execute();
        await db.schema.createIndex('outbox_sub_idx').on('outbox').columns(['subscription_id', 'created_at']).execute();
      },
    },
  };
}
