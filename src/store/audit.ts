import type { AuditEvent, AuditEventInput } from '../domain/types.ts';
import type { Executor } from './db.ts';
import { newId, nowIso } from './ids.ts';

export async function insertAuditEvent(db: Executor, e: AuditEventInput): Promise<void> {
  await db
    .insertInto('audit_events')
    .values({
      id: newId(),
      at: nowIso(),
      subscription_id: e.subscriptionId,
      actor_type: e.actorType,
      actor_id: e.actorId,
      actor_name: e.actorName,
      action: e.action,
      target_type: e.targetType ?? null,
      target_id: e.targetId ?? null,
      outcome: e.outcome,
      reason: e.reason ?? null,
      source_ip: e.sourceIp ?? null,
      details: e.details ? JSON.stringify(e.details) : null,
    })
    .execute();
}

export interface AuditQuery {
  subscriptionId: string;
  action?: string | undefined;
  outcome?: string | undefined;
  actorId?: string | undefined;
  since?: string | undefined;
  limit?: number | undefined;
}

export async function listAuditEvents(db: Executor, q: AuditQuery): Promise<AuditEvent[]> {
  let query = db.selectFrom('audit_events').selectAll().where('subscription_id', '=', q.subscriptionId);
  if (q.action) query = query.where('action', '=', q.action);
  if (q.outcome) query = query.where('outcome', '=', q.outcome);
  if (q.actorId) query = query.where('actor_id', '=', q.actorId);
  if (q.since) query = query.where('at', '>=', q.since);
  const rows = await query.orderBy('at', 'desc').orderBy('id').limit(Math.min(q.limit ?? 100, 1000)).execute();
  return rows.map((r) => ({
    id: r.id,
    at: r.at,
    subscriptionId: r.subscription_id,
    actorType: r.actor_type as AuditEvent['actorType'],
    actorId: r.actor_id,
    actorName: r.actor_name,
    action: r.action,
    targetType: r.target_type,
    targetId: r.target_id,
    outcome: r.outcome as AuditEvent['outcome'],
    reason: r.reason,
    sourceIp: r.source_ip,
    details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null,
  }));
}
