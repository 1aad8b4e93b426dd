import type { Store } from '../store/db.ts';
import { ServiceUnavailableError } from '../domain/errors.ts';
import { makeRoom } from '../util/bounded-map.ts';

/**
 * In-memory principal state (is this user active? does this client still exist?), loaded
 * once per entity and kept current by the store's change feed, so verifying a token costs
 * no database round trip. Absence is cached too: a deleted client's tokens are refused
 * from memory.
 */
export class StateCache<T> {
  private readonly entries = new Map<string, { value: T | undefined }>();
  private readonly loading = new Map<string, Promise<T | undefined>>();
  /** Bumped on every change to an id, so a load that raced a change is not stored. */
  private readonly versions = new Map<string, number>();
  private readonly unsubscribe: () => void;

  constructor(
    store: Store,
    readonly entity: string,
    private readonly loader: (id: string) => Promise<T | undefined>,
    private readonly maxEntries = 100_000,
  ) {
    this.unsubscribe = store.onChange((c) => {
      if (c.entity === entity) this.invalidate(c.id);
    });
    store.stateCaches.add(this); // scaleout (issue 8): sizes on /metrics
    this.store = store;
  }

  private readonly store: Store;

  invalidate(id: string): void {
    this.entries.delete(id);
    this.versions.set(id, (this.versions.get(id) ?? 0) + 1);
  }

  clear(): void {
    for (const id of this.entries.keys()) this.invalidate(id);
  }

  /**
   * perf (issue 9): the entry when it is in memory (its value may be `undefined`: known absent),
   * or `undefined` when only a load can tell. Synchronous; the same staleness rule as get().
   * The returned wrapper object is replaced whenever the entity changes, so callers may key
   * derived values on it (a WeakMap) and know they are current.
   */
  peek(id: string): { readonly value: T | undefined } | undefined {
    this.assertFresh();
    return this.entries.get(id);
  }

  // >>> harden (issue 10): bounded staleness. While the change feed cannot be read (database
  // unreachable) the cache may have missed a revocation made elsewhere; it keeps answering for
  // `stateStalenessSeconds`, then fails closed (503) until the feed is read again.
  assertFresh(): void {
    const staleMs = this.store.feedStalenessMs();
    if (staleMs > this.store.stateStalenessSeconds * 1000) {
      throw new ServiceUnavailableError(
        `Gatehouse cannot confirm this credential: its database has been unreachable for ${Math.round(staleMs / 1000)} s, longer than the ${this.store.stateStalenessSeconds} s it may rely on cached state. Try again when the database is back.`,
        'state_stale',
      );
    }
  }
  // <<< harden

  async get(id: string): Promise<T | undefined> {
    this.assertFresh();
    const hit = this.entries.get(id);
    if (hit) return hit.value;
    const inFlight = this.loading.get(id);
    if (inFlight) return inFlight;
    const version = this.versions.get(id) ?? 0;
    const p = this.loader(id)
      .then((value) => {
        if ((this.versions.get(id) ?? 0) === version) {
          makeRoom(this.entries, this.maxEntries);
          this.entries.set(id, { value });
        }
        return value;
      })
      .finally(() => this.loading.delete(id));
    this.loading.set(id, p);
    return p;
  }

  get size(): number {
    return this.entries.size;
  }

  close(): void {
    this.store.stateCaches.delete(this); // scaleout (issue 8)
    this.unsubscribe();
  }
}
