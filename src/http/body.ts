import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequestError } from '../domain/errors.ts';
import { installJsonParser } from '../security/json.ts'; // harden (issue 10)

const MAX_FORM_FIELDS = 100;

/**
 * Body parsers: urlencoded forms (URLSearchParams, capped field count) and a catch-all that
 * keeps other bodies raw, so each route can say precisely which content type it expects
 * instead of a generic 415.
 */
export function installBodyParsers(app: FastifyInstance): void {
  installJsonParser(app); // harden (issue 10): bounded depth and size
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    let form: Record<string, string>;
    try {
      form = parseForm(body as string);
    } catch (e) {
      return done(e as Error, undefined);
    }
    done(null, form);
  });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, { __raw: body }));
}

/** An urlencoded form: the first value of each field wins; more than MAX_FORM_FIELDS fields is a 400. */
export function parseForm(body: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  let n = 0;
  for (const [k, v] of new URLSearchParams(body)) {
    if (++n > MAX_FORM_FIELDS) throw new BadRequestError(`form has more than ${MAX_FORM_FIELDS} fields`);
    if (!(k in out)) out[k] = v;
  }
  return out;
}

export function mediaType(req: FastifyRequest): string {
  return String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

export function requireForm(req: FastifyRequest): Record<string, string> {
  if (mediaType(req) !== 'application/x-www-form-urlencoded') {
    throw new BadRequestError(
      `Content-Type must be application/x-www-form-urlencoded (got ${req.headers['content-type'] ? `'${mediaType(req)}'` : 'none'}).`,
      'invalid_content_type',
    );
  }
  return (req.body ?? {}) as Record<string, string>;
}

export function requireJson(req: FastifyRequest): void {
  const t = mediaType(req);
  if (t !== 'application/json' && !t.endsWith('+json')) {
    throw new BadRequestError(`Content-Type must be application/json (got ${t ? `'${t}'` : 'none'}).`, 'invalid_content_type');
  }
}
