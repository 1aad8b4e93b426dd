import { createHmac } from 'node:crypto';
import type { Transporter } from 'nodemailer';
import { lazyRequire } from '../lazy-require.ts';

const nodemailer = lazyRequire<typeof import('nodemailer')>('nodemailer'); // perf (issue 9): only with SMTP_URL

export interface MailMessage {
  from: string;
  to: string;
  subject: string;
  text: string;
}

/** SMTP through nodemailer (SMTP_URL, e.g. smtp://mail.example:25 or smtps://user:pass@host:465). */
export class SmtpMailer {
  private readonly transport: Transporter;

  constructor(url: string) {
    this.transport = nodemailer().createTransport(url);
  }

  async send(m: MailMessage): Promise<void> {
    await this.transport.sendMail(m);
  }

  close(): void {
    this.transport.close();
  }
}

export const SIGNATURE_HEADER = 'x-gatehouse-signature';

/** `sha256=<hex HMAC-SHA256 of the exact body bytes>` (the GitHub webhook convention). */
export function signBody(secret: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(body, 'utf8').digest('hex');
}

/** POST JSON with an HMAC signature; any non-2xx answer is a failed attempt. */
export async function postWebhook(
  cfg: { url: string; secret: string; timeoutMs: number },
  body: string,
  deliveryId: string,
): Promise<void> {
  const res = await fetch(cfg.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'Gatehouse-Webhook/1',
      [SIGNATURE_HEADER]: signBody(cfg.secret, body),
      'x-gatehouse-delivery': deliveryId,
      'x-gatehouse-event': 'subscription_token.expiring',
    },
    body,
    redirect: 'manual',
    signal: AbortSignal.timeout(cfg.timeoutMs),
  });
  await res.body?.cancel().catch(() => {});
  if (res.status < 200 || res.status >= 300) throw new Error(`webhook answered HTTP ${res.status}`);
}
