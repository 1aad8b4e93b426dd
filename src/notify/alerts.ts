import { randomUUID } from 'node:crypto';
import { Cron } from 'croner';
import type { Logger } from 'pino';
import type { Store } from '../store/db.ts';
import type { AuditLog } from '../audit/audit.ts';
import type { OutboxTable } from '../store/schema.ts';
import { alertsSchema, mailSchema, type AlertsConfig, type MailConfig } from './config-schema.ts';
import { claimOutbox, dueOutbox, finishOutbox } from './outbox.ts';
import { SmtpMailer, postWebhook } from './transports.ts';

const DAY_MS = 24 * 3600 * 1000;
const LEASE_MS = 5 * 60 * 1000;

export interface AlertRunResult {
  /** Tokens whose alert this run claimed. */
  claimed: string[];
  delivered: number;
  failed: number;
}

/**
 * Expiry alerts for subscription tokens. Every scan (croner, `alerts.schedule`) claims the
 * tokens entering the alert window with a conditional UPDATE (`alert_claimed_at IS NULL`),
 * so each alert is created exactly once however many nodes share the database and however
 * often they restart; then it delivers due outbox entries, each claimed the same way.
 */
export class AlertService {
  readonly config: AlertsConfig;
  readonly mail: MailConfig;
  private readonly mailer: SmtpMailer | undefined;
  private cron: Cron | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    private readonly clock: () => Date,
    opts: { alerts?: unknown; mail?: unknown; smtpUrl?: string | undefined },
  ) {
    // Parsing again is idempotent and gives defaults to sections passed in programmatically.
    this.config = alertsSchema.parse(opts.alerts ?? {});
    this.mail = mailSchema.parse(opts.mail ?? {});
    this.mailer = opts.smtpUrl ? new SmtpMailer(opts.smtpUrl) : undefined;
  }

  get transport(): 'smtp' | 'outbox' {
    return this.mailer ? 'smtp' : 'outbox';
  }

  start(): void {
    if (!this.config.enabled || this.cron) return;
    this.cron = new Cron(this.config.schedule, { protect: true, unref: true }, () => {
      void this.runOnce().catch((err: unknown) => this.log.error({ err }, 'expiry alert scan failed'));
    });
  }

  /** Scan and deliver now (what the scheduler does); runs on this node one at a time. */
  runOnce(): Promise<AlertRunResult> {
    const run = this.chain.then(() => this.scanAndDeliver());
    this.chain = run.catch(() => {});
    return run;
  }

  private async scanAndDeliver(): Promise<AlertRunResult> {
    const claimed = this.stopped ? [] : await this.scan();
    const { delivered, failed } = this.stopped ? { delivered: 0, failed: 0 } : await this.deliverDue();
    return { claimed, delivered, failed };
  }

  private async scan(): Promise<string[]> {
    const now = this.clock();
    const leadMs = this.config.leadDays * DAY_MS;
    const nowIso = now.toISOString();
    const horizon = new Date(now.getTime() + leadMs).toISOString();
    const candidates = await this.store.db.selectFrom('subscription_tokens')
      .select(['id', 'subscription_id', 'created_at', 'expires_at'])
      .where('alert_claimed_at', 'is', null)
      .where('deleted_at', 'is', null)
      .where('expires_at', '>', nowIso)
      .where('expires_at', '<=', horizon)
      .limit(1000)
      .execute();
    const claimed: string[] = [];
    for (const c of candidates) {
      // A token whose whole life is shorter than the lead time never had an alert moment:
      // its creator chose the short expiry knowingly (documented in docs/subscription-tokens.md).
      if (Date.parse(c.created_at) > Date.parse(c.expires_at) - leadMs) continue;
      try {
        if (await this.claim(c.id, c.subscription_id, c.expires_at, nowIso)) claimed.push(c.id);
      } catch (err) {
        this.log.error({ err, secretId: c.id }, 'could not create the expiry alert; will retry on the next scan');
      }
    }
    return claimed;
  }

  /** One transaction: the claim, the messages and the audit event commit together or not at all. */
  private async claim(secretId: string, subscriptionId: string, expiresAt: string, nowIso: string): Promise<boolean> {
    const managers = await this.store.db.selectFrom('users').select(['id', 'username', 'email'])
      .where('subscription_id', '=', subscriptionId).where('role', '=', 'manager').where('status', '=', 'active')
      .orderBy('username').execute();
    const won = await this.store.transaction(async (tx) => {
      const r = await tx.updateTable('subscription_tokens').set({ alert_claimed_at: nowIso })
        .where('id', '=', secretId).where('alert_claimed_at', 'is', null).where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return false;
      const subject = `${this.mail.subjectPrefix} Subscription token ${secretId} expires on ${expiresAt}`.trim();
      const rows: OutboxTable[] = [];
      for (const m of managers) {
        const status = !this.mailer ? 'stored' : m.email ? 'pending' : 'skipped';
        rows.push(this.row({
          subscriptionId, secretId, nowIso, channel: 'email', recipient: m.email, subject, status,
          body: mailText(m.username, secretId, expiresAt, this.config.leadDays),
          lastError: status === 'skipped' ? `manager '${m.username}' has no email address` : null,
        }));
      }
      const hook = this.config.webhook;
      if (hook) {
        const alertId = randomUUID();
        const payload = { event: 'subscription_token.expiring', alertId, subscriptionId, secretId, expiresAt, alertedAt: nowIso };
        rows.push(this.row({ subscriptionId, secretId, nowIso, channel: 'webhook', recipient: hook.url, subject, status: 'pending', body: JSON.stringify(payload), lastError: null, id: alertId }));
      }
      if (rows.length) await tx.insertInto('outbox').values(rows).execute();
      await this.audit.record({
        subscriptionId, actorType: 'system', actorId: null, actorName: null, action: 'subscription_token.alert',
        targetType: 'subscription_token', targetId: secretId, outcome: 'success',
        details: { expiresAt, transport: this.transport, emails: managers.filter((m) => m.email).length, webhook: Boolean(hook) },
      }, tx);
      return true;
    });
    if (won && !this.mailer) {
      // No SMTP: the alert is readable at GET /api/v1/outbox; say so (no token, only its ID).
      this.log.info({ secretId, subscriptionId, expiresAt, managers: managers.map((m) => m.username) },
        'subscription token expiry alert stored in the outbox (SMTP_URL not set)');
    }
    return won;
  }

  private row(o: {
    subscriptionId: string; secretId: string; nowIso: string; channel: 'email' | 'webhook'; recipient: string | null;
    subject: string; body: string; status: string; lastError: string | null; id?: string;
  }): OutboxTable {
    return {
      id: o.id ?? randomUUID(), subscription_id: o.subscriptionId, kind: 'subscription_token.expiring', channel: o.channel,
      recipient: o.recipient, subject: o.subject, body: o.body, secret_id: o.secretId, status: o.status, attempts: 0,
      last_error: o.lastError, next_attempt_at: o.nowIso, lease_until: null, created_at: o.nowIso, sent_at: null,
    };
  }

  private backoffMs(attempts: number): number {
    const { initialDelaySeconds, maxDelaySeconds } = this.config.retry;
    return Math.min(initialDelaySeconds * 2 ** Math.max(0, attempts - 1), maxDelaySeconds) * 1000;
  }

  private async deliverDue(): Promise<{ delivered: number; failed: number }> {
    let delivered = 0;
    let failed = 0;
    const now = this.clock();
    const nowIso = now.toISOString();
    for (const row of await dueOutbox(this.store.db, nowIso)) {
      if (!(await claimOutbox(this.store.db, row.id, nowIso, new Date(now.getTime() + LEASE_MS).toISOString()))) continue;
      const attempts = Number(row.attempts) + 1;
      const token = row.secret_id
        ? await this.store.db.selectFrom('subscription_tokens').select('deleted_at').where('id', '=', row.secret_id).executeTakeFirst()
        : undefined;
      if (token?.deleted_at) {
        await finishOutbox(this.store.db, row.id, { status: 'cancelled', last_error: 'token deleted' });
        continue;
      }
      try {
        if (row.channel === 'email') {
          if (!this.mailer || !row.recipient) throw new Error('no SMTP transport or recipient');
          await this.mailer.send({ from: this.mail.from, to: row.recipient, subject: row.subject, text: row.body });
        } else {
          const hook = this.config.webhook;
          if (!hook) throw new Error('no webhook configured any more');
          await postWebhook(hook, row.body, row.id);
        }
        await finishOutbox(this.store.db, row.id, { status: 'sent', sent_at: this.clock().toISOString(), last_error: null });
        delivered++;
      } catch (err) {
        const message = describe(err);
        const giveUp = attempts >= this.config.retry.maxAttempts;
        await finishOutbox(this.store.db, row.id, {
          status: giveUp ? 'failed' : 'pending',
          last_error: message,
          next_attempt_at: new Date(this.clock().getTime() + this.backoffMs(attempts)).toISOString(),
        });
        failed++;
        this.log.warn({ outboxId: row.id, channel: row.channel, attempts, giveUp, error: message }, 'expiry alert delivery failed');
      }
    }
    return { delivered, failed };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cron?.stop();
    await this.chain.catch(() => {});
    this.mailer?.close();
  }
}

function describe(err: unknown): string {
  const e = err as { message?: string; responseCode?: number; code?: string; cause?: { code?: string } };
  const m = e?.message ?? String(err);
  return (e?.cause?.code ? `${m} (${e.cause.code})` : m).slice(0, 500);
}

export function mailText(username: string, secretId: string, expiresAt: string, leadDays: number): string {
  return [
    `Hello ${username},`,
    '',
    `A subscription token of your subscription expires in ${leadDays} days or less.`,
    '',
    `Secret ID:       ${secretId}`,
    `Expires at (UTC): ${expiresAt}`,
    '',
    'To replace it: authenticate (POST /auth), create a new token (POST /qas/subscription-token),',
    `then delete this one (DELETE /qas/subscription-token/token/${secretId}).`,
    '',
    '-- Gatehouse',
  ].join('\n');
}
