/**
 * The console's only way to the server: the public HTTP API, authenticated by the session
 * cookie (sent by the browser, HttpOnly) plus the session's CSRF token on unsafe methods.
 * Errors carry the API's own message.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | number | null,
  ) {
    super(message);
  }
}

let csrfToken = '';
let onSessionLost: ((message: string) => void) | null = null;

export function setCsrfToken(t: string): void {
  csrfToken = t;
}
export function setSessionLostHandler(h: (message: string) => void): void {
  onSessionLost = h;
}

function messageOf(status: number, body: unknown, text: string): { message: string; code: string | number | null } {
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    if (typeof b.errorMessage === 'string') return { message: b.errorMessage, code: (b.errorCode as string | number) ?? null };
    if (typeof b.error_description === 'string') return { message: b.error_description, code: (b.error as string) ?? null };
    if (typeof b.message === 'string') return { message: b.message, code: null };
  }
  return { message: text.trim() || `The server answered ${status} without a message.`, code: null };
}

export async function api<T = any>(method: string, path: string, body?: unknown, opts: { quietAuth?: boolean } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (!['GET', 'HEAD'].includes(method) && csrfToken) headers['x-csrf-token'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'Cannot reach the Gatehouse server. Check that it is running and reload the page.', null);
  }
  const text = await res.text();
  let parsed: unknown = undefined;
  if ((res.headers.get('content-type') ?? '').includes('json') && text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  if (!res.ok) {
    const { message, code } = messageOf(res.status, parsed, text);
    if (res.status === 401 && !opts.quietAuth && onSessionLost) onSessionLost(message);
    throw new ApiError(res.status, message, code);
  }
  return (parsed !== undefined ? parsed : text) as T;
}

export interface SessionInfo {
  user: { id: string; username: string; role: 'manager' | 'user'; apiAccess: boolean; uiAccess: boolean; modules: string[] };
  subscription: { id: string; name?: string };
  csrfToken: string;
  expiresAt: string;
  idleExpiresAt: string;
  idleTimeoutSeconds: number;
}

/** Module names, as the server publishes them (discovery `scopes_supported`). */
let modulesCache: Promise<string[]> | null = null;
export function allModules(): Promise<string[]> {
  modulesCache ??= api<{ scopes_supported?: string[] }>('GET', '/.well-known/openid-configuration').then((d) => d.scopes_supported ?? []);
  return modulesCache;
}

/** "3 days 4 h", "25 min", "expired" — time from now to an ISO instant. */
export function timeLeft(iso: string, now = Date.now()): string {
  const ms = Date.parse(iso) - now;
  if (ms <= 0) return 'expired';
  const min = Math.floor(ms / 60000);
  const d = Math.floor(min / 1440);
  const h = Math.floor((min % 1440) / 60);
  const m = min % 60;
  if (d > 0) return `${d} day${d === 1 ? '' : 's'}${h ? ` ${h} h` : ''}`;
  if (h > 0) return `${h} h${m ? ` ${m} min` : ''}`;
  return `${Math.max(1, m)} min`;
}

export function fmtDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
