import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import pino, { type Logger } from 'pino';
import type { Config } from './config.ts';
import { Store } from './store/db.ts';
import { MasterKey } from './crypto/master-key.ts';
import { KeyManager } from './tokens/keys.ts';
import { TokenService } from './tokens/tokens.ts';
import { AuditLog } from './audit/audit.ts';
import { LoginThrottle } from './auth/throttle.ts';
import { PasswordAuthenticator } from './auth/password-auth.ts';
import { UserDirectory } from './users/directory.ts';
import { UserService } from './users/service.ts';
import { RequestAuth } from './http/authn.ts';
import { installErrorHandling } from './http/errors.ts';
import { installBodyParsers } from './http/body.ts';
import { metaRoutes } from './http/meta-routes.ts';
import { authRoutes } from './auth/routes.ts';
import { userRoutes } from './users/routes.ts';
import { countSubscriptions } from './store/subscriptions.ts';
// --- clients (issue 3) ---
import { ClientService } from './clients/service.ts';
import { RevocationList } from './oauth/revocation.ts';
import { installClients } from './clients/index.ts';
// --- end clients ---
// --- subscription tokens (issue 4) ---
import { createSubscriptionTokenParts, subscriptionTokenHttp, type SubscriptionTokenParts } from './subscription-tokens/index.ts';
// --- end subscription tokens ---
// >>> idp (issue 6)
import { installIdp } from './idp/install.ts';
// <<< idp
// >>> console (issue 7)
import { installConsole } from './console/index.ts';
// <<< console
// >>> scaleout (issue 8)
import { createClusterParts, createSharedRedis, type ClusterParts, type SharedRedis } from './cluster/index.ts';
import type { LimiterFactory } from './auth/throttle.ts';
import type { GatehouseMetrics } from './ops/metrics.ts';
import { installDrain } from './ops/drain.ts';
// <<< scaleout
import { installTransportHeaders } from './security/headers.ts'; // harden (issue 10)
// --- gateway (issue 5) ---
import { gatewayRoutes } from './gateway/gateway.ts';
// --- end gateway ---

/** Paths that may hold secrets in logs; pino replaces them with [Redacted]. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers.clientsecret',
  'req.headers["client-secret"]',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  'password',
  '*.password',
  'clientSecret',
  '*.clientSecret',
  'token',
  '*.token',
];

export function createLogger(config: Config, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level: config.server.logLevel, redact: { paths: REDACT_PATHS, censor: '[Redacted]' } },
    destination ?? process.stdout,
  );
}

/** Everything the routes need; built once per server by createGatehouse. */
export interface Services extends SubscriptionTokenParts {
  config: Config;
  log: Logger;
  store: Store;
  keys: KeyManager;
  tokens: TokenService;
  audit: AuditLog;
  throttle: LoginThrottle;
  passwords: PasswordAuthenticator;
  userDirectory: UserDirectory;
  users: UserService;
  requestAuth: RequestAuth;
  clients: ClientService; // issue 3
  revocations: RevocationList; // issue 3
  /** The discovery document; capabilities add their endpoints to `discoveryExtras`. */
  discovery(): Record<string, unknown>;
  discoveryExtras: Record<string, unknown>;
  readinessDetail(): Record<string, unknown>;
  /**
   * Grant handlers of the standard token endpoint (POST /oauth2/token), by grant_type:
   * client_credentials (clients), token exchange (IdP). Each authenticates what it needs.
   */
  oauthGrants: Map<string, OAuthGrantHandler>;
  // >>> scaleout (issue 8)
  /** This node's Redis (REDIS_URL), shared by every limiter; undefined: limits in memory. */
  redis: SharedRedis | undefined;
  /** This node's Prometheus registry and metric families (GET /metrics). */
  metrics: GatehouseMetrics;
  cluster: ClusterParts;
  // <<< scaleout
}

export interface OAuthTokenResponse {
  access_token: string;
  token_type: 'Bearer' | 'N_A';
  expires_in: number;
  issued_token_type?: string;
  scope?: string;
}

export type OAuthGrantHandler = (form: Record<string, string>, req: FastifyRequest) => Promise<OAuthTokenResponse>;

