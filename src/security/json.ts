import type { FastifyInstance } from 'fastify';
import { BadRequestError } from '../domain/errors.ts';

/** Deepest nesting of arrays/objects a JSON request body may have. Our bodies need 3. */
export const MAX_JSON_DEPTH = 32;
/** Most keys + array items in one JSON request body. */
export const MAX_JSON_NODES = 10_000;

/**
 * Measure nesting depth and element count of a JSON text without building it (strings are
 * skipped, so brackets inside them don't count). Cheap: one pass over the characters. Throws
 * 400 as soon as a limit is passed, before JSON.parse or prototype-poisoning checks recurse
 * into a hostile structure.
 */
export function checkJsonShape(text: string, maxDepth = MAX_JSON_DEPTH, maxNodes = MAX_JSON_NODES): void {
  let depth = 0;
  let nodes = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > maxDepth) throw new BadRequestError(`JSON body is nested deeper than ${maxDepth} levels.`, 'json_too_deep');
      nodes++;
    } else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x2c /* , */ && ++nodes > maxNodes) {
      throw new BadRequestError(`JSON body has more than ${maxNodes} elements.`, 'json_too_large');
    }
  }
}

/** Hostile object keys (prototype poisoning); refused like Fastify's default parser does. */
function reviver(key: string, value: unknown): unknown {
  if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
    throw new BadRequestError(`JSON body uses the forbidden key '${key}'.`, 'invalid_request');
  }
  return value;
}

/**
 * Replaces Fastify's application/json parser: the same 400s for empty or invalid JSON, plus a
 * depth and size check first (Fastify's secure-json-parse bounds neither, and its
 * prototype scan recurses, so a deep enough body overflowed the stack).
 */
export function installJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.length === 0 || text.trim() === '') {
      return done(new BadRequestError("Body cannot be empty when content-type is set to 'application/json'", 'invalid_request'), undefined);
    }
    try {
      checkJsonShape(text);
      done(null, JSON.parse(text, reviver));
    } catch (e) {
      if (e instanceof BadRequestError) return done(e, undefined);
      done(new BadRequestError("Body is not valid JSON but content-type is set to 'application/json'", 'invalid_request'), undefined);
    }
  });
}
