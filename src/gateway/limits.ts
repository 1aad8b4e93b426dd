import type { Redis } from 'ioredis';
import type { SharedRedis } from '../cluster/redis.ts';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Logger } from 'pino';
import { GatehouseError } from '../domain/errors.ts';
import type { ModuleName } from '../domain/modules.ts';
import type { Principal } from '../domain/types.ts';
import { DEFAULT_LIMIT, type LimitsConfig } from './config.ts';

/**
 * Qualys-style API limits: requests per window per subscription (and module), requests running
 * at once per user (or per client / subscription token). In memory by default; shared through
 * Redis when REDIS_URL is set (the node's one connection, owned by the composition root), falling back to memory (and saying so in the log) while Redis is
 * unreachable, so an outage of the counters never fails requests.
 */

export interface ModuleLimit {
  rate: number;
  windowSec: number;
  concurrency: number;
}

export class LimitExceededError extends GatehouseError {
  constructor(kind: 'rate' | 'concurrency', message: string, headers: Record<string, string>) {
    super(409, kind === 'rate' ? 'rate_limit_exceeded' : 'concurrency_limit_exceeded', message, {
      qualysCode: kind === 'rate' ? 1965 : 1960,
      headers,
    });
  }
}

export interface Lease {
  headers: Record<string, string>;
  release(): void;
}

const NO_LEASE: Lease = { headers: {}, release() {} };

/** Whose concurrency slots a call takes: the user's, or the client's / subscription token's. */
function slotKey(module: ModuleName, p: Principal): string {
  return `${module}:${p.kind === 'user' ? `u:${p.userId}` : `s:${p.subscriptionId}:${p.clientId ?? p.secretId ?? p.tokenId ?? ''}`}`;
}

/**
 * perf (issue 9): RateLimiterMemory.consume() without its promise. consume() counts
 * synchronously inside its Promise executor (MemoryStorage.incrby); this makes the same call
 * and returns the RateLimiterRes, so a gateway call needs no microtask for its rate limit.
 * `undefined` if the library's internals ever differ (callers then use consume()).
 */
function consumeNow(limiter: RateLimiterAbstract, key: string): RateLimiterRes | undefined {
  const m = limiter as unknown as {
    _memoryStorage?: { incrby?: (k: string, points: number, secDuration: number) => RateLimiterRes };
    getKey(k: string): string;
    points: number;
    duration: number;
    blockDuration: number;
    execEvenly: boolean;
  };
  const incrby = m._memoryStorage?.incrby;
  if (!(limiter instanceof RateLimiterMemory) || typeof incrby !== 'function' || m.blockDuration > 0 || m.execEvenly) return undefined;
  const res = incrby.call(m._memoryStorage, m.getKey(key), 1, m.duration);
  (res as { remainingPoints: number }).remainingPoints = Math.max(m.points - res.consumedPoints, 0);
  return res;
}

/** Concurrency slots: INCR-if-below-limit, exact; Lua on Redis so nodes share them. */
interface Slots {
  acquire(key: string, limit: number): Promise<{ ok: boolean; running: number }>;
  release(key: string): void;
}

class MemorySlots implements Slots {
  private readonly running = new Map<string, number>();
  async acquire(key: string, limit: number) {
    return this.acquireNow(key, limit);
  }
  acquireNow(key: string, limit: number): { ok: boolean; running: number } {
    const n = this.running.get(key) ?? 0;
    if (n >= limit) return { ok: false, running: n };
    this.running.set(key, n + 1);
    return { ok: true, running: n + 1 };
  }
  release(key: string): void {
    const n = (this.running.get(key) ?? 1) - 1;
    if (n <= 0) this.running.delete(key);
    else this.running.set(key, n);
  }
}

const ACQUIRE_LUA = `
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if n > tonumber(ARGV[1]) then redis.call('DECR', KEYS[1]); return -(n - 1) end
return n`;
const RELEASE_LUA = `
local n = redis.call('DECR', KEYS[1])
if n <= 0 then redis.call('DEL', KEYS[1]) end
return n`;