export interface BootstrapResult {
  created: boolean;
  username?: string;
  /** Only when generated; printed once at first start. */
  generatedPassword?: string;
  subscriptionId?: string;
}

export interface Gatehouse {
  app: FastifyInstance;
  services: Services;
  bootstrap: BootstrapResult;
  /** Start listening; resolves to the base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface CreateOptions {
  logger?: Logger;
  /** Skip creating the first subscription/manager (the CLI's own commands). */
  bootstrap?: boolean;
  /** Wall clock for expiry checks, limits and alerts (tests drive time with it). Default: real time. */
  clock?: () => Date;
}

/** Open the store, migrate, load keys: the parts the CLI needs without an HTTP server. */
export async function createCore(config: Config, log: Logger, opts: { limiterFactory?: LimiterFactory } = {}) {
  const store = new Store({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, stateStalenessSeconds: config.tokens.stateStalenessSeconds }); // harden: staleness
  try {
    await store.migrate();
  } catch (e) {
    await store.close().catch(() => {});
    throw e;
  }
  const master = MasterKey.load({ masterKey: config.masterKey, dataDir: config.dataDir });
  const keys = new KeyManager(store, master, { overlapSeconds: config.tokens.keyOverlapSeconds });
  await keys.init();
  const tokens = new TokenService(keys, {
    issuer: config.publicUrl,
    audience: config.tokens.audience,
    ttlSeconds: config.tokens.ttlSeconds,
    clockSkewSeconds: config.tokens.clockSkewSeconds,
  });
  const audit = new AuditLog(store, log);
  const throttle = new LoginThrottle(config.auth, opts.limiterFactory); // scaleout: Redis when REDIS_URL
  const userDirectory = new UserDirectory(store);
  userDirectory.registerResolvers(tokens);
  const passwords = new PasswordAuthenticator(store, throttle, audit, userDirectory);
  const users = new UserService(store, audit, throttle);
  // --- clients (issue 3): client tokens' resolvers, and the revocation list every verify() checks ---
  const revocations = new RevocationList(store, audit);
  await revocations.load();
  tokens.addCheck(revocations.check);
  const clients = new ClientService(store, audit, userDirectory, tokens);
  clients.registerResolvers(tokens);
  // --- end clients ---
  return { store, master, keys, tokens, audit, throttle, userDirectory, passwords, users, clients, revocations };
}

