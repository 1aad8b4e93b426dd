import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Store } from '../store/db.ts';
import type { TokenService } from '../tokens/tokens.ts';
import type { AuditLog } from '../audit/audit.ts';
import type { Services } from '../app.ts';
import { AlertService } from '../notify/alerts.ts';
import { outboxRoutes } from '../notify/routes.ts';
import { SubscriptionTokenService } from './service.ts';
import { LastUseTracker, SubscriptionTokenVerifier } from './verifier.ts';
import { subscriptionTokenRoutes } from './routes.ts';

export interface SubscriptionTokenParts {
  subscriptionTokens: SubscriptionTokenService;
  subscriptionTokenVerifier: SubscriptionTokenVerifier;
  alerts: AlertService;
}

/** Build the capability (issue 4) for one server: service, verifier (resolver), alerts. */
export function createSubscriptionTokenParts(
  core: { store: Store; tokens: TokenService; audit: AuditLog },
  config: Config,
  log: Logger,
  clock: () => Date,
): SubscriptionTokenParts & { start(): void; close(): Promise<void> } {
  const lastUse = new LastUseTracker(core.store, clock, log);
  const verifier = new SubscriptionTokenVerifier(core.store, clock, lastUse);
  verifier.register(core.tokens);
  const service = new SubscriptionTokenService(core.store, core.tokens, core.audit, clock, (id) => lastUse.lastSeen(id));
  const alerts = new AlertService(core.store, core.audit, log, clock, { alerts: config.alerts, mail: config.mail, smtpUrl: config.smtpUrl });
  return {
    subscriptionTokens: service,
    subscriptionTokenVerifier: verifier,
    alerts,
    start() {
      lastUse.start();
      alerts.start();
    },
    async close() {
      await alerts.stop();
      await lastUse.close();
      verifier.close();
    },
  };
}

export function subscriptionTokenHttp(app: FastifyInstance, s: Services): void {
  subscriptionTokenRoutes(app, s);
  outboxRoutes(app, s);
}
