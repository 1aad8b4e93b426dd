/**
 * The token endpoints as plain functions: each takes a base URL and returns a token. They
 * work against Gatehouse and against any Qualys-compatible gateway (the Qualys endpoints);
 * `/oauth2/token` is Gatehouse's standard endpoint.
 */
import { GatehouseHttpError, GatehouseNetworkError } from './errors.ts';
import { decodeClaims } from './jwt.ts';

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface EndpointOptions {
  fetch?: FetchLike;
  signal?: AbortSignal;
  /** Abort a token request that takes longer than this (default 30 s). */
  timeoutMs?: number;
  userAgent?: string;
}

export interface IssuedToken {
  /** The JWT (or, for IdP tokens used as they are, the IdP's token). */
  token: string;
  /** From the token's `exp` claim (or the endpoint's `expires_in`); undefined when unknown. */
  expiresAt: Date | undefined;
}

export const TOKEN_TYPE = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  idToken: 'urn:ietf:params:oauth:token-type:id_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
} as const;

/** `https://host/prefix/` + `/auth` → `https://host/prefix/auth`. */
export function joinUrl(baseUrl: string, path: string): string {
  return baseUrl.replace(/\/+$/, '') + (path.startsWith('/') ? path : `/${path}`);
}

export function normalizeBaseUrl(baseUrl: string): string {
  let u: URL;
  try {
    u = new URL(baseUrl);
  } catch {
    throw new TypeError(`base URL '${baseUrl}' is not a URL; use e.g. https://gatehouse.example.com`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`base URL '${baseUrl}' must start with http:// or https://`);
  if (u.search || u.hash) throw new TypeError(`base URL '${baseUrl}' must not have a query or fragment`);
  if (u.username || u.password) throw new TypeError('base URL must not contain credentials; pass them as credentials');
  return u.toString().replace(/\/+$/, '');
}

export function expiryOf(token: string, expiresInSeconds?: number, now = Date.now()): Date | undefined {
  const exp = decodeClaims(token)?.exp;
  if (typeof exp === 'number') return new Date(exp * 1000);
  if (typeof expiresInSeconds === 'number' && expiresInSeconds > 0) return new Date(now + expiresInSeconds * 1000);
  return undefined;
}

/** POST with a timeout; network failures become GatehouseNetworkError, statuses >= 400 GatehouseHttpError. */
export async function postToken(baseUrl: string, path: string, headers: Record<string, string>, body: string, o: EndpointOptions): Promise<{ text: string; res: Response }> {
  const doFetch = o.fetch ?? globalThis.fetch;
  const timeout = AbortSignal.timeout(o.timeoutMs ?? 30_000);
  const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
  const url = joinUrl(baseUrl, path);
  let res: Response;
  try {
    res = await doFetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: '*/*', ...(o.userAgent ? { 'user-agent': o.userAgent } : {}), ...headers },
      body,
      signal,
    });
  } catch (e) {
    throw networkError(url, e, o.signal);
  }
  const text = await res.text();
  if (res.status >= 400) throw new GatehouseHttpError('POST', path, res.status, text, res.headers);
  return { text, res };
}

export function networkError(url: string, e: unknown, callerSignal?: AbortSignal | null): unknown {
  if (callerSignal?.aborted) return e; // the caller's own abort: rethrow as is
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError') return new GatehouseNetworkError(`${new URL(url).origin} did not answer in time`, { cause: e });
  const why = err?.cause?.code ?? err?.cause?.message ?? err?.message ?? String(e);
  return new GatehouseNetworkError(`cannot reach ${new URL(url).origin}: ${why}`, { cause: e });
}

/** `POST /auth` (form `username`, `password`, `token=true`) → the JWT (Qualys: valid 4 hours). */
export async function passwordToken(baseUrl: string, username: string, password: string, o: EndpointOptions = {}): Promise<IssuedToken> {
  if (!username) throw new TypeError('username is empty');
  if (!password) throw new TypeError('password is empty');
  const { text } = await postToken(baseUrl, '/auth', {}, new URLSearchParams({ username, password, token: 'true' }).toString(), o);
  const token = text.trim();
  return { token, expiresAt: expiryOf(token) };
}

