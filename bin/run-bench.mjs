#!/usr/bin/env node
// `npm run bench [-- <scenario>...] [--warmup 3] [--duration 8]`: issue 9's scenarios side by side
// with their references, one table, JSON under bench/results/. Not part of `npm test`.
// The orchestrator (and every load generator it runs) is pinned to core 1; the servers it
// starts pin themselves to core 0 (taskset, when there are 2+ cores).
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const suite = [process.execPath, '--import', 'tsx', path.join(root, 'bench/suite.ts'), ...process.argv.slice(2)];
const canPin = os.cpus().length >= 2 && spawnSync('taskset', ['-c', '1', 'true']).status === 0;
if (!canPin) console.error('run-bench: taskset is unavailable or there is one core; running unpinned (apt-get install -y util-linux)');
const cmd = canPin ? ['taskset', '-c', '1', ...suite] : suite;
const r = spawnSync(cmd[0], cmd.slice(1), { stdio: 'inherit', cwd: root, env: { ...process.env, GATEHOUSE_BENCH_PINNED: canPin ? '1' : '' } });
process.exit(r.status ?? 1);
