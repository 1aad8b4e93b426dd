/**
 * One error hierarchy for the whole service. Routes throw these; src/http/errors.ts maps
 * them to a status and a body in the format the caller's client parses.
 */
export class GatehouseError extends Error {
  readonly status: number;
  /** Stable machine-readable code (snake_case). */
  readonly code: string;
  /** Numeric code where the Qualys surface defines one (e.g. 2003 Invalid Secret ID). */
  readonly qualysCode: number | undefined;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, opts: { qualysCode?: number; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.qualysCode = opts.qualysCode;
    this.headers = opts.headers ?? {};
  }
}

export class BadRequestError extends GatehouseError {
  constructor(message: string, code = 'bad_request', opts: { qualysCode?: number } = {}) {
    super(400, code, message, opts);
  }
}

/** Why a credential was refused; also the `error_description` of a Bearer challenge. */
export class UnauthorizedError extends GatehouseError {
  constructor(message: string, code = 'invalid_credentials', opts: { qualysCode?: number; headers?: Record<string, string> } = {}) {
    super(401, code, message, opts);
  }
}

export class ForbiddenError extends GatehouseError {
  constructor(message: string, code = 'forbidden', opts: { qualysCode?: number } = {}) {
    super(403, code, message, opts);
  }
}

export class NotFoundError extends GatehouseError {
  constructor(message: string, code = 'not_found', opts: { qualysCode?: number } = {}) {
    super(404, code, message, opts);
  }
}

export class ConflictError extends GatehouseError {
  constructor(message: string, code = 'conflict', opts: { qualysCode?: number } = {}) {
    super(409, code, message, opts);
  }
}

export class TooManyRequestsError extends GatehouseError {
  readonly retryAfterSec: number;
  constructor(message: string, retryAfterSec: number, code = 'too_many_requests') {
    super(429, code, message, { headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSec))) } });
    this.retryAfterSec = retryAfterSec;
  }
}

export class ServiceUnavailableError extends GatehouseError {
  constructor(message: string, code = 'service_unavailable') {
    super(503, code, message);
  }
}
