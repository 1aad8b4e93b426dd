/**
 * Errors thrown by the client SDK. `client.fetch` never throws for an HTTP status (it returns
 * the Response, like the platform fetch); the typed helpers throw `GatehouseHttpError`.
 * No error message ever contains a password, client secret or token.
 */
export class GatehouseClientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The server answered with an HTTP status >= 400. */
export class GatehouseHttpError extends GatehouseClientError {
  readonly status: number;
  readonly method: string;
  readonly path: string;
  /** Numeric Qualys-style `errorCode`, when the body has one (e.g. 2003 Invalid Secret ID). */
  readonly errorCode: number | undefined;
  /** OAuth 2.0 `error` (e.g. `invalid_client`), when the body has one. */
  readonly oauthError: string | undefined;
  /** What the server said, extracted from JSON, XML or text. */
  readonly serverMessage: string;
  readonly body: string;
  readonly headers: Headers;
  constructor(method: string, path: string, status: number, body: string, headers: Headers) {
    const parsed = parseErrorBody(body);
    const what = parsed.message || `HTTP ${status}`;
    super(`${method} ${path} failed: ${status}${what ? ` ${what}` : ''}${parsed.errorCode !== undefined ? ` (errorCode ${parsed.errorCode})` : ''}`);
    this.status = status;
    this.method = method;
    this.path = path;
    this.errorCode = parsed.errorCode;
    this.oauthError = parsed.oauthError;
    this.serverMessage = parsed.message;
    this.body = body;
    this.headers = headers;
  }
}

/** The server could not be reached (DNS, connection refused, TLS, timeout). */
export class GatehouseNetworkError extends GatehouseClientError {}

/** A credential that cannot be renewed (subscription token, stored JWT) has expired. */
export class TokenExpiredError extends GatehouseClientError {
  readonly expiredAt: Date;
  constructor(message: string, expiredAt: Date) {
    super(message);
    this.expiredAt = expiredAt;
  }
}

/**
 * Rotation created the new subscription token but could not delete the old one. The new
 * token is in `created` (it is shown only once, so it must not be lost).
 */
export class RotationError extends GatehouseClientError {
  readonly created: { token: string; secretId: string; expiresAt: string | null };
  readonly oldSecretId: string;
  constructor(oldSecretId: string, created: RotationError['created'], cause: unknown) {
    super(`created subscription token ${created.secretId} but could not delete the old one (${oldSecretId}): ${(cause as Error)?.message ?? String(cause)}; delete it yourself`, { cause });
    this.created = created;
    this.oldSecretId = oldSecretId;
  }
}

/** Pulls the human message and codes out of the error bodies Gatehouse and Qualys send. */
export function parseErrorBody(body: string): { message: string; errorCode?: number; oauthError?: string } {
  const text = body.trim();
  if (!text) return { message: '' };
  if (text.startsWith('{')) {
    try {
      const j = JSON.parse(text) as Record<string, unknown>;
      const errorCode = typeof j.errorCode === 'number' ? j.errorCode : undefined;
      if (typeof j.errorMessage === 'string') return { message: j.errorMessage, ...(errorCode !== undefined ? { errorCode } : {}) };
      if (typeof j.error === 'string') {
        return { message: typeof j.error_description === 'string' ? `${j.error}: ${j.error_description}` : j.error, oauthError: j.error };
      }
      if (typeof j.message === 'string') return { message: j.message };
    } catch {
      /* not JSON after all */
    }
  }
  if (text.startsWith('<')) {
    // SIMPLE_RETURN <TEXT>, ServiceResponse <errorMessage>
    const m = /<(TEXT|errorMessage)>([\s\S]*?)<\/\1>/.exec(text);
    const code = /<(CODE|responseCode|errorCode)>(\d+)<\/\1>/.exec(text);
    if (m) return { message: m[2]!.trim(), ...(code ? { errorCode: Number(code[2]) } : {}) };
  }
  return { message: text.length > 300 ? `${text.slice(0, 300)}…` : text };
}
