import { BadRequestError, ConflictError, NotFoundError } from '../domain/errors.ts';

/**
 * Numeric error codes of the /qas/subscription-token endpoints (the `errorCode` of the JSON
 * error body). 2003 comes from the spec; the others are Gatehouse's, chosen next to it.
 */
export const QAS_CODES = {
  badRequest: 2000,
  invalidExpiry: 2001,
  limitReached: 2002,
  invalidSecretId: 2003,
  invalidModules: 2004,
  unauthorized: 2005,
  forbidden: 2006,
  internal: 2099,
} as const;

export const MIN_EXPIRY_MINUTES = 1;
export const MAX_EXPIRY_MINUTES = 525600;
export const MAX_LIVE_TOKENS = 10;

export const invalidSecretId = (): NotFoundError => new NotFoundError('Invalid Secret ID', 'invalid_secret_id', { qualysCode: QAS_CODES.invalidSecretId });

export const invalidExpiry = (detail: string): BadRequestError =>
  new BadRequestError(`${detail} 'expiry' must be a whole number of minutes from ${MIN_EXPIRY_MINUTES} to ${MAX_EXPIRY_MINUTES} (one year), e.g. {"expiry": 525600}.`, 'invalid_expiry', { qualysCode: QAS_CODES.invalidExpiry });

export const badRequest = (message: string): BadRequestError => new BadRequestError(message, 'bad_request', { qualysCode: QAS_CODES.badRequest });

export const limitReached = (): ConflictError =>
  new ConflictError(
    `This subscription already has ${MAX_LIVE_TOKENS} active subscription tokens, the maximum. Delete one (DELETE /qas/subscription-token/token/{secretId}) before creating another.`,
    'token_limit_reached',
    { qualysCode: QAS_CODES.limitReached },
  );
