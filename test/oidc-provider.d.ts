// Minimal typing for the dev dependency oidc-provider (it ships none); only what the tests use.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown> & {
      extraTokenClaims?: (ctx: unknown, token: unknown) => Record<string, unknown> | undefined | Promise<Record<string, unknown> | undefined>;
    });
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;
  }
}
