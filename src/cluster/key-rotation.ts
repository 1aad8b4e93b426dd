import { Cron } from 'croner';
import type { Logger } from 'pino';
import type { KeyManager } from '../tokens/keys.ts';

const DAY_MS = 24 * 3600 * 1000;

/**
 * Scheduled signing-key rotation (`tokens.rotateEveryDays`). Every node checks every hour;
 * the rotation itself is claimed in the database (KeyManager.rotateIfOlderThan: a conditional
 * UPDATE of the current key), so exactly one node rotates per period with no leader to elect.
 * The others load the new key when its `signing_key` change reaches them through the feed.
 */
export class KeyRotationJob {
  private cron: Cron | undefined;
  private running: Promise<string | null> | undefined;

  constructor(
    private readonly keys: KeyManager,
    private readonly log: Logger,
    private readonly clock: () => Date,
    private readonly everyDays: number,
    private readonly schedule = '7 * * * *',
  ) {}

  get enabled(): boolean {
    return this.everyDays > 0;
  }

  start(): void {
    if (!this.enabled || this.cron) return;
    this.cron = new Cron(this.schedule, { protect: true, unref: true }, () => void this.runOnce());
    void this.runOnce();
  }

  /** Rotate if the signing key is older than the period and no other node did it first. */
  runOnce(): Promise<string | null> {
    if (!this.enabled) return Promise.resolve(null);
    this.running ??= this.check().finally(() => (this.running = undefined));
    return this.running;
  }

  private async check(): Promise<string | null> {
    const now = this.clock();
    const cutoff = new Date(now.getTime() - this.everyDays * DAY_MS).toISOString();
    try {
      const kid = await this.keys.rotateIfOlderThan(cutoff, now);
      if (kid) this.log.info({ kid, everyDays: this.everyDays }, 'scheduled signing-key rotation: this node rotated the key');
      return kid;
    } catch (err) {
      this.log.error({ err }, 'scheduled signing-key rotation failed; will retry on the next check');
      return null;
    }
  }

  stop(): void {
    this.cron?.stop();
    this.cron = undefined;
  }
}
