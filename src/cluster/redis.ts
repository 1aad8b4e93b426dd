import type { Redis } from 'ioredis';
import { lazyRequire } from '../lazy-require.ts';

const ioredis = lazyRequire<typeof import('ioredis')>('ioredis'); // perf (issue 9): only with REDIS_URL
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import type { Logger } from 'pino';
import { memoryLimiters, type LimiterFactory } from '../auth/throttle.ts';

export type RedisState = 'connecting' | 'ok' | 'unreachable' | 'closed';

export interface RedisStatus {
  status: 'ok' | 'degraded';
  state: RedisState;
  since: string;
  /** What the limits do right now. */
  limits: 'shared (redis)' | 'per-node (in memory)';
  lastError?: string;
}

/**
 * The one Redis connection of a Gatehouse node (owned by the composition root; the login
 * throttle and the gateway's rate/concurrency limits share it). Commands never queue while
 * Redis is down (`enableOfflineQueue: false`): a limiter's call fails at once and its
 * in-memory insurance limiter answers, so requests never wait on or fail because of Redis.
 * Limits are then per node, which the log and `/health/ready` say (still 200: degraded).
 */
export class SharedRedis {
  readonly client: Redis;
  private state: RedisState = 'connecting';
  private since = new Date().toISOString();
  private lastError: string | undefined;
  private readonly stateListeners = new Set<(s: RedisState) => void>();

  constructor(
    url: string,
    private readonly log: Logger,
    /** Namespace of every key Gatehouse writes (several deployments may share one Redis). */
    readonly keyPrefix = 'gatehouse',
  ) {
    this.client = new (ioredis().Redis)(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      commandTimeout: 1_000,
      // Reconnect for ever, backing off to 5 s; limits are per node meanwhile.
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5_000),
      lazyConnect: false,
    });
    this.client.on('ready', () => this.setState('ok'));
    this.client.on('error', (err: Error) => {
      this.lastError = (err.message || String(err)).slice(0, 200);
      this.setState('unreachable');
    });
    this.client.on('close', () => {
      if (this.state !== 'closed' && this.state !== 'connecting') this.setState('unreachable');
    });
    this.client.on('end', () => {
      if (this.state !== 'closed') this.setState('unreachable');
    });
  }

  private setState(s: RedisState): void {
    if (s === this.state || this.state === 'closed') return;
    const was = this.state;
    this.state = s;
    this.since = new Date().toISOString();
    if (s === 'unreachable') {
      this.log.warn({ error: this.lastError }, 'Redis is unreachable: rate limits and login throttling fall back to per-node counters');
    } else if (s === 'ok' && was === 'unreachable') {
      this.log.info('Redis is reachable again: limits are shared by the cluster');
    } else if (s === 'ok') {
      this.log.info('Redis connected: limits are shared by the cluster');
    }
    for (const fn of this.stateListeners) fn(s);
  }

  onState(fn: (s: RedisState) => void): void {
    this.stateListeners.add(fn);
  }

  get healthy(): boolean {
    return this.state === 'ok';
  }

  status(): RedisStatus {
    return {
      status: this.healthy ? 'ok' : 'degraded',
      state: this.state,
      since: this.since,
      limits: this.healthy ? 'shared (redis)' : 'per-node (in memory)',
      ...(this.lastError && !this.healthy ? { lastError: this.lastError } : {}),
    };
  }

  /**
   * Limiters for LoginThrottle (and anything else taking a LimiterFactory): counters in
   * Redis, with an in-memory limiter of the same shape answering while Redis is unreachable.
   */
  limiterFactory(): LimiterFactory {
    return (opts) =>
      new RateLimiterRedis({
        storeClient: this.client,
        keyPrefix: `${this.keyPrefix}:${opts.keyPrefix}`,
        points: opts.points,
        duration: opts.duration,
        rejectIfRedisNotReady: true,
        insuranceLimiter: memoryLimiters(opts) as RateLimiterMemory,
      });
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}
