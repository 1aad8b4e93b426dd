import type { FastifyInstance } from 'fastify';
import { expectJson, principalOf } from '../http/authn.ts';
import type { Services } from '../app.ts';
import type { IdpInput, IdpPatch, IdpService } from './service.ts';

const str = (max: number) => ({ type: 'string', minLength: 1, maxLength: max }) as const;
const nullableStr = (max: number) => ({ type: ['string', 'null'], minLength: 1, maxLength: max }) as const;
const fields = {
  name: str(100),
  issuer: str(500),
  jwksUri: nullableStr(1000),
  audiences: { type: 'array', items: str(500), minItems: 1, maxItems: 20 },
  algorithms: { type: 'array', items: { type: 'string', maxLength: 20 }, minItems: 1, maxItems: 10 },
  userClaim: nullableStr(200),
  modulesClaim: nullableStr(200),
  allowApiTokens: { type: 'boolean' },
  allowExchange: { type: 'boolean' },
  capToSubjectExpiry: { type: 'boolean' },
} as const;
const idParam = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] } as const;

/** Management API for a subscription's trusted identity providers (managers only). */
export function idpRoutes(app: FastifyInstance, s: Services, idps: IdpService): void {
  const auth = { preHandler: s.requestAuth.required };

  app.get('/api/v1/idps', auth, async (req) => ({ idps: await idps.list(principalOf(req)) }));

  app.post<{ Body: IdpInput }>(
    '/api/v1/idps',
    {
      ...auth,
      preValidation: expectJson,
      schema: { body: { type: 'object', additionalProperties: false, required: ['issuer', 'audiences'], properties: fields } },
    },
    async (req, reply) => reply.code(201).send(await idps.create(principalOf(req), req.body, { ip: req.ip })),
  );

  app.get<{ Params: { id: string } }>('/api/v1/idps/:id', { ...auth, schema: { params: idParam } }, async (req) =>
    idps.get(principalOf(req), req.params.id),
  );

  app.patch<{ Params: { id: string }; Body: IdpPatch }>(
    '/api/v1/idps/:id',
    {
      ...auth,
      preValidation: expectJson,
      schema: { params: idParam, body: { type: 'object', additionalProperties: false, minProperties: 1, properties: fields } },
    },
    async (req) => idps.update(principalOf(req), req.params.id, req.body, { ip: req.ip }),
  );

  app.delete<{ Params: { id: string } }>('/api/v1/idps/:id', { ...auth, schema: { params: idParam } }, async (req, reply) => {
    await idps.remove(principalOf(req), req.params.id, { ip: req.ip });
    return reply.code(204).send();
  });
}
