import type pg from 'pg';
import { lazyRequire } from '../lazy-require.ts';

const pgModule = lazyRequire<typeof pg>('pg'); // perf (issue 9): only with DATABASE_URL
import type { Logger } from 'pino';
import type { Store } from '../store/db.ts';
import { CHANGE_CHANNEL } from './migrations.ts';

export interface ListenerOptions {
  databaseUrl: string;
  /** Safety-net poll while LISTEN is healthy (a missed notification is found this late at worst). */
  healthyPollMs?: number;
  /** Poll while LISTEN is down (the pre-LISTEN behaviour). */
  degradedPollMs?: number;
  /** Reconnect back-off: first delay, doubling up to the maximum, with jitter. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** A query on the listening connection this often detects a silently dead socket. */
  heartbeatMs?: number;
}

export type ListenerState = 'connecting' | 'listening' | 'reconnecting' | 'closed';

export interface ListenerStatus {
  mode: 'listen';
  state: ListenerState;
  since: string;
  reconnects: number;
  lastError?: string;
}

/**
 * The PostgreSQL fast path of the change feed: one dedicated connection per node LISTENs on
 * `gatehouse_changes` (filled by a trigger on `changes`) and hands each notification to the
 * store, which delivers it to the caches at once. When the connection is lost the node falls
 * back to the fast poll, reconnects with back-off and, once listening again, reads the log
 * from its last seen seq, so a change made while it was deaf is still applied.
 */
export class PgChangeListener {
  private client: pg.Client | undefined;
  private state: ListenerState = 'connecting';
  private since = new Date().toISOString();
  private reconnects = 0;
  private failures = 0;
  private lastError: string | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly o: Required<Omit<ListenerOptions, 'databaseUrl'>>;
  private readonly stateListeners = new Set<(s: ListenerState) => void>();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly opts: ListenerOptions,
  ) {
    this.o = {
      healthyPollMs: opts.healthyPollMs ?? 5_000,
      degradedPollMs: opts.degradedPollMs ?? 500,
      minBackoffMs: opts.minBackoffMs ?? 200,
      maxBackoffMs: opts.maxBackoffMs ?? 5_000,
      heartbeatMs: opts.heartbeatMs ?? 10_000,
    };
  }

  /** Connect in the background; the poll covers the time until LISTEN works. */
  start(): void {
    void this.connect();
  }

  onState(fn: (s: ListenerState) => void): void {
    this.stateListeners.add(fn);
  }

  status(): ListenerStatus {
    return {
      mode: 'listen',
      state: this.state,
      since: this.since,
      reconnects: this.reconnects,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private setState(s: ListenerState): void {
    if (s === this.state) return;
    this.state = s;
    this.since = new Date().toISOString();
    for (const fn of this.stateListeners) fn(s);
  }

  private async connect(): Promise<void> {
    if (this.state === 'closed') return;
    const client = new (pgModule().Client)({ connectionString: this.opts.databaseUrl, keepAlive: true });
    this.client = client;
    let lost = false;
    const onLost = (err?: Error) => {
      if (lost || this.client !== client) return;
      lost = true;
      this.client = undefined;
      client.removeAllListeners('notification');
      void client.end().catch(() => {});
      if (this.state === 'closed') return;
      this.lastError = err ? describe(err) : 'connection ended';
      if (this.state === 'listening') {
        this.log.warn({ error: this.lastError }, 'change feed: LISTEN connection lost; polling every %d ms until it is back', this.o.degradedPollMs);
      }
      this.store.setChangePollMs(this.o.degradedPollMs);
      this.setState('reconnecting');
      this.scheduleRetry();
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (msg) => {
      if (msg.channel !== CHANGE_CHANNEL || !msg.payload) return;
      const c = parsePayload(msg.payload);
      if (c) this.store.applyFeedChange(c, 'listen');
      else void this.store.pollChanges(); // unreadable payload: read the log instead
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (err) {
      onLost(err as Error);
      return;
    }
    if (lost || this.isClosed()) return;
    // Listening now: whatever committed while we were not is in the log after our cursor.
    const caughtUp = await this.store.pollChanges();
    if (lost || this.isClosed()) return;
    if (!caughtUp) {
      // The log could not be read (the pool's connections may have been killed too): keep
      // polling fast until a read succeeds; notifications already flow meanwhile.
      void this.catchUpLater(client);
    } else {
      this.store.setChangePollMs(this.o.healthyPollMs);
    }
    if (this.reconnects > 0 || this.failures > 0) this.log.info({ reconnects: this.reconnects }, 'change feed: listening again, caught up from the log');
    this.failures = 0;
    this.lastError = undefined;
    this.setState('listening');
    this.startHeartbeat(client);
  }

  private async catchUpLater(client: pg.Client): Promise<void> {
    for (let i = 0; i < 50 && this.client === client; i++) {
      await new Promise((r) => setTimeout(r, this.o.degradedPollMs).unref());
      if (await this.store.pollChanges()) {
        if (this.client === client) this.store.setChangePollMs(this.o.healthyPollMs);
        return;
      }
    }
  }

  private startHeartbeat(client: pg.Client): void {
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      if (this.client !== client) return;
      client.query('SELECT 1').catch((err: Error) => client.emit('error', err));
    }, this.o.heartbeatMs);
    this.heartbeat.unref();
  }

  private scheduleRetry(): void {
    clearInterval(this.heartbeat);
    clearTimeout(this.retryTimer);
    const base = Math.min(this.o.minBackoffMs * 2 ** this.failures, this.o.maxBackoffMs);
    this.failures++;
    this.reconnects++;
    const delay = base / 2 + Math.random() * (base / 2);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
    this.retryTimer.unref();
  }

  async close(): Promise<void> {
    this.setState('closed');
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeat);
    const c = this.client;
    this.client = undefined;
    if (c) await c.end().catch(() => {});
  }
}

function parsePayload(payload: string): { seq: number; entity: string; id: string; at: string } | undefined {
  try {
    const p = JSON.parse(payload) as { seq?: unknown; entity?: unknown; id?: unknown; at?: unknown };
    const seq = Number(p.seq);
    if (!Number.isSafeInteger(seq) || typeof p.entity !== 'string' || typeof p.id !== 'string' || typeof p.at !== 'string') return undefined;
    return { seq, entity: p.entity, id: p.id, at: p.at };
  } catch {
    return undefined;
  }
}

function describe(err: Error): string {
  // pg errors may carry the connection string's host; never the password (not in messages).
  return (err.message || String(err)).slice(0, 200);
}
