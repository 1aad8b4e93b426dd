import type { Logger } from 'pino';
import type { AuditEventInput, Principal } from '../domain/types.ts';
import type { Executor, Store } from '../store/db.ts';
import { AuditBatchWriter, insertAuditEvent } from '../store/audit.ts';

/** Secrets must never reach the audit log: these detail keys are dropped wholesale. */
const SECRET_KEYS = /pass(word)?|secret|token|authorization|cookie|hash/i;

function scrub(details: Record<string, unknown> | null | undefined): Record<string, unknown> | null {
  if (!details) return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details)) if (!SECRET_KEYS.test(k)) out[k] = v;
  return out;
}

export class AuditLog {
  private readonly writer: AuditBatchWriter;

  constructor(
    store: Store,
    private readonly log: Logger,
  ) {
    this.writer = new AuditBatchWriter(store);
    store.beforeClose(() => this.writer.drain());
  }

  /**
   * Record an event; inside a transaction when given one, so it commits with the change.
   * Without one, the event joins this event-loop turn's group commit (AuditBatchWriter): the
   * promise settles after the row is committed.
   */
  async record(e: AuditEventInput, tx?: Executor): Promise<void> {
    const event = e.details ? { ...e, details: scrub(e.details) } : e;
    try {
      await (tx ? insertAuditEvent(tx, event) : this.writer.write(event));
    } catch (err) {
      if (tx) throw err;
      this.log.error({ err, action: e.action }, 'could not write audit event');
    }
  }

  /**
   * Record the issuance of a credential, or throw: a token is handed out only once its issuance
   * is on record. When the row cannot be written (the database is unreachable) the request fails
   * (503) instead of issuing a token nobody could trace.
   */
  async recordIssuance(e: AuditEventInput): Promise<void> {
    await this.writer.write(e.details ? { ...e, details: scrub(e.details) } : e);
  }
}

export function actorOf(p: Principal): Pick<AuditEventInput, 'actorType' | 'actorId' | 'actorName' | 'subscriptionId'> {
  if (p.kind === 'user') return { actorType: 'user', actorId: p.userId, actorName: p.username, subscriptionId: p.subscriptionId };
  if (p.authMethod === 'subscription_client') {
    return { actorType: 'client', actorId: p.clientId ?? null, actorName: null, subscriptionId: p.subscriptionId };
  }
  return { actorType: 'subscription_token', actorId: p.secretId ?? null, actorName: null, subscriptionId: p.subscriptionId };
}
