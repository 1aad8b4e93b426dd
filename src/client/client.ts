/**
 * GatehouseClient: one object per base URL + credential. It obtains the JWT, caches it,
 * renews it before it expires (one request however many calls are waiting), retries once on
 * 401 with a fresh token, waits out 409 rate-limit answers (`X-RateLimit-ToWait-Sec`) and keeps
 * at most `X-Concurrency-Limit-Limit` calls in flight. Uses only the platform `fetch`.
 */
import { GatehouseClientError, GatehouseHttpError, RotationError, TokenExpiredError } from './errors.ts';
import { decodeClaims, type JwtClaims } from './jwt.ts';
import { Semaphore } from './semaphore.ts';
import {
  TOKEN_TYPE,
  clientToken,
  exchangeToken,
  expiryOf,
  joinUrl,
  networkError,
  normalizeBaseUrl,
  passwordToken,
  type FetchLike,
  type IssuedToken,
} from './tokens.ts';

/** How the client authenticates. */
export type Credentials =
  /** `POST /auth` with a username and password; renewed by logging in again. */
  | { kind: 'password'; username: string; password: string }
  /** A client ID + secret: `/auth/oidc` (level `user`, default) or `/auth/oauth` (level `subscription`). */
  | { kind: 'client'; clientId: string; clientSecret: string; level?: 'user' | 'subscription' }
  /** A long-lived subscription token (`POST /qas/subscription-token`), used as it is. Warns near its expiry. */
  | { kind: 'subscriptionToken'; token: string }
  /**
   * A token from your identity provider: a string, or a function that returns a current one
   * (called again when the last one expires or is refused). With `exchange: true` it is
   * exchanged at `/oauth2/token` (RFC 8693) for a Gatehouse JWT; otherwise sent as it is.
   */
  | { kind: 'idpToken'; token: string | (() => string | Promise<string>); exchange?: boolean; subjectTokenType?: string }
  /** A JWT obtained elsewhere (e.g. stored by `gatehouse login`); used until it expires, never renewed. */
  | { kind: 'jwt'; token: string };

export interface TokenState {
  token: string;
  /** Epoch milliseconds; undefined when the token does not say. */
  expiresAt: number | undefined;
}

/** Where a client keeps its token between processes (the CLI stores it in the profile). */
export interface TokenCache {
  load(): TokenState | undefined | Promise<TokenState | undefined>;
  save(state: TokenState): void | Promise<void>;
}

export interface GatehouseClientOptions {
  /** Gatehouse or any Qualys-compatible gateway, e.g. `https://gateway.qg1.apps.qualys.com`. */
  baseUrl: string;
  credentials: Credentials;
  /** Replaces the platform fetch (tests, proxies). */
  fetch?: FetchLike;
  /** Wall clock in epoch ms (tests). */
  now?: () => number;
  /** Sleep used while waiting out rate limits (tests). */
  sleep?: (ms: number, signal?: AbortSignal | null) => Promise<void>;
  /** Renew this long before `exp` (default 60 s; at most a quarter of the token's lifetime). */
  refreshBeforeSeconds?: number;
  /**
   * Calls in flight at once. `'auto'` (default): the first call goes alone and the limit is
   * taken from `X-Concurrency-Limit-Limit` (unlimited when the server sends none). A number
   * fixes it.
   */
  maxConcurrency?: number | 'auto';
  /** Waiting out 409 (with `X-RateLimit-ToWait-Sec`) and 429 (with `Retry-After`). */
  rateLimit?: { maxRetries?: number; maxWaitSeconds?: number };
  /** Warn this many days before a subscription token expires (default 15, as Qualys' alert). */
  expiryWarningDays?: number;
  /** Receives warnings (default: `console.warn`). Never given a token. */
  onWarning?: (message: string) => void;
  tokenCache?: TokenCache;
  /** Timeout of token requests in ms (default 30 s). Module calls use the caller's `signal`. */
  tokenTimeoutMs?: number;
  userAgent?: string;
}

/** `GET /api/v1/me` (Gatehouse only). */
export interface Me {
  kind: 'user' | 'client' | 'subscription_token' | string;
  authMethod: string;
  subscription: { id: string; name: string };
  modules: string[];
  tokenId: string | null;
  user: { id: string; username: string; role: string; apiAccess: boolean; uiAccess: boolean } | null;
  clientId: string | null;
  secretId?: string;
}

