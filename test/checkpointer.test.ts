/**
 * perf (issue 9): SQLite WAL checkpoints run on a worker thread, not on the event loop. A user
 * would notice a WAL that grows without bound (disk) or one whose content never reaches the
 * database file; both are checked here on a real SQLite file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { startCheckpointer } from '../src/store/checkpointer.ts';

test('the WAL is checkpointed by the worker once it grows, before the auto-checkpoint of the writing connection would', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gh-ckpt-'));
  const file = path.join(dir, 'db.sqlite');
  const db = new SQLite(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 10000');
  db.exec('create table t (id integer primary key, v text)');
  const ck = startCheckpointer(file, { everyMs: 100, startBytes: 64 * 1024 });
  try {
    const insert = db.prepare('insert into t (v) values (?)');
    const pad = 'x'.repeat(500);
    const write = db.transaction((n: number) => {
      for (let i = 0; i < n; i++) insert.run(pad);
    });
    const before = statSync(file).size;
    write(4000); // ~2 MB of WAL
    assert.ok(statSync(file + '-wal').size > 1_000_000, 'the writes went to the WAL');
    assert.ok(statSync(file).size <= before + 4096, 'the writing connection did not checkpoint them itself');
    // The watcher looks once a second, then the worker checkpoints every 100 ms.
    const until = Date.now() + 5000;
    while (statSync(file).size < 1_500_000 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    assert.ok(statSync(file).size >= 1_500_000, `the database file received the WAL's pages (${statSync(file).size} bytes)`);
    // Everything is in the database file now: a passive checkpoint finds nothing left to copy.
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number; checkpointed: number }>;
    assert.equal(r!.checkpointed, r!.log);
    assert.equal((db.prepare('select count(*) as n from t').get() as { n: number }).n, 4000);
  } finally {
    await ck.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