class RedisSlots implements Slots {
  /** Keys whose slot was taken in memory (Redis was down then) release in memory too. */
  private readonly local = new MemorySlots();
  private readonly localKeys = new Map<string, number>();
  constructor(
    private readonly redis: Redis,
    private readonly onFallback: (e: unknown) => void,
  ) {}
  async acquire(key: string, limit: number) {
    if (this.redis.status === 'ready') {
      try {
        const n = Number(await this.redis.eval(ACQUIRE_LUA, 1, `gh:conc:${key}`, String(limit), '3600'));
        return n < 0 ? { ok: false, running: -n } : { ok: true, running: n };
      } catch (e) {
        this.onFallback(e);
      }
    }
    const r = await this.local.acquire(key, limit);
    if (r.ok) this.localKeys.set(key, (this.localKeys.get(key) ?? 0) + 1);
    return r;
  }
  release(key: string): void {
    const l = this.localKeys.get(key);
    if (l) {
      if (l <= 1) this.localKeys.delete(key);
      else this.localKeys.set(key, l - 1);
      this.local.release(key);
      return;
    }
    if (this.redis.status === 'ready') this.redis.eval(RELEASE_LUA, 1, `gh:conc:${key}`).catch(this.onFallback);
  }
}

export class GatewayLimits {
  private readonly rate = new Map<ModuleName, RateLimiterAbstract>();
  private readonly slots: Slots;
  private readonly redis: Redis | undefined;
  private degraded = false;

  private readonly limits = new Map<ModuleName, ModuleLimit>();

  constructor(
    private readonly cfg: LimitsConfig,
    shared: SharedRedis | undefined,
    private readonly log: Logger,
  ) {
    if (shared) {
      // perf/ops (issue 9): the node's shared connection (services.redis), not one of our own.
      this.redis = shared.client;
      shared.onState((state) => {
        if (state === 'unreachable') this.fallback(new Error(shared.status().lastError ?? 'Redis unreachable'));
        else if (state === 'ok') {
          if (this.degraded) this.log.warn('gateway limits: Redis reachable again; counters are shared again');
          this.degraded = false;
        }
      });
      if (shared.status().state === 'unreachable') this.fallback(new Error(shared.status().lastError ?? 'Redis unreachable'));
      this.slots = new RedisSlots(this.redis, (e) => this.fallback(e));
    } else {
      this.slots = new MemorySlots();
    }
  }

  private fallback(e: unknown): void {
    if (this.degraded) return;
    this.degraded = true;
    this.log.warn({ err: { message: (e as Error)?.message } }, 'gateway limits: Redis unreachable; counting in memory on this node until it is back');
  }

  get backend(): 'memory' | 'redis' {
    return this.redis ? 'redis' : 'memory';
  }

  limitFor(module: ModuleName): ModuleLimit {
    let l = this.limits.get(module); // the configuration is fixed for the process: merge once per module
    if (!l) this.limits.set(module, (l = Object.freeze({ ...DEFAULT_LIMIT, ...this.cfg.default, ...this.cfg.modules[module] })));
    return { ...l };
  }

  private rateLimiter(module: ModuleName, l: ModuleLimit): RateLimiterAbstract {
    let r = this.rate.get(module);
    if (!r) {
      const opts = { points: l.rate, duration: l.windowSec, keyPrefix: `gh:rate:${module}` };
      r = this.redis
        ? new RateLimiterRedis({ ...opts, storeClient: this.redis, rejectIfRedisNotReady: true, insuranceLimiter: new RateLimiterMemory(opts) })
        : new RateLimiterMemory(opts);
      this.rate.set(module, r);
    }
    return r;
  }