export interface SubscriptionToken {
  secretId: string;
  createdBy: { id: string | null; username: string | null };
  createdAt: string;
  expiresAt: string;
  expired: boolean;
  lastUsedAt: string | null;
  modules: string[];
  alertSent: boolean;
  alertSentAt: string | null;
  /** Added by the SDK: live and within `expiryWarningDays` of expiry. */
  expiresSoon: boolean;
}

export interface SubscriptionTokenList {
  count: number;
  limit: number;
  tokens: SubscriptionToken[];
}

export interface CreatedSubscriptionToken {
  /** The long-lived JWT; the server shows it only this once. */
  token: string;
  secretId: string;
  expiresAt: string | null;
}

export interface CreateSubscriptionTokenInput {
  /** Lifetime in minutes, 1 … 525600 (one year). */
  expiryMinutes: number;
  /** Module API rights (default: all). */
  modules?: string[];
}

const MAX_EXPIRY_MINUTES = 525_600;
const DAY_MS = 86_400_000;

const defaultSleep = (ms: number, signal?: AbortSignal | null): Promise<void> =>
  new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Bodies fetch can send twice (needed to retry). A stream can be sent only once. */
function replayable(body: RequestInit['body']): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof URLSearchParams ||
    body instanceof ArrayBuffer || ArrayBuffer.isView(body) || body instanceof Blob || body instanceof FormData;
}

