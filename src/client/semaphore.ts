/** A counting semaphore whose capacity can change while it is in use (learned from headers). */
export class Semaphore {
  private active = 0;
  private readonly waiters: Array<{ grant: () => void; reject: (e: unknown) => void; signal?: AbortSignal; onAbort?: () => void }> = [];
  private capacity: number;
  // (no parameter properties: the SDK sticks to erasable TypeScript syntax)
  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get limit(): number {
    return this.capacity;
  }

  get running(): number {
    return this.active;
  }

  setCapacity(n: number): void {
    this.capacity = n;
    this.drain();
  }

  async acquire(signal?: AbortSignal | null): Promise<void> {
    signal?.throwIfAborted();
    if (this.active < this.capacity) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const w: (typeof this.waiters)[number] = { grant: resolve, reject };
      if (signal) {
        w.signal = signal;
        w.onAbort = () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiters.push(w);
    });
  }

  release(): void {
    this.active--;
    this.drain();
  }

  private drain(): void {
    while (this.active < this.capacity && this.waiters.length > 0) {
      const w = this.waiters.shift()!;
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      this.active++;
      w.grant();
    }
  }
}
