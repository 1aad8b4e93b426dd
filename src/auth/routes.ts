import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { BadRequestError } from '../domain/errors.ts';
import { parseForm, requireForm } from '../http/body.ts';
import { normalizeError } from '../http/errors.ts';
import type { Services } from '../app.ts';

/**
 * POST /auth (spec 002/003): form username, password, token=true → 201 and the JWT as
 * plain text. Extra fields (Qualys clients send permissions=true) and a stray
 * Authorization header are ignored: the form fields decide.
 */
async function passwordLogin(s: Services, form: Record<string, string>, ip: string): Promise<string> {
  const username = form.username;
  const password = form.password;
  if (!username || password === undefined || password === '') {
    throw new BadRequestError("Form fields 'username' and 'password' are required.", 'missing_parameter');
  }
  if (String(form.token).toLowerCase() !== 'true') {
    throw new BadRequestError("Form field 'token' must be 'true' to get a JWT (token=true).", 'missing_parameter');
  }
  const user = await s.passwords.authenticate(username, password, ip, 'password');
  const issued = await s.tokens.issue({ sub: user.id, subscriptionId: user.subscriptionId, authMethod: 'password', username: user.username });
  return issued.token;
}

// >>> perf (issue 9): the login fast path. A login's event-loop work is paid with cold caches
// (each argon2id pass sweeps 19 MiB through them), so the Fastify request lifecycle around it
// (router, hooks, request/reply objects, content-type parser) cost several times what it costs
// hot. Like the gateway's fast path (src/gateway/gateway.ts) this serves the common request —
// `POST /auth`, no query, an urlencoded body of at most 8 KiB with its Content-Length — straight
// from Node's 'request' event, and answers a success itself. Everything else goes to Fastify
// unchanged, and so does every error met here: the error and the body already read are attached
// to the request, the route's preParsing hook hands Fastify that body, and the route throws the
// error, so the one error handler renders, logs and counts it, with nothing done twice.
const READ_BODY = Symbol('gatehouse.loginBody');
const FAST_PATH_ERROR = Symbol('gatehouse.loginError');
type FastLoginRequest = IncomingMessage & { [READ_BODY]?: Buffer; [FAST_PATH_ERROR]?: unknown };
const FAST_BODY_MAX = 8192;
const FORM_TYPE = /^application\/x-www-form-urlencoded[ \t]*(?:;|$)/;

export interface LoginFastPath {
  /** Takes the request (true) or leaves it to Fastify (false). */
  offer(req: IncomingMessage, res: ServerResponse, fallback: (req: IncomingMessage, res: ServerResponse) => void): boolean;
}
// <<< perf

export function authRoutes(app: FastifyInstance, s: Services): LoginFastPath {
  app.post(
    '/auth',
    {
      // perf (issue 9): a body the fast path read is handed to Fastify's parser as a stream again.
      preParsing: (req, _reply, payload, done) => {
        const read = (req.raw as FastLoginRequest)[READ_BODY];
        done(null, read ? Readable.from([read]) : payload);
      },
    },
    async (req, reply) => {
      const met = (req.raw as FastLoginRequest)[FAST_PATH_ERROR];
      if (met !== undefined) throw met; // perf (issue 9): met on the fast path, rendered here
      const token = await passwordLogin(s, requireForm(req), req.ip);
      return reply.code(201).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send(token);
    },
  );

  // >>> perf (issue 9)
  const bodyMax = Math.min(FAST_BODY_MAX, s.config.server.bodyLimitBytes);
  let counted: { inc(): void } | undefined;
  let timed: { observe(v: number): void } | undefined;
  const count = (t0: number) => {
    (counted ??= s.metrics.httpRequests.labels({ method: 'POST', route: '/auth', status: '201' })).inc();
    (timed ??= s.metrics.httpDuration.labels({ method: 'POST', route: '/auth' })).observe((performance.now() - t0) / 1000);
  };

  async function serve(req: FastLoginRequest, res: ServerResponse, fallback: (req: IncomingMessage, res: ServerResponse) => void, length: number): Promise<void> {
    const t0 = performance.now();
    const body = await readBody(req, length);
    if (!body) return; // the client went away mid-body: nobody to answer
    try {
      const token = await passwordLogin(s, parseForm(body.toString('utf8')), req.socket.remoteAddress ?? '');
      if (res.destroyed) return;
      const headers = ['cache-control', 'no-store', 'content-type', 'text/plain; charset=utf-8', 'x-content-type-options', 'nosniff', 'content-length', String(token.length)];
      if ((req.socket as { encrypted?: boolean }).encrypted) headers.push('strict-transport-security', 'max-age=31536000; includeSubDomains');
      res.writeHead(201, headers);
      res.end(token);
      count(t0);
    } catch (e) {
      if (res.headersSent || res.destroyed) {
        // Nobody to answer; a fault is still logged (Fastify would have).
        if (normalizeError(e).status >= 500) s.log.error({ err: e }, 'login failed after the client left');
        return;
      }
      req[READ_BODY] = body;
      req[FAST_PATH_ERROR] = e;
      fallback(req, res);
    }
  }

  return {
    offer(req, res, fallback) {
      if (req.method !== 'POST' || req.url !== '/auth') return false;
      const h = req.headers;
      const type = h['content-type'];
      const length = h['content-length'];
      if (type === undefined || length === undefined || h['transfer-encoding'] !== undefined || h['content-encoding'] !== undefined) return false;
      if (!FORM_TYPE.test(type)) return false;
      const n = length.length <= 5 && /^[0-9]+$/.test(length) ? Number(length) : NaN;
      if (!(n > 0 && n <= bodyMax)) return false;
      void serve(req, res, fallback, n);
      return true;
    },
  };
  // <<< perf
}

/** The whole body (its Content-Length is known and small), or null when the request ended early. */
function readBody(req: IncomingMessage, length: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (c: Buffer) => {
      chunks.push(c);
      got += c.length;
    };
    const onEnd = () => {
      req.off('data', onData).off('error', onFail).off('aborted', onFail);
      resolve(got === length ? (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, got)) : null);
    };
    const onFail = () => {
      req.off('data', onData).off('end', onEnd);
      resolve(null);
    };
    req.on('data', onData).once('end', onEnd).once('error', onFail).once('aborted', onFail);
  });
}
