import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import fastifyStatic from '@fastify/static';

export const NOT_BUILT =
  'The Gatehouse web console is not built. Run `npm run build:web` in the Gatehouse directory (npm ci / npm install run it too), then reload this page.\n';

/** web/dist of this package (src/console → ../../web/dist). */
export const DEFAULT_DIST = path.resolve(import.meta.dirname, '../../web/dist');

/**
 * The console's own pages may load only their own scripts and styles, talk only to this
 * origin, and never be framed. Applied to everything under /console.
 */
export const CONSOLE_SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; " +
    "manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
};

/**
 * Serve the built SPA at /console/ (hash routing: every page is index.html). The build is
 * looked up per request, so `npm run build:web` on a running server is picked up; without a
 * build, /console answers 503 saying how to make one.
 */
export async function consoleStatic(app: FastifyInstance, distDir = DEFAULT_DIST): Promise<void> {
  const root = path.resolve(distDir);
  const built = () => existsSync(path.join(root, 'index.html'));

  // In a scope of its own: @fastify/static decorates reply.sendFile, which stays here.
  await app.register(async (scope) => {
    await scope.register(fastifyStatic, { root, serve: false, suppressWarning: true });

    const send = (reply: FastifyReply, file: string) => {
      if (!built()) {
        // Plain text: the reader is a person with a browser.
        return reply.code(503).headers(CONSOLE_SECURITY_HEADERS).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send(NOT_BUILT);
      }
      void reply.headers(CONSOLE_SECURITY_HEADERS);
      const immutable = file.startsWith('assets/');
      return reply.sendFile(file, { cacheControl: false }).header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-store');
    };

    scope.get('/', async (_req, reply) => reply.redirect('/console/', 302));
    scope.get('/console', async (_req, reply) => reply.redirect('/console/', 302));
    scope.get('/console/', async (_req, reply) => send(reply, 'index.html'));
    scope.get<{ Params: { '*': string } }>('/console/*', async (req, reply) => {
      const rel = req.params['*'];
      const file = path.resolve(root, rel);
      // Only real files inside the build; anything else is the app (its own router shows "not found").
      if (file.startsWith(root + path.sep) && existsSync(file) && statSync(file).isFile()) return send(reply, path.relative(root, file));
      if (rel.startsWith('assets/')) {
        void reply.headers(CONSOLE_SECURITY_HEADERS);
        return reply.code(404).type('text/plain; charset=utf-8').send(`No console asset ${rel}`);
      }
      return send(reply, 'index.html');
    });
  });
}
