import { RateLimiterMemory, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { TooManyRequestsError } from '../domain/errors.ts';

export interface ThrottleOptions {
  maxFailuresPerUser: number;
  maxFailuresPerIp: number;
  failureWindowSeconds: number;
  lockoutSeconds: number;
  maxLockoutSeconds: number;
}

/** Builds a limiter; in memory by default, a shared store (Redis) when scaled out. */
export type LimiterFactory = (opts: { keyPrefix: string; points: number; duration: number }) => RateLimiterAbstract;

export const memoryLimiters: LimiterFactory = (opts) => new RateLimiterMemory(opts);

/**
 * Failed-login throttling, per account and per source IP (rate-limiter-flexible). After
 * `maxFailuresPerUser` consecutive failures the account is locked for `lockoutSeconds`;
 * each further lockout within a day doubles that, up to `maxLockoutSeconds`. While locked,
 * even the right password is refused. Unknown usernames are counted the same way, so a
 * lockout reveals nothing about which accounts exist.
 */
export class LoginThrottle {
  private readonly perUser: RateLimiterAbstract;
  private readonly perIp: RateLimiterAbstract;
  private readonly lockouts: RateLimiterAbstract;
  // >>> perf (issue 9): with in-memory limiters this process sees every failure, so it knows
  // which keys can have a record at all. A key with no failure within the longest time a record
  // can live (failure window or lockout, from its last failure) has none: check() passes and
  // success() has nothing to delete, without asking the limiters (two promises each). Shared
  // limiters (Redis: failures counted by other nodes) are always asked.
  private readonly local: boolean;
  private readonly failedUsers = new Map<string, number>();
  private readonly failedIps = new Map<string, number>();
  private pruneAt = 10_000;
  // <<< perf

  constructor(
    private readonly opts: ThrottleOptions,
    factory: LimiterFactory = memoryLimiters,
    prefix = 'login',
    /** What is locked, in messages (harden, issue 10: clients are throttled too). */
    private readonly subject: 'account' | 'client' = 'account',
  ) {
    this.perUser = factory({ keyPrefix: `${prefix}_user`, points: opts.maxFailuresPerUser, duration: opts.failureWindowSeconds });
    this.perIp = factory({ keyPrefix: `${prefix}_ip`, points: opts.maxFailuresPerIp, duration: opts.failureWindowSeconds });
    this.lockouts = factory({ keyPrefix: `${prefix}_lockouts`, points: 1000, duration: 86400 });
    this.local = this.perUser instanceof RateLimiterMemory && this.perIp instanceof RateLimiterMemory;
  }

  // >>> perf (issue 9)
  private noteFailure(userKey: string, ip: string): void {
    if (!this.local) return;
    const now = Date.now();
    // +1 s: the limiters round their expiry; erring long only costs a real lookup.
    const windowMs = (this.opts.failureWindowSeconds + 1) * 1000;
    this.failedUsers.set(userKey, now + Math.max(windowMs, (this.opts.maxLockoutSeconds + 1) * 1000));
    this.failedIps.set(ip, now + windowMs);
    if (this.failedUsers.size + this.failedIps.size >= this.pruneAt) {
      for (const m of [this.failedUsers, this.failedIps]) for (const [k, until] of m) if (until <= now) m.delete(k);
      this.pruneAt = Math.max(10_000, 2 * (this.failedUsers.size + this.failedIps.size));
    }
  }

  private static live(m: Map<string, number>, key: string): boolean {
    const until = m.get(key);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    m.delete(key);
    return false;
  }

  /**
   * True when neither the account (or client) nor the address can have a failure on record, so
   * check() would pass and success() would clear nothing: callers may skip both. Always false
   * with shared limiters.
   */
  isClear(username: string, ip: string): boolean {
    return this.local && !LoginThrottle.live(this.failedUsers, LoginThrottle.userKey(username)) && !LoginThrottle.live(this.failedIps, ip);
  }
  // <<< perf

  private static userKey(username: string): string {
    return username.normalize('NFC').toLowerCase();
  }

  /** Throws 429 while the account or the IP is locked out. */
  async check(username: string, ip: string): Promise<void> {
    if (this.isClear(username, ip)) return; // perf (issue 9)
    const [u, i] = await Promise.all([this.perUser.get(LoginThrottle.userKey(username)), this.perIp.get(ip)]);
    if (u && u.consumedPoints > this.opts.maxFailuresPerUser) {
      throw new TooManyRequestsError(
        `Too many failed ${this.subject === 'client' ? 'authentication attempts for this client' : 'login attempts for this account'}; try again in ${Math.ceil(u.msBeforeNext / 1000)} seconds.`,
        u.msBeforeNext / 1000,
        this.subject === 'client' ? 'client_locked' : 'account_locked',
      );
    }
    if (i && i.consumedPoints > this.opts.maxFailuresPerIp) {
      throw new TooManyRequestsError(
        `Too many failed ${this.subject === 'client' ? 'client authentication' : 'login'} attempts from this address; try again in ${Math.ceil(i.msBeforeNext / 1000)} seconds.`,
        i.msBeforeNext / 1000,
        'ip_throttled',
      );
    }
  }

  /** Count a failure. Returns the lockout length in seconds when this failure locked the account. */
  async failure(username: string, ip: string): Promise<number | null> {
    const key = LoginThrottle.userKey(username);
    this.noteFailure(key, ip); // perf (issue 9): before the limiters count it
    await this.perIp.consume(ip).catch(() => undefined);
    const res = await this.perUser.consume(key).catch((r: unknown) => (r instanceof RateLimiterRes ? r : null));
    if (!res || res.consumedPoints < this.opts.maxFailuresPerUser) return null;
    const n = await this.lockouts
      .consume(key)
      .then((r) => r.consumedPoints)
      .catch((r: unknown) => (r instanceof RateLimiterRes ? r.consumedPoints : 1));
    const seconds = Math.min(this.opts.lockoutSeconds * 2 ** (n - 1), this.opts.maxLockoutSeconds);
    await this.perUser.block(key, seconds);
    return seconds;
  }

  async success(username: string): Promise<void> {
    const key = LoginThrottle.userKey(username);
    if (this.local && !LoginThrottle.live(this.failedUsers, key)) return; // perf (issue 9): no record to delete
    // The note stays until it expires: notes are only ever added, so no interleaving of a success
    // with a concurrent failure can leave a record without one.
    await this.perUser.delete(key);
  }

  /** A manager's unlock: clears the failure count and the back-off history. */
  async unlock(username: string): Promise<void> {
    const key = LoginThrottle.userKey(username);
    await Promise.all([this.perUser.delete(key), this.lockouts.delete(key)]);
  }

  async isLocked(username: string): Promise<boolean> {
    const u = await this.perUser.get(LoginThrottle.userKey(username));
    return Boolean(u && u.consumedPoints > this.opts.maxFailuresPerUser);
  }
}
