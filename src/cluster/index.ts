import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Store } from '../store/db.ts';
import type { KeyManager } from '../tokens/keys.ts';
import type { TokenService } from '../tokens/tokens.ts';
import { GatehouseMetrics, verifyFailureReason } from '../ops/metrics.ts';
import { PgChangeListener, type ListenerStatus } from './pg-listener.ts';
import { SharedRedis, type RedisStatus } from './redis.ts';
import { KeyRotationJob } from './key-rotation.ts';

export { SharedRedis } from './redis.ts';
export { PgChangeListener } from './pg-listener.ts';
export { KeyRotationJob } from './key-rotation.ts';

/** The Redis connection of a node, when REDIS_URL is set; built before the login throttle. */
export function createSharedRedis(config: Config, log: Logger): SharedRedis | undefined {
  return config.redisUrl ? new SharedRedis(config.redisUrl, log) : undefined;
}

export interface ClusterParts {
  metrics: GatehouseMetrics;
  listener: PgChangeListener | undefined;
  redis: SharedRedis | undefined;
  keyRotation: KeyRotationJob;
  /** Merged into GET /health/ready (never turns it into a 503: these are degradations). */
  readiness(): { changeFeed: ListenerStatus | { mode: 'poll' }; redis?: RedisStatus; degraded?: string[] };
  start(): void;
  /** After the HTTP server drained: stop jobs, the LISTEN connection and Redis. */
  close(): Promise<void>;
}

/**
 * Scale-out parts of one node (issue 8): the LISTEN/NOTIFY change feed on PostgreSQL, the
 * shared Redis, metrics, scheduled key rotation, and new signing keys picked up from the feed.
 */
export function createClusterParts(
  core: { store: Store; keys: KeyManager; tokens: TokenService },
  config: Config,
  log: Logger,
  clock: () => Date,
  redis: SharedRedis | undefined,
): ClusterParts {
  const { store, keys, tokens } = core;
  const metrics = new GatehouseMetrics(store);
  metrics.addCache('verified_tokens', () => tokens.verifiedCacheSize);
  tokens.setObserver({
    issued: (method) => metrics.tokensIssued.inc({ method }),
    verifyFailed: (err) => metrics.verifyFailures.inc({ reason: verifyFailureReason(err) }),
  });

  const feed = config.cluster ?? { changeFeed: 'listen' };
  const listenUrl = feed.listenUrl ?? config.databaseUrl;
  const listener =
    store.dialect === 'postgres' && listenUrl && feed.changeFeed !== 'poll' ? new PgChangeListener(store, log, { databaseUrl: listenUrl }) : undefined;
  metrics.changeFeedListening.set(0);
  listener?.onState((s) => metrics.changeFeedListening.set(s === 'listening' ? 1 : 0));
  metrics.redisUp.set(redis?.healthy ? 1 : 0);
  redis?.onState((s) => metrics.redisUp.set(s === 'ok' ? 1 : 0));

  // A key rotated on another node (or by the CLI) reaches this one through the change feed.
  const offKeys = store.onChange((c) => {
    if (c.entity === 'signing_key') void keys.reload().catch((err: unknown) => log.error({ err }, 'could not reload signing keys'));
  });
  const keyRotation = new KeyRotationJob(keys, log, clock, config.tokens.rotateEveryDays ?? 0);

  return {
    metrics,
    listener,
    redis,
    keyRotation,
    readiness() {
      const degraded: string[] = [];
      const changeFeed = listener ? listener.status() : ({ mode: 'poll' } as const);
      if (listener && changeFeed.mode === 'listen' && changeFeed.state !== 'listening') degraded.push('change feed: LISTEN down, polling');
      const r = redis?.status();
      if (r && r.status === 'degraded') degraded.push('redis unreachable: per-node limits');
      return { changeFeed, ...(r ? { redis: r } : {}), ...(degraded.length ? { degraded } : {}) };
    },
    start() {
      listener?.start();
      keyRotation.start();
    },
    async close() {
      keyRotation.stop();
      offKeys();
      await listener?.close();
      await redis?.close();
    },
  };
}