/**
 * `POST /auth/oidc` (user-level client) or `/auth/oauth` (subscription-level client), with
 * the `clientId` and `clientSecret` request headers → the JWT.
 */
export async function clientToken(
  baseUrl: string,
  clientId: string,
  clientSecret: string,
  level: 'user' | 'subscription' = 'user',
  o: EndpointOptions = {},
): Promise<IssuedToken> {
  if (!clientId) throw new TypeError('clientId is empty');
  if (!clientSecret) throw new TypeError('clientSecret is empty');
  const { text } = await postToken(baseUrl, level === 'subscription' ? '/auth/oauth' : '/auth/oidc', { clientId, clientSecret }, '', o);
  const token = text.trim();
  return { token, expiresAt: expiryOf(token) };
}

interface OAuthTokenResponse {
  access_token: string;
  token_type: string;
  expires_in?: number;
  scope?: string;
  issued_token_type?: string;
}

function oauthResponse(text: string, path: string): OAuthTokenResponse {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    throw new TypeError(`${path} answered something that is not JSON`);
  }
  if (!j || typeof j !== 'object' || typeof (j as OAuthTokenResponse).access_token !== 'string') throw new TypeError(`${path} answered without an access_token`);
  return j as OAuthTokenResponse;
}

/** `POST /oauth2/token`, `grant_type=client_credentials` (client_secret_basic), optional `scope` (module names). */
export async function clientCredentialsToken(
  baseUrl: string,
  clientId: string,
  clientSecret: string,
  scope?: string[],
  o: EndpointOptions = {},
): Promise<IssuedToken & { scope: string | undefined }> {
  const basic = btoa(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`);
  const form = new URLSearchParams({ grant_type: 'client_credentials', ...(scope?.length ? { scope: scope.join(' ') } : {}) });
  const { text } = await postToken(baseUrl, '/oauth2/token', { authorization: `Basic ${basic}` }, form.toString(), o);
  const r = oauthResponse(text, '/oauth2/token');
  return { token: r.access_token, expiresAt: expiryOf(r.access_token, r.expires_in), scope: r.scope };
}

/** RFC 8693 token exchange at `POST /oauth2/token`: an IdP token in, a Gatehouse JWT out. */
export async function exchangeToken(
  baseUrl: string,
  subjectToken: string,
  subjectTokenType: string = TOKEN_TYPE.accessToken,
  o: EndpointOptions = {},
): Promise<IssuedToken> {
  if (!subjectToken) throw new TypeError('the token to exchange is empty');
  const form = new URLSearchParams({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: subjectToken,
    subject_token_type: subjectTokenType,
    requested_token_type: TOKEN_TYPE.accessToken,
  });
  const { text } = await postToken(baseUrl, '/oauth2/token', {}, form.toString(), o);
  const r = oauthResponse(text, '/oauth2/token');
  return { token: r.access_token, expiresAt: expiryOf(r.access_token, r.expires_in) };
}

/** RFC 7662 introspection (authenticated by a client): what the server thinks of a token now. */
export async function introspectToken(baseUrl: string, client: { clientId: string; clientSecret: string }, token: string, o: EndpointOptions = {}): Promise<{ active: boolean; [k: string]: unknown }> {
  const basic = btoa(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`);
  const { text } = await postToken(baseUrl, '/oauth2/introspect', { authorization: `Basic ${basic}` }, new URLSearchParams({ token }).toString(), o);
  return JSON.parse(text) as { active: boolean };
}

/** RFC 7009 revocation of one of the client's own tokens. */
export async function revokeToken(baseUrl: string, client: { clientId: string; clientSecret: string }, token: string, o: EndpointOptions = {}): Promise<void> {
  const basic = btoa(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`);
  await postToken(baseUrl, '/oauth2/revoke', { authorization: `Basic ${basic}` }, new URLSearchParams({ token }).toString(), o);
}
