/**
 * Where a node stands in the `changes` log, robust to PostgreSQL committing sequence values
 * out of order: transaction T1 may take seq 41, T2 seq 42, and T2 commit first. A follower
 * that only remembered "the highest seq seen" (42) would then never read 41. So every seq
 * skipped over is remembered as an open gap and asked for again (`seq IN (gaps)`) until it
 * shows up or is older than `gapTtlMs` (then it was a rolled-back transaction's value).
 * Every seq is delivered at most once, whether it arrives by NOTIFY or by the poll.
 */
export class ChangeCursor {
  lastSeq = 0;
  private readonly gaps = new Map<number, number>();

  constructor(
    private readonly gapTtlMs = 60_000,
    /** A jump larger than this only tracks its last `maxGap` values (bounded memory). */
    private readonly maxGap = 5_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Start at `max`; `present` are the seqs that exist just below it (others are open gaps). */
  reset(max: number, present: Iterable<number> = []): void {
    this.lastSeq = max;
    this.gaps.clear();
    const seen = new Set(present);
    const t = this.now();
    for (let s = Math.max(1, max - this.maxGap); s < max; s++) if (!seen.has(s)) this.gaps.set(s, t);
  }

  /** True when `seq` is new (deliver it); false for one already delivered. */
  accept(seq: number): boolean {
    if (seq > this.lastSeq) {
      const t = this.now();
      for (let s = Math.max(this.lastSeq + 1, seq - this.maxGap); s < seq; s++) this.gaps.set(s, t);
      this.lastSeq = seq;
      return true;
    }
    return this.gaps.delete(seq);
  }

  /** Gaps still worth asking for (expired ones are dropped). */
  openGaps(): number[] {
    const cutoff = this.now() - this.gapTtlMs;
    for (const [s, t] of this.gaps) if (t < cutoff) this.gaps.delete(s);
    return [...this.gaps.keys()].slice(0, 1000);
  }

  get gapCount(): number {
    return this.gaps.size;
  }
}
