import type { FastifyInstance } from 'fastify';
import { BadRequestError } from '../domain/errors.ts';
import { requireForm } from '../http/body.ts';
import type { Services } from '../app.ts';

/**
 * POST /auth (spec 002/003): form username, password, token=true → 201 and the JWT as
 * plain text. Extra fields (Qualys clients send permissions=true) and a stray
 * Authorization header are ignored: the form fields decide.
 */
export function authRoutes(app: FastifyInstance, s: Services): void {
  app.post('/auth', async (req, reply) => {
    const form = requireForm(req);
    const username = form.username;
    const password = form.password;
    if (!username || password === undefined || password === '') {
      throw new BadRequestError("Form fields 'username' and 'password' are required.", 'missing_parameter');
    }
    if (String(form.token).toLowerCase() !== 'true') {
      throw new BadRequestError("Form field 'token' must be 'true' to get a JWT (token=true).", 'missing_parameter');
    }
    const user = await s.passwords.authenticate(username, password, req.ip, 'password');
    const issued = await s.tokens.issue({ sub: user.id, subscriptionId: user.subscriptionId, authMethod: 'password', username: user.username });
    return reply.code(201).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send(issued.token);
  });
}
