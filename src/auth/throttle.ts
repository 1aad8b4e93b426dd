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
  }

  private static userKey(username: string): string {
    return username.normalize('NFC').toLowerCase();
  }

  /** Throws 429 while the account or the IP is locked out. */
  async check(username: string, ip: string): Promise<void> {
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
    await this.perUser.delete(LoginThrottle.userKey(username));
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
