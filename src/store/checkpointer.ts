import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { RENICE_THIS_THREAD } from '../util/renice.ts';

/**
 * perf (issue 9): SQLite WAL checkpoints off the event loop.
 *
 * With SQLite's default auto-checkpoint, the connection that commits the 1000th WAL page copies
 * the WAL into the database and fsyncs both files, synchronously, on the event loop: strace of a
 * login flood showed fsyncs of 5-7 ms there about once a second, each a stall for every request
 * in flight. Here the event loop's connection mostly only appends (its auto-checkpoint at the
 * default 1,000 pages stays as a safety net: the worker normally gets there first), and a worker thread (nice 19) with its own connection runs PASSIVE checkpoints
 * every `everyMs` (they never block writers or readers; frames still needed by a reader are left
 * for the next round). The worker starts the first time the WAL passes `startBytes`, so a server
 * that writes little (and its idle memory) never has one.
 */
const WORKER_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
${RENICE_THIS_THREAD}
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 2000');
const run = () => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} };
const timer = setInterval(run, workerData.everyMs);
parentPort.on('message', (m) => {
  if (m !== 'close') return;
  clearInterval(timer);
  run();
  db.close();
  parentPort.close();
});
`;

export interface Checkpointer {
  close(): Promise<void>;
}

export function startCheckpointer(file: string, opts: { everyMs?: number; startBytes?: number } = {}): Checkpointer {
  const everyMs = opts.everyMs ?? 1000;
  const startBytes = opts.startBytes ?? 256 * 1024;
  let worker: Worker | undefined;
  let exited: Promise<void> | undefined;
  const watch = setInterval(() => {
    let size = 0;
    try {
      size = statSync(file + '-wal').size;
    } catch {
      return;
    }
    if (size < startBytes) return;
    clearInterval(watch);
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    worker = new Worker(WORKER_SRC, { eval: true, workerData: { driver, file, everyMs } });
    worker.unref();
    exited = new Promise((r) => worker!.once('exit', () => r()));
    worker.on('error', () => {}); // the main connection's own auto-checkpoint remains
  }, 1000);
  watch.unref();
  return {
    async close() {
      clearInterval(watch);
      if (!worker) return;
      worker.ref(); // keep the process up until the last checkpoint is done
      worker.postMessage('close');
      let t: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (t = setTimeout(r, 3000)))]);
      clearTimeout(t);
      await worker.terminate().catch(() => {});
    },
  };
}
