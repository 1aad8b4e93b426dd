import type { FastifyInstance } from 'fastify';

/**
 * Graceful drain for app.close(). Fastify stops accepting connections and answers new requests
 * on open ones with 503, and waits for in-flight requests; but a keep-alive connection that
 * finishes its request afterwards stays open until the client closes it (Fastify's keep-alive
 * timeout is 72 s), holding the shutdown. While draining, every response therefore says
 * `Connection: close`, and connections that fall idle are closed as they do.
 */
export function installDrain(app: FastifyInstance): { begin(): void; end(): void; readonly draining: boolean } {
  let draining = false;
  let timer: NodeJS.Timeout | undefined;
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (draining) reply.header('connection', 'close');
    done(null, payload);
  });
  return {
    get draining() {
      return draining;
    },
    begin() {
      draining = true;
      timer = setInterval(() => app.server.closeIdleConnections(), 50);
      timer.unref();
    },
    end() {
      clearInterval(timer);
    },
  };
}
