import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { withCore, out, resolveSubscription } from '../cli/admin.ts';
import { BadRequestError, NotFoundError } from '../domain/errors.ts';
import { IDP_ALGORITHMS } from './config-schema.ts';
import { getIdp, listIdps, type TrustedIdp } from './idp-store.ts';
import { IdpService } from './service.ts';

const OPERATOR = { actorType: 'operator', actorId: null, actorName: null, sourceIp: null } as const;


const list = (v: string | undefined) => (v ? v.split(',').map((x) => x.trim()).filter(Boolean) : undefined);


function line(i: TrustedIdp): string {
  return `${i.id}  ${i.name}  ${i.issuer}  aud:${i.audiences.join(',')}  alg:${i.algorithms.join(',')}  user:${i.userClaim ?? 'preferred_username|email'}` +
    `${i.modulesClaim ? `  modules:${i.modulesClaim}` : ''}  bearer:${i.allowApiTokens ? 'y' : 'n'} exchange:${i.allowExchange ? 'y' : 'n'}` +
    `${i.source === 'config' ? '  (config file)' : ''}`;
}

/** `gatehouse idp add|list|remove`: operator commands on the local store (like `user`). */
export function registerIdpCli(program: Command): void {
  const idp = program.command('idp').description('trusted external identity providers (token issuers) per subscription; see docs/idp.md');
  idp
    .command('add')
    .description('trust an identity provider; its JWKS URL is discovered from <issuer>/.well-known/openid-configuration unless given')
    .requiredOption('--issuer <url>', "the IdP's issuer URL, exactly as in its tokens' iss claim")
    .requiredOption('--audience <list>', "comma-separated accepted 'aud' values")
    .option('--jwks-uri <url>', 'JWKS URL (skips discovery)')
    .option('--algorithms <list>', `comma-separated allowed algorithms (${IDP_ALGORITHMS.join(',')})`, 'RS256,ES256')
    .option('--user-claim <claim>', 'claim naming the Gatehouse user (default: preferred_username, then email)')
    .option('--modules-claim <claim>', 'claim carrying module permissions, intersected with the user\'s own')
    .option('--name <name>', 'display name (default: the issuer host)')
    .option('--no-api-tokens', 'do not accept the IdP\'s tokens directly as Bearer; token exchange only')
    .option('--no-exchange', 'do not accept the IdP\'s tokens in token exchange')
    .option('--cap-to-idp-expiry', 'exchanged tokens expire no later than the IdP token', false)
    .option('--subscription <id|name>', 'subscription (needed when there are several)')
    .action(async function (this: Command, o: {
      issuer: string; audience: string; jwksUri?: string; algorithms: string; userClaim?: string; modulesClaim?: string; name?: string;
      apiTokens: boolean; exchange: boolean; capToIdpExpiry: boolean; subscription?: string;
    }) {
      const config = loadConfig();
      const created = await withCore(async (core) => {
        const svc = new IdpService(core.store, core.audit, config.idps, config.publicUrl);
        return svc.createIn(await resolveSubscription(core, o.subscription), {
          issuer: o.issuer, audiences: list(o.audience) ?? [], jwksUri: o.jwksUri ?? null, algorithms: list(o.algorithms),
          userClaim: o.userClaim ?? null, modulesClaim: o.modulesClaim ?? null, name: o.name,
          allowApiTokens: o.apiTokens, allowExchange: o.exchange, capToSubjectExpiry: o.capToIdpExpiry,
        }, OPERATOR, 'api');
      });
      out(this, created, `trusted ${line(created)}` + (created.discoveredJwksUri ? `\nJWKS (discovered): ${created.discoveredJwksUri}` : ''));
    });
  idp
    .command('list')
    .description('list trusted identity providers')
    .option('--subscription <id|name>', 'only this subscription')
    .action(async function (this: Command, o: { subscription?: string }) {
      const all = await withCore(async (core) => listIdps(core.store.db, o.subscription ? await resolveSubscription(core, o.subscription) : undefined));
      out(this, all, all.map(line).join('\n') || '(none)');
    });
  idp
    .command('remove <id|issuer>')
    .description('stop trusting an identity provider (its tokens, and Gatehouse tokens exchanged from them, stop working)')
    .option('--subscription <id|name>', 'subscription, when removing by issuer and several subscriptions trust it')
    .action(async function (this: Command, which: string, o: { subscription?: string }) {
      const config = loadConfig();
      const removed = await withCore(async (core) => {
        let target = await getIdp(core.store.db, which);
        if (!target) {
          const sub = o.subscription ? await resolveSubscription(core, o.subscription) : undefined;
          const matches = (await listIdps(core.store.db, sub)).filter((i) => i.issuer === which);
          if (matches.length > 1) throw new BadRequestError(`${matches.length} subscriptions trust '${which}'; say which with --subscription`);
          target = matches[0];
        }
        if (!target) throw new NotFoundError(`no trusted identity provider '${which}' (see: gatehouse idp list)`);
        if (target.source === 'config') throw new BadRequestError(`'${target.name}' comes from the config file (idps section); remove it there`);
        await new IdpService(core.store, core.audit, config.idps, config.publicUrl).removeAny(target, OPERATOR);
        return target;
      });
      out(this, { removed: removed.id }, `removed ${removed.name} (${removed.id})`);
    });
}
