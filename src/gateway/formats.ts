import type { FastifyInstance } from 'fastify';
import { registerErrorRenderer, type RenderedError } from '../http/errors.ts';
import type { GatewayErrorFormat } from './config.ts';

/**
 * The gateway's errors in the format each path's clients parse: legacy FO/MSP clients read
 * SIMPLE_RETURN, QPS clients read ServiceResponse, the JSON modules read JSON.
 */

export function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Qualys `<CODE>` values for the gateway's own errors (1960/1965 from Qualys's error table). */
export function simpleReturnCode(err: RenderedError): number {
  if (err.qualysCode !== undefined) return err.qualysCode;
  switch (err.status) {
    case 401:
      return 2000;
    case 403:
      return 2002;
    case 409:
      return 1920;
    case 429:
      return 1966;
    default:
      return err.status >= 500 ? 1999 : 1905;
  }
}

/** ServiceResponse `responseCode` values (QPS). */
export function serviceResponseCode(err: RenderedError): string {
  if (err.code === 'rate_limit_exceeded' || err.code === 'concurrency_limit_exceeded' || err.status === 429) return 'RATE_LIMIT_EXCEEDED';
  switch (err.status) {
    case 400:
      return 'INVALID_REQUEST';
    case 401:
      return 'INVALID_CREDENTIALS';
    case 403:
      return 'UNAUTHORIZED';
    case 404:
      return 'NOT_FOUND';
    default:
      return err.status >= 500 ? 'SERVICE_UNAVAILABLE' : 'INVALID_REQUEST';
  }
}

export function simpleReturnBody(err: RenderedError, now = new Date()): string {
  return (
    '<?xml version="1.0" encoding="UTF-8" ?>\n' +
    '<!DOCTYPE SIMPLE_RETURN SYSTEM "/api/2.0/simple_return.dtd">\n' +
    '<SIMPLE_RETURN>\n  <RESPONSE>\n' +
    `    <DATETIME>${now.toISOString().replace(/\.\d{3}Z$/, 'Z')}</DATETIME>\n` +
    `    <CODE>${simpleReturnCode(err)}</CODE>\n` +
    `    <TEXT>${xmlEscape(err.message)}</TEXT>\n` +
    '  </RESPONSE>\n</SIMPLE_RETURN>\n'
  );
}

export function serviceResponseBody(err: RenderedError): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<ServiceResponse xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n' +
    `  <responseCode>${serviceResponseCode(err)}</responseCode>\n` +
    '  <responseErrorDetails>\n' +
    `    <errorMessage>${xmlEscape(err.message)}</errorMessage>\n` +
    '  </responseErrorDetails>\n</ServiceResponse>\n'
  );
}

export function jsonErrorBody(err: RenderedError): string {
  return JSON.stringify({ errorCode: err.qualysCode ?? err.code, errorMessage: err.message });
}

export const FORMAT_KEYS: Record<GatewayErrorFormat, string> = {
  'simple-return': 'qualys-simple-return',
  'service-response': 'qualys-service-response',
  json: 'json',
};

export function renderBody(format: GatewayErrorFormat, err: RenderedError): { body: string; type: string } {
  if (format === 'simple-return') return { body: simpleReturnBody(err), type: 'text/xml; charset=UTF-8' };
  if (format === 'service-response') return { body: serviceResponseBody(err), type: 'application/xml; charset=UTF-8' };
  return { body: jsonErrorBody(err), type: 'application/json; charset=utf-8' };
}

/** Registers the two XML formats with the shared error handler (route `config.errorFormat`). */
export function registerGatewayFormats(app: FastifyInstance): void {
  for (const f of ['simple-return', 'service-response'] as const) {
    registerErrorRenderer(app, FORMAT_KEYS[f], (err, _req, reply) => {
      const { body, type } = renderBody(f, err);
      void reply.code(err.status).headers(err.headers).type(type).send(body);
    });
  }
}