/** The composition root: one call builds one independent server (no global state). */
export async function createGatehouse(config: Config, opts: CreateOptions = {}): Promise<Gatehouse> {
  const log = opts.logger ?? createLogger(config);
  // >>> scaleout (issue 8): one Redis connection per node, owned here
  const redis = createSharedRedis(config, log);
  let core: Awaited<ReturnType<typeof createCore>>;
  try {
    core = await createCore(config, log, redis ? { limiterFactory: redis.limiterFactory() } : {});
  } catch (e) {
    await redis?.close();
    throw e;
  }
  const cluster = createClusterParts(core, config, log, opts.clock ?? (() => new Date()), redis);
  // <<< scaleout
  const requestAuth = new RequestAuth(core.tokens, core.passwords);
  // --- subscription tokens (issue 4) ---
  const subTokens = createSubscriptionTokenParts(core, config, log, opts.clock ?? (() => new Date()));
  // --- end subscription tokens ---
  const discoveryExtras: Record<string, unknown> = {};
  const services: Services = {
    config,
    log,
    ...core,
    requestAuth,
    subscriptionTokens: subTokens.subscriptionTokens,
    subscriptionTokenVerifier: subTokens.subscriptionTokenVerifier,
    alerts: subTokens.alerts,
    discoveryExtras,
    discovery: () => ({
      issuer: config.publicUrl,
      jwks_uri: `${config.publicUrl}/.well-known/jwks.json`,
      response_types_supported: ['token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['ES256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      ...discoveryExtras,
    }),
    readinessDetail: () => cluster.readiness(), // scaleout (issue 8)
    oauthGrants: new Map(),
    redis, // scaleout (issue 8)
    metrics: cluster.metrics,
    cluster,
  };

  const bootstrap: BootstrapResult = { created: false };
  if (opts.bootstrap !== false && (await countSubscriptions(core.store.db)) === 0) {
    const password = config.adminPassword ?? randomBytes(12).toString('base64url');
    try {
      const r = await core.users.createSubscription('Default subscription', { username: config.adminUsername, password });
      Object.assign(bootstrap, { created: true, username: config.adminUsername, subscriptionId: r.subscription.id });
      if (!config.adminPassword) bootstrap.generatedPassword = password;
    } catch (e) {
      // scaleout (issue 8): several nodes starting at once on an empty database; one wins.
      if ((await countSubscriptions(core.store.db)) === 0) throw e;
    }
  }

  const app = Fastify({
    loggerInstance: log,
    bodyLimit: config.server.bodyLimitBytes,
    trustProxy: config.server.trustProxy as boolean | string,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 256 },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
    ...(config.tlsCert && config.tlsKey
      ? { https: { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) } }
      : {}),
  }) as unknown as FastifyInstance;
  app.decorateRequest('principal', null);
  installErrorHandling(app);
  installBodyParsers(app);
  installTransportHeaders(app); // harden (issue 10): HSTS on HTTPS, CORS closed
  if (config.metrics?.enabled !== false) cluster.metrics.install(app, { token: config.metrics?.token }); // scaleout (issue 8)
  const drain = installDrain(app); // scaleout (issue 8): graceful shutdown
  metaRoutes(app, services);
  const loginFast = authRoutes(app, services);
  userRoutes(app, services);
  installClients(app, services); // issue 3
  subscriptionTokenHttp(app, services); // issue 4
  // >>> idp (issue 6): trusted external IdPs; POST /oauth2/token dispatcher (see its file)
  try {
    await installIdp(app, services);
    await installConsole(app, services, opts.clock ?? (() => new Date())); // console (issue 7): sessions, /api/v1/session, /console
  } catch (e) {
    await app.close().catch(() => {});
    core.userDirectory.cache.close();
    await cluster.close().catch(() => {}); // scaleout (issue 8)
    await core.store.close().catch(() => {});
    throw e;
  }
  // <<< idp
  const gateway = gatewayRoutes(app, services); // issue 5: module routes, /gateway/decide, GET /api/v1/routes
  // perf (issue 9): logins and module calls are offered to their fast paths before Fastify (see
  // src/auth/routes.ts, src/gateway/gateway.ts). Not behind a trusted proxy (Fastify interprets X-Forwarded-*), nor
  // while draining (Fastify answers 503 / Connection: close then).
  if (!config.server.trustProxy) {
    const server = app.server;
    const [fastifyHandler, ...others] = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
    if (fastifyHandler && others.length === 0) {
      server.removeListener('request', fastifyHandler);
      server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        if (drain.draining || !(loginFast.offer(req, res, fastifyHandler) || gateway.fastPath(req, res, fastifyHandler))) fastifyHandler(req, res);
      });
    }
  }

  core.store.startChangeFollower();
  subTokens.start(); // issue 4: last-use flusher, alert scheduler
  cluster.start(); // scaleout (issue 8): LISTEN connection, scheduled key rotation
  const keyTimer = setInterval(() => void core.keys.refresh(0).catch(() => {}), 60_000);
  keyTimer.unref();

  let closed = false;
  return {
    app,
    services,
    bootstrap,
    async listen() {
      await app.listen({ port: config.port, host: config.host });
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.port;
      const scheme = config.tlsCert ? 'https' : 'http';
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      return `${scheme}://${host}:${port}`;
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(keyTimer);
      // Stop accepting, answer 503 to new requests on open connections, finish in-flight ones.
      drain.begin(); // scaleout (issue 8)
      await app.close();
      drain.end();
      await subTokens.close(); // issue 4
      core.userDirectory.cache.close();
      core.clients.close(); // issue 3
      core.revocations.close(); // issue 3
      await cluster.close(); // scaleout (issue 8): LISTEN connection, Redis
      await core.store.close();
    },
  };
}
