import { randomUUID } from 'node:crypto';
export const newId = (): string => randomUUID();
export const nowIso = (): string => new Date().toISOString();

/**
 * perf (issue 9): a time-ordered UUID (version 7, RFC 9562: 48-bit Unix milliseconds, then 74
 * random bits) for append-only tables keyed by id (the audit log). Random v4 keys land on random
 * pages of the primary-key index, so every commit dirtied (and wrote to the WAL) pages all over
 * it; v7 keys append. Not for anything that must be unguessable.
 */
export function newTimeOrderedId(now = Date.now()): string {
  const u = randomUUID(); // xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx: keep its random bits and variant
  const t = now.toString(16).padStart(12, '0');
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${u.slice(15)}`;
}
