import { z } from 'zod';
import { Cron } from 'croner';

/** YAML `mail:` — how alert emails look. The transport is SMTP_URL (unset: outbox only). */
export const mailSchema = z
  .object({
    from: z.string().min(3).default('Gatehouse <gatehouse@localhost>'),
    subjectPrefix: z.string().max(100).default('[Gatehouse]'),
  })
  .strict()
  .default({});

const cronPattern = z.string().refine((p) => {
  try {
    new Cron(p, { paused: true }).stop();
    return true;
  } catch {
    return false;
  }
}, 'not a valid cron pattern (e.g. "* * * * *" for every minute)');

/** YAML `alerts:` — subscription token expiry alerts. */
export const alertsSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** How long before expiry the alert goes out (Qualys: 15 days). */
    leadDays: z.number().positive().max(365).default(15),
    /** When to scan for tokens entering the alert window and deliver due messages (croner pattern). */
    schedule: cronPattern.default('* * * * *'),
    retry: z
      .object({
        maxAttempts: z.number().int().min(1).max(100).default(8),
        initialDelaySeconds: z.number().int().min(1).default(60),
        maxDelaySeconds: z.number().int().min(1).default(6 * 3600),
      })
      .strict()
      .default({}),
    webhook: z
      .object({
        url: z.string().url().refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL'),
        /** HMAC-SHA256 key for the X-Gatehouse-Signature header. */
        secret: z.string().min(16, 'use at least 16 characters'),
        timeoutMs: z.number().int().min(100).max(60_000).default(5000),
      })
      .strict()
      .optional(),
  })
  .strict()
  .default({});

export type MailConfig = z.infer<typeof mailSchema>;
export type AlertsConfig = z.infer<typeof alertsSchema>;
