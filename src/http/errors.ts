import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatehouseError } from '../domain/errors.ts';
import { isStoreUnavailable, STORE_UNAVAILABLE_MESSAGE } from '../security/store-faults.ts'; // harden (issue 10)

/**
 * The one place errors become HTTP responses. A route picks the wire format its clients
 * parse with `config.errorFormat`; renderers for other formats (the gateway's XML) are
 * registered by the part that owns them.
 */
export type ErrorFormat = 'json' | 'oauth' | string;

export interface RenderedError {
  status: number;
  code: string;
  message: string;
  qualysCode: number | undefined;
  headers: Record<string, string>;
}

export type ErrorRenderer = (err: RenderedError, request: FastifyRequest, reply: FastifyReply) => void;

declare module 'fastify' {
  interface FastifyContextConfig {
    errorFormat?: ErrorFormat;
  }
}

const renderers = new WeakMap<FastifyInstance, Map<string, ErrorRenderer>>();

export function registerErrorRenderer(app: FastifyInstance, format: string, r: ErrorRenderer): void {
  renderers.get(app)?.set(format, r);
}

const jsonRenderer: ErrorRenderer = (err, _req, reply) => {
  void reply
    .code(err.status)
    .headers(err.headers)
    .type('application/json; charset=utf-8')
    .send({ errorCode: err.qualysCode ?? err.code, errorMessage: err.message });
};

/** RFC 6749 §5.2 error body for the standard OAuth endpoints. */
const oauthRenderer: ErrorRenderer = (err, _req, reply) => {
  void reply
    .code(err.status)
    .headers({ ...err.headers, 'cache-control': 'no-store' })
    .type('application/json; charset=utf-8')
    .send({ error: err.code, error_description: err.message });
};

function describeValidation(e: FastifyError): string {
  const v = e.validation?.[0];
  if (!v) return e.message;
  const where = (e.validationContext ?? 'request') + (v.instancePath ? v.instancePath.replace(/\//g, '.') : '');
  const params = v.params as Record<string, unknown>;
  if (v.keyword === 'additionalProperties') return `${where}: unknown field '${String(params.additionalProperty)}'`;
  if (v.keyword === 'required') return `${where}: missing required field '${String(params.missingProperty)}'`;
  if (v.keyword === 'enum') return `${where} must be one of ${(params.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join(', ')}`;
  return `${where} ${v.message ?? 'is invalid'}`;
}

/** Map any thrown thing to status + code + a message safe to show (never a stack). */
export function normalizeError(error: unknown): RenderedError {
  if (error instanceof GatehouseError) {
    return { status: error.status, code: error.code, message: error.message, qualysCode: error.qualysCode, headers: error.headers };
  }
  const e = error as FastifyError;
  if (e && e.validation) return { status: 400, code: 'invalid_request', message: describeValidation(e), qualysCode: undefined, headers: {} };
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'body_too_large', message: 'Request body is too large.', qualysCode: undefined, headers: {} };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, code: 'invalid_request', message: e.message, qualysCode: undefined, headers: {} };
    default:
      break;
  }
  if (e instanceof SyntaxError || e?.statusCode === 400) {
    return { status: 400, code: 'invalid_request', message: `Request body is not valid: ${e.message}`, qualysCode: undefined, headers: {} };
  }
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, code: 'invalid_request', message: e.message, qualysCode: undefined, headers: {} };
  }
  // harden (issue 10): the database down is an outage to report (503, retry), not a bug (500).
  if (isStoreUnavailable(error)) {
    return { status: 503, code: 'store_unavailable', message: STORE_UNAVAILABLE_MESSAGE, qualysCode: undefined, headers: { 'retry-after': '5' } };
  }
  return { status: 500, code: 'internal_error', message: 'Internal error; the incident was logged.', qualysCode: undefined, headers: {} };
}

export function installErrorHandling(app: FastifyInstance): void {
  const map = new Map<string, ErrorRenderer>([
    ['json', jsonRenderer],
    ['oauth', oauthRenderer],
  ]);
  renderers.set(app, map);
  app.setErrorHandler((error, request, reply) => {
    const r = normalizeError(error);
    if (r.code === 'store_unavailable') request.log.warn({ err: { message: (error as Error)?.message, code: (error as { code?: unknown })?.code } }, 'database unreachable');
    else if (r.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ status: r.status, code: r.code }, r.message);
    const format = request.routeOptions.config?.errorFormat ?? 'json';
    (map.get(format) ?? jsonRenderer)(r, request, reply);
  });
  app.setNotFoundHandler((request, reply) => {
    jsonRenderer(
      { status: 404, code: 'not_found', message: `No route for ${request.method} ${request.url.split('?')[0]}`, qualysCode: undefined, headers: {} },
      request,
      reply,
    );
  });
}
