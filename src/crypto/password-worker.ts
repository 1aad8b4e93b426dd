import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { RENICE_THIS_THREAD } from '../util/renice.ts';

/**
 * perf (issue 9): argon2id verification off the libuv pool, on dedicated worker threads at the
 * lowest CPU priority (nice 19, Linux per-thread). SCHED_IDLE (chrt) was tried as well and
 * measured no better: Bearer p99 during a login flood 1.3x and 8.4x the quiet p99 in two runs,
 * against 1.0x and 1.1x with nice 19 alone (npm run bench -- flood password). On a busy core the event loop (nice 0) then
 * always wins over hashing: Bearer traffic keeps its latency during a login flood, and logins
 * use the CPU the event loop leaves. One hash at a time per worker, one worker per core this
 * process may run on: more in flight on one core only adds contention (bench/refs/argon2-loop.mjs:
 * 59/s with 1, 42/s with 4). The workers start on the first login, not at start-up.
 */
const WORKER_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
const { verifySync } = require(workerData.argon2);
${RENICE_THIS_THREAD}
parentPort.on('message', ({ id, hash, password }) => {
  let ok = false;
  try { ok = verifySync(hash, password); } catch {}
  parentPort.postMessage({ id, ok });
});
`;

interface Entry {
  w: Worker;
  busy: number;
}
interface Job {
  resolve: (ok: boolean) => void;
  reject: (e: Error) => void;
  on: Entry;
}

class VerifierPool {
  private readonly workers: Entry[] = [];
  private readonly jobs = new Map<number, Job>();
  private nextId = 1;
  private readonly argon2 = createRequire(import.meta.url).resolve('@node-rs/argon2');

  /** Cores this process may run on (a sched_getaffinity call: asked once, not per login). */
  private readonly size = Math.max(1, Math.min(availableParallelism(), 4));

  private pick(): Entry {
    const size = this.size;
    if (this.workers.length < size) {
      const entry: Entry = { w: new Worker(WORKER_SRC, { eval: true, workerData: { argon2: this.argon2 } }), busy: 0 };
      entry.w.on('message', (m: { id: number; ok: boolean }) => {
        if (--entry.busy === 0) entry.w.unref();
        const job = this.jobs.get(m.id);
        this.jobs.delete(m.id);
        job?.resolve(m.ok);
      });
      entry.w.on('error', (e) => this.fail(entry, e));
      entry.w.on('exit', () => this.fail(entry, new Error('password verifier thread exited')));
      // Referenced only while it has work (set after the listeners: adding one refs the port again),
      // so an idle verifier never keeps the process alive.
      entry.w.unref();
      this.workers.push(entry);
      return entry;
    }
    return this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
  }

  private fail(entry: Entry, e: Error): void {
    const i = this.workers.indexOf(entry);
    if (i >= 0) this.workers.splice(i, 1);
    for (const [id, job] of this.jobs) {
      if (job.on !== entry) continue;
      this.jobs.delete(id);
      job.reject(e);
    }
  }

  verify(hash: string, password: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const entry = this.pick();
      this.jobs.set(id, { resolve, reject, on: entry });
      if (entry.busy++ === 0) entry.w.ref();
      entry.w.postMessage({ id, hash, password });
    });
  }
}

let pool: VerifierPool | undefined;

/** argon2 verification on the low-priority verifier threads. Resolves false for a malformed hash. */
export function verifyOnWorker(hash: string, password: string): Promise<boolean> {
  pool ??= new VerifierPool();
  return pool.verify(hash, password);
}
