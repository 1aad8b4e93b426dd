import type { Executor } from '../store/db.ts';
import type { OutboxTable } from '../store/schema.ts';

/**
 * Status of an outbox entry:
 * - pending: waiting for (another) delivery attempt at next_attempt_at
 * - sending: claimed by a node until lease_until
 * - sent: delivered (SMTP accepted it / webhook answered 2xx)
 * - stored: no SMTP transport configured; the message stays here to be read
 * - failed: gave up after the configured number of attempts
 * - skipped: nothing to deliver to (a manager without an email address)
 * - cancelled: its token was deleted before delivery
 */
export type OutboxStatus = 'pending' | 'sending' | 'sent' | 'stored' | 'failed' | 'skipped' | 'cancelled';
export type OutboxChannel = 'email' | 'webhook';

export interface OutboxEntry {
  id: string;
  kind: string;
  channel: OutboxChannel;
  recipient: string | null;
  subject: string;
  body: string;
  secretId: string | null;
  status: OutboxStatus;
  attempts: number;
  lastError: string | null;
  nextAttemptAt: string | null;
  createdAt: string;
  sentAt: string | null;
}

export function toEntry(r: OutboxTable): OutboxEntry {
  return {
    id: r.id,
    kind: r.kind,
    channel: r.channel as OutboxChannel,
    recipient: r.recipient,
    subject: r.subject,
    body: r.body,
    secretId: r.secret_id,
    status: r.status as OutboxStatus,
    attempts: Number(r.attempts),
    lastError: r.last_error,
    nextAttemptAt: r.status === 'pending' ? r.next_attempt_at : null,
    createdAt: r.created_at,
    sentAt: r.sent_at,
  };
}

export async function listOutbox(db: Executor, subscriptionId: string, limit = 200): Promise<OutboxEntry[]> {
  const rows = await db.selectFrom('outbox').selectAll().where('subscription_id', '=', subscriptionId)
    .orderBy('created_at', 'desc').orderBy('id').limit(limit).execute();
  return rows.map(toEntry);
}

/** Entries a node may try to deliver now: due pending ones, and ones whose claimer vanished. */
export async function dueOutbox(db: Executor, nowIso: string, limit = 100): Promise<OutboxTable[]> {
  return db.selectFrom('outbox').selectAll()
    .where((eb) => eb.or([
      eb.and([eb('status', '=', 'pending'), eb('next_attempt_at', '<=', nowIso)]),
      eb.and([eb('status', '=', 'sending'), eb('lease_until', '<', nowIso)]),
    ]))
    .orderBy('next_attempt_at').limit(limit).execute();
}

/** Claim one entry for delivery by a conditional UPDATE; true when this node got it. */
export async function claimOutbox(db: Executor, id: string, nowIso: string, leaseUntilIso: string): Promise<boolean> {
  const r = await db.updateTable('outbox')
    .set((eb) => ({ status: 'sending', lease_until: leaseUntilIso, attempts: eb('attempts', '+', 1) }))
    .where('id', '=', id)
    .where((eb) => eb.or([
      eb.and([eb('status', '=', 'pending'), eb('next_attempt_at', '<=', nowIso)]),
      eb.and([eb('status', '=', 'sending'), eb('lease_until', '<', nowIso)]),
    ]))
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function finishOutbox(db: Executor, id: string, set: Partial<OutboxTable>): Promise<void> {
  await db.updateTable('outbox').set({ ...set, lease_until: null }).where('id', '=', id).where('status', '=', 'sending').execute();
}