function waitSeconds(res: Response): number | undefined {
  const h = res.status === 409 ? res.headers.get('x-ratelimit-towait-sec') : res.status === 429 ? res.headers.get('retry-after') : null;
  if (h === null || h.trim() === '') return undefined;
  const n = Number(h);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

export class GatehouseClient {
  readonly baseUrl: string;
  private readonly credentials: Credentials;
  private readonly doFetch: FetchLike;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal | null) => Promise<void>;
  private readonly refreshBeforeMs: number;
  private readonly autoConcurrency: boolean;
  private readonly semaphore: Semaphore;
  private learnedConcurrency = false;
  private readonly maxRateRetries: number;
  private readonly maxWaitSeconds: number;
  private readonly warnDays: number;
  private readonly warn: (message: string) => void;
  private readonly cache: TokenCache | undefined;
  private readonly tokenTimeoutMs: number;
  private readonly userAgent: string;
  private current: TokenState | undefined;
  private cacheLoaded = false;
  private inflight: Promise<TokenState> | undefined;
  private readonly warned = new Set<string>();
  /** How many tokens this client has obtained from the server (exchanges and logins). */
  tokenRequests = 0;

  constructor(o: GatehouseClientOptions) {
    this.baseUrl = normalizeBaseUrl(o.baseUrl);
    this.credentials = validateCredentials(o.credentials);
    this.doFetch = o.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.now = o.now ?? Date.now;
    this.sleep = o.sleep ?? defaultSleep;
    this.refreshBeforeMs = (o.refreshBeforeSeconds ?? 60) * 1000;
    const mc = o.maxConcurrency ?? 'auto';
    if (mc !== 'auto' && (!Number.isInteger(mc) || mc < 1)) throw new TypeError(`maxConcurrency must be a positive integer or 'auto' (got ${mc})`);
    this.autoConcurrency = mc === 'auto';
    this.semaphore = new Semaphore(mc === 'auto' ? 1 : mc);
    this.maxRateRetries = o.rateLimit?.maxRetries ?? 3;
    this.maxWaitSeconds = o.rateLimit?.maxWaitSeconds ?? 300;
    this.warnDays = o.expiryWarningDays ?? 15;
    this.warn = o.onWarning ?? ((m) => console.warn(`gatehouse: ${m}`));
    this.cache = o.tokenCache;
    this.tokenTimeoutMs = o.tokenTimeoutMs ?? 30_000;
    this.userAgent = o.userAgent ?? 'gatehouse-client';
  }

  /** True when the client can get a new token by itself (not a static token). */
  get renewable(): boolean {
    const c = this.credentials;
    return c.kind === 'password' || c.kind === 'client' || (c.kind === 'idpToken' && (c.exchange === true || typeof c.token === 'function'));
  }

  /** The concurrency limit in force (Infinity: none known). */
  get concurrencyLimit(): number {
    return this.semaphore.limit;
  }

  // ---------------------------------------------------------------- tokens

  /**
   * A token valid for at least `minValiditySeconds` (default: the refresh margin), obtained
   * or renewed as needed. Concurrent callers share one request.
   */
  async getToken(opts: { minValiditySeconds?: number; forceRefresh?: boolean } = {}): Promise<string> {
    return (await this.getTokenState(opts)).token;
  }

  async getTokenState(opts: { minValiditySeconds?: number; forceRefresh?: boolean } = {}): Promise<TokenState> {
    if (!this.cacheLoaded && this.cache) {
      this.cacheLoaded = true;
      this.current ??= (await this.cache.load()) ?? undefined;
    }
    const cur = this.current;
    if (!opts.forceRefresh && cur && this.isFresh(cur, opts.minValiditySeconds)) return cur;
    return this.refresh();
  }

  /** Claims of the current token (not verified; for display). */
  async tokenClaims(): Promise<JwtClaims | undefined> {
    return decodeClaims(await this.getToken());
  }

  private isFresh(s: TokenState, minValiditySeconds?: number): boolean {
    if (s.expiresAt === undefined) return true;
    const now = this.now();
    let margin = minValiditySeconds !== undefined ? minValiditySeconds * 1000 : this.refreshBeforeMs;
    if (minValiditySeconds === undefined) {
      const iat = decodeClaims(s.token)?.iat;
      if (typeof iat === 'number') margin = Math.min(margin, Math.max(0, (s.expiresAt - iat * 1000) / 4));
    }
    return now < s.expiresAt - margin;
  }

  /** One renewal at a time: everyone who asks while it runs gets the same promise. */
  private refresh(): Promise<TokenState> {
    this.inflight ??= (async () => {
      try {
        const s = await this.obtain();
        this.current = s;
        if (this.cache && this.renewable) await this.cache.save(s);
        return s;
      } finally {
        this.inflight = undefined;
      }
    })();
    return this.inflight;
  }

  private endpointOpts() {
    return { fetch: this.doFetch, timeoutMs: this.tokenTimeoutMs, userAgent: this.userAgent };
  }

  private async obtain(): Promise<TokenState> {
    const c = this.credentials;
    let issued: IssuedToken;
    switch (c.kind) {
      case 'password':
        this.tokenRequests++;
        issued = await passwordToken(this.baseUrl, c.username, c.password, this.endpointOpts());
        break;
      case 'client':
        this.tokenRequests++;
        issued = await clientToken(this.baseUrl, c.clientId, c.clientSecret, c.level ?? 'user', this.endpointOpts());
        break;
      case 'idpToken': {
        const idp = typeof c.token === 'function' ? await c.token() : c.token;
        if (typeof idp !== 'string' || !idp) throw new GatehouseClientError('the IdP token callback returned no token');
        if (c.exchange) {
          this.tokenRequests++;
          issued = await exchangeToken(this.baseUrl, idp, c.subjectTokenType ?? TOKEN_TYPE.accessToken, this.endpointOpts());
        } else {
          issued = { token: idp, expiresAt: expiryOf(idp) };
          this.assertNotExpired(issued, 'the IdP token');
        }
        break;
      }
      case 'subscriptionToken':
        issued = { token: c.token, expiresAt: expiryOf(c.token) };
        this.assertNotExpired(issued, `subscription token ${decodeClaims(c.token)?.jti ?? ''}`.trim());
        this.warnIfExpiring(decodeClaims(c.token)?.jti ?? 'in use', issued.expiresAt);
        break;
      case 'jwt':
        issued = { token: c.token, expiresAt: expiryOf(c.token) };
        this.assertNotExpired(issued, 'the token');
        if (decodeClaims(c.token)?.auth_method === 'subscription_token') this.warnIfExpiring(decodeClaims(c.token)?.jti ?? 'in use', issued.expiresAt);
        break;
    }
    return { token: issued.token, expiresAt: issued.expiresAt?.getTime() };
  }

  private assertNotExpired(t: IssuedToken, what: string): void {
    if (t.expiresAt && t.expiresAt.getTime() <= this.now()) {
      throw new TokenExpiredError(`${what} expired at ${t.expiresAt.toISOString()}`, t.expiresAt);
    }
  }

  private warnIfExpiring(secretId: string, expiresAt: Date | number | undefined): boolean {
    if (expiresAt === undefined) return false;
    const at = typeof expiresAt === 'number' ? expiresAt : expiresAt.getTime();
    const left = at - this.now();
    if (left <= 0 || left > this.warnDays * DAY_MS) return false;
    if (!this.warned.has(secretId)) {
      this.warned.add(secretId);
      this.warn(`subscription token ${secretId} expires on ${new Date(at).toISOString()} (in ${Math.max(1, Math.ceil(left / DAY_MS))} day(s)); rotate it`);
    }
    return true;
  }

  // ---------------------------------------------------------------- requests

  /** `path` relative to the base URL (or an absolute URL under it). */
  url(path: string): string {
    if (/^https?:\/\//i.test(path)) {
      if (path !== this.baseUrl && !path.startsWith(this.baseUrl + '/') && !path.startsWith(this.baseUrl + '?')) {
        throw new GatehouseClientError(`refusing to send credentials to ${new URL(path).origin}: the client is for ${this.baseUrl}`);
      }
      return path;
    }
    return joinUrl(this.baseUrl, path);
  }

  /**
   * Any call with the credentials added (`Authorization: Bearer <JWT>`). Returns the
   * Response like the platform fetch (no throw on HTTP errors), after at most one retry on
   * 401 and up to `rateLimit.maxRetries` waits on 409/429 with a wait header.
   */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const url = this.url(path);
    const canRepeat = replayable(init.body);
    let state = await this.getTokenState();
    let authRetried = false;
    let waits = 0;
    for (;;) {
      const res = await this.send(url, init, state.token);
      if (res.status === 401 && !authRetried && canRepeat && this.renewable) {
        authRetried = true;
        await res.body?.cancel();
        state = await this.tokenAfter401(state);
        continue;
      }
      const wait = waitSeconds(res);
      if (wait !== undefined && waits < this.maxRateRetries && wait <= this.maxWaitSeconds && canRepeat) {
        waits++;
        await res.body?.cancel();
        await this.sleep(Math.max(wait, 0.1) * 1000, init.signal);
        state = await this.getTokenState();
        continue;
      }
      return res;
    }
  }

  /** A 401 means the token is no longer good: renew, unless another call already did. */
  private async tokenAfter401(used: TokenState): Promise<TokenState> {
    if (this.current && this.current.token !== used.token && this.isFresh(this.current)) return this.current;
    if (this.current?.token === used.token) this.current = undefined;
    return this.refresh();
  }

  private async send(url: string, init: RequestInit, token: string): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${token}`);
    if (!headers.has('x-requested-with')) headers.set('x-requested-with', this.userAgent); // Qualys API v2 wants it
    if (!headers.has('user-agent')) headers.set('user-agent', this.userAgent);
    await this.semaphore.acquire(init.signal);
    try {
      const res = await this.doFetch(url, { ...init, headers });
      this.learnConcurrency(res);
      return res;
    } catch (e) {
      // (a failed probe teaches nothing about the limit: the next call probes again)
      throw networkError(url, e, init.signal);
    } finally {
      this.semaphore.release();
    }
  }

  private learnConcurrency(res: Response): void {
    if (!this.autoConcurrency) return;
    const h = res.headers.get('x-concurrency-limit-limit');
    const n = h === null ? NaN : Number(h);
    if (Number.isInteger(n) && n > 0) {
      this.learnedConcurrency = true;
      if (n !== this.semaphore.limit) this.semaphore.setCapacity(n);
    } else if (!this.learnedConcurrency) {
      this.learnedConcurrency = true;
      this.semaphore.setCapacity(Number.POSITIVE_INFINITY);
    }
  }

  /** `fetch` that throws GatehouseHttpError on a status >= 400 and returns the body text. */
  async request(method: string, path: string, init: Omit<RequestInit, 'method'> = {}): Promise<{ status: number; headers: Headers; text: string }> {
    const res = await this.fetch(path, { ...init, method });
    const text = await res.text();
    if (res.status >= 400) throw new GatehouseHttpError(method, path, res.status, text, res.headers);
    return { status: res.status, headers: res.headers, text };
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const init: RequestInit = { headers: { accept: 'application/json' } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { accept: 'application/json', 'content-type': 'application/json' };
    }
    const { text } = await this.request(method, path, init);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new GatehouseClientError(`${method} ${path} answered something that is not JSON`);
    }
  }

  /** Who the credential is (Gatehouse's `GET /api/v1/me`). */
  me(): Promise<Me> {
    return this.json<Me>('GET', '/api/v1/me');
  }

  // ---------------------------------------------------------------- subscription tokens

  /** `/qas/subscription-token` helpers. Need a manager's credentials. */
  readonly subscriptionTokens = {
    create: async (input: CreateSubscriptionTokenInput): Promise<CreatedSubscriptionToken> => {
      const expiry = input.expiryMinutes;
      if (!Number.isInteger(expiry) || expiry < 1 || expiry > MAX_EXPIRY_MINUTES) {
        throw new RangeError(`expiry ${expiry} is out of range: give whole minutes, 1 to ${MAX_EXPIRY_MINUTES} (one year)`);
      }
      const body: { expiry: number; modules?: string[] } = { expiry };
      if (input.modules) body.modules = input.modules;
      const { text, headers } = await this.request('POST', '/qas/subscription-token', {
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      });
      const token = text.trim();
      const claims = decodeClaims(token);
      const secretId = headers.get('x-secret-id') ?? claims?.jti;
      if (!secretId) throw new GatehouseClientError('the server answered a token without a secret ID');
      return { token, secretId, expiresAt: typeof claims?.exp === 'number' ? new Date(claims.exp * 1000).toISOString() : null };
    },

    list: async (): Promise<SubscriptionTokenList> => {
      const r = await this.json<Omit<SubscriptionTokenList, 'tokens'> & { tokens: Omit<SubscriptionToken, 'expiresSoon'>[] }>('GET', '/qas/subscription-token/list');
      return { ...r, tokens: r.tokens.map((t) => this.annotate(t)) };
    },

    get: async (secretId: string): Promise<SubscriptionToken> => {
      return this.annotate(await this.json<Omit<SubscriptionToken, 'expiresSoon'>>('GET', `/qas/subscription-token/${encodeURIComponent(checkSecretId(secretId))}`));
    },

    /** Deletes the secret: the token is refused on its next use. Returns the server's message. */
    delete: async (secretId: string): Promise<string> => {
      const { text } = await this.request('DELETE', `/qas/subscription-token/token/${encodeURIComponent(checkSecretId(secretId))}`);
      return text.trim();
    },

    /**
     * Replaces a token: creates a new one (by default with the old one's modules and
     * lifetime), then deletes the old one. If the delete fails, throws RotationError, which
     * carries the new token.
     */
    rotate: async (secretId: string, input: Partial<CreateSubscriptionTokenInput> = {}): Promise<CreatedSubscriptionToken & { replacedSecretId: string }> => {
      const old = await this.subscriptionTokens.get(secretId);
      const lifetime = Math.round((Date.parse(old.expiresAt) - Date.parse(old.createdAt)) / 60_000);
      const expiryMinutes = input.expiryMinutes ?? Math.min(MAX_EXPIRY_MINUTES, Math.max(1, lifetime));
      const created = await this.subscriptionTokens.create({ expiryMinutes, modules: input.modules ?? old.modules });
      try {
        await this.subscriptionTokens.delete(old.secretId);
      } catch (e) {
        throw new RotationError(old.secretId, created, e);
      }
      return { ...created, replacedSecretId: old.secretId };
    },
  };

  private annotate(t: Omit<SubscriptionToken, 'expiresSoon'>): SubscriptionToken {
    const expiresSoon = !t.expired && this.warnIfExpiring(t.secretId, Date.parse(t.expiresAt));
    return { ...t, expiresSoon };
  }
}

function checkSecretId(id: string): string {
  const s = String(id ?? '').trim();
  if (!s) throw new TypeError('secret ID is empty');
  return s;
}

function validateCredentials(c: Credentials): Credentials {
  if (!c || typeof c !== 'object') throw new TypeError('credentials are required');
  switch (c.kind) {
    case 'password':
      if (!c.username || !c.password) throw new TypeError('password credentials need a username and a password');
      return c;
    case 'client':
      if (!c.clientId || !c.clientSecret) throw new TypeError('client credentials need a clientId and a clientSecret');
      if (c.level !== undefined && c.level !== 'user' && c.level !== 'subscription') throw new TypeError(`client level must be 'user' or 'subscription' (got '${c.level}')`);
      return c;
    case 'subscriptionToken':
    case 'jwt':
      if (typeof c.token !== 'string' || c.token.trim() === '') throw new TypeError(`${c.kind} credentials need a token`);
      return { ...c, token: c.token.trim() };
    case 'idpToken':
      if (typeof c.token !== 'function' && (typeof c.token !== 'string' || !c.token)) throw new TypeError('idpToken credentials need a token or a function returning one');
      return c;
    default:
      throw new TypeError(`unknown credentials kind '${(c as { kind?: unknown }).kind}'; use password, client, subscriptionToken, idpToken or jwt`);
  }
}
