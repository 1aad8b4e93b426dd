/**
 * perf (issue 9): on a single CPU, bin/gatehouse.mjs switches V8's background GC and compiler
 * threads off at run time (docs/performance.md, entry 16). Some of those flags crash V8 when
 * changed after start (--parallel-marking did, in a SIGTRAP under load), so this starts the real
 * binary pinned to one core and drives it through enough work for scavenges, full GCs and
 * optimised code: it must keep answering, and report one CPU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, ADMIN_PASSWORD } from './helpers.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const hasTaskset = spawnSync('taskset', ['--version']).status === 0;

test('pinned to one core, the server runs with V8 background threads off and survives garbage-heavy load', { skip: !hasTaskset && 'taskset (util-linux) missing' }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gh-1cpu-'));
  const port = await freePort();
  const child = spawn('taskset', ['-c', '0', process.execPath, path.join(root, 'bin/gatehouse.mjs'), 'serve'], {
    cwd: root,
    env: { ...process.env, GATEHOUSE_DATA_DIR: dir, PORT: String(port), HOST: '127.0.0.1', GATEHOUSE_ADMIN_PASSWORD: ADMIN_PASSWORD, GATEHOUSE_CONFIG: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i++) {
      const r = await fetch(url + '/health/ready').catch(() => undefined);
      if (r?.ok) break;
      assert.ok(i < 300 && child.exitCode === null, `server did not start: ${stderr.slice(-500)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    const login = await fetch(url + '/auth', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `username=admin&password=${encodeURIComponent(ADMIN_PASSWORD)}&token=true` });
    assert.equal(login.status, 201);
    const jwt = await login.text();
    // ~3,000 authenticated calls, 32 at a time: enough allocation for many scavenges and a full GC.
    let ok = 0;
    for (let round = 0; round < 100; round++) {
      const rs = await Promise.all(Array.from({ length: 32 }, () => fetch(url + '/api/v1/me', { headers: { authorization: `Bearer ${jwt}` } }).then(async (r) => (await r.arrayBuffer(), r.status))));
      ok += rs.filter((s) => s === 200).length;
    }
    assert.equal(ok, 3200, 'every call answered 200');
    assert.equal(child.exitCode, null, `server exited: ${stderr.slice(-500)}`);
  } finally {
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
});