  /**
   * Take a rate point and a concurrency slot, or throw 409 with the headers saying how long to
   * wait. Synchronous with the in-memory counters (perf, issue 9), a promise with Redis.
   */
  acquire(module: ModuleName, p: Principal): Lease | Promise<Lease> {
    if (!this.limits.has(module)) this.limitFor(module);
    const l = this.limits.get(module)!;
    if (this.slots instanceof MemorySlots && !this.redis) {
      const headers: Record<string, string> = {};
      if (l.rate > 0) {
        const limiter = this.rateLimiter(module, l);
        const res = consumeNow(limiter, p.subscriptionId);
        if (res === undefined) return this.acquireAsync(module, p, l); // library internals changed: the documented path
        this.rateHeaders(module, l, headers, res);
      }
      return this.takeSlot(module, p, l, headers, l.concurrency > 0 ? this.slots.acquireNow(slotKey(module, p), l.concurrency) : undefined);
    }
    return this.acquireAsync(module, p, l);
  }

  /** Rate headers for a consumed point; throws the 409 when the window's points are spent. */
  private rateHeaders(module: ModuleName, l: ModuleLimit, headers: Record<string, string>, res: RateLimiterRes): void {
    headers['x-ratelimit-limit'] = String(l.rate);
    headers['x-ratelimit-window-sec'] = String(l.windowSec);
    if (res.consumedPoints > l.rate) this.rateExceeded(module, l, headers, res);
    headers['x-ratelimit-remaining'] = String(Math.max(0, res.remainingPoints));
    headers['x-ratelimit-towait-sec'] = '0';
  }

  private rateExceeded(module: ModuleName, l: ModuleLimit, headers: Record<string, string>, e: RateLimiterRes): never {
    const wait = Math.max(1, Math.ceil(e.msBeforeNext / 1000));
    headers['x-ratelimit-remaining'] = '0';
    headers['x-ratelimit-towait-sec'] = String(wait);
    if (l.concurrency > 0) {
      headers['x-concurrency-limit-limit'] = String(l.concurrency);
    }
    throw new LimitExceededError(
      'rate',
      `The requested operation is blocked by one or more existing Business Objects: API rate limit for ${module} exceeded (${l.rate} calls per ${l.windowSec} seconds for this subscription). This API cannot be run again for another ${wait} seconds.`,
      headers,
    );
  }

  private async acquireAsync(module: ModuleName, p: Principal, l: ModuleLimit): Promise<Lease> {
    const headers: Record<string, string> = {};
    if (l.rate > 0) {
      headers['x-ratelimit-limit'] = String(l.rate);
      headers['x-ratelimit-window-sec'] = String(l.windowSec);
      let res: RateLimiterRes;
      try {
        res = await this.rateLimiter(module, l).consume(p.subscriptionId);
      } catch (e) {
        if (!(e instanceof RateLimiterRes)) {
          this.fallback(e);
          res = new RateLimiterRes(l.rate, 0, 0);
        } else {
          this.rateExceeded(module, l, headers, e);
        }
      }
      headers['x-ratelimit-remaining'] = String(Math.max(0, res.remainingPoints));
      headers['x-ratelimit-towait-sec'] = '0';
    }
    if (l.concurrency <= 0) return { headers, release() {} };
    return this.takeSlot(module, p, l, headers, await this.slots.acquire(slotKey(module, p), l.concurrency));
  }

  private takeSlot(module: ModuleName, p: Principal, l: ModuleLimit, headers: Record<string, string>, c: { ok: boolean; running: number } | undefined): Lease {
    if (l.concurrency <= 0 || c === undefined) return { headers, release() {} };
    const key = slotKey(module, p);
    headers['x-concurrency-limit-limit'] = String(l.concurrency);
    headers['x-concurrency-limit-running'] = String(c.running);
    if (!c.ok) {
      headers['x-ratelimit-towait-sec'] ??= '1';
      if (headers['x-ratelimit-towait-sec'] === '0') headers['x-ratelimit-towait-sec'] = '1';
      throw new LimitExceededError(
        'concurrency',
        `The requested operation is blocked by one or more existing Business Objects: concurrency limit for ${module} reached (${l.concurrency} calls at once per user). This API cannot be run again until a currently running call has finished.`,
        headers,
      );
    }
    let released = false;
    return {
      headers,
      release: () => {
        if (released) return;
        released = true;
        this.slots.release(key);
      },
    };
  }

  static none(): Lease {
    return NO_LEASE;
  }

  /** The Redis connection belongs to the composition root, which closes it. */
  async close(): Promise<void> {}
}
