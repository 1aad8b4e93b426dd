#!/usr/bin/env node
// Starts Gatehouse from the pre-built bundle (dist/server/gatehouse.mjs, made by
// scripts/build-server.mjs on `npm ci`) when it is newer than every source file, otherwise
// runs the TypeScript sources directly through tsx (no build step needed between a clone and a
// start). GATEHOUSE_NO_BUNDLE=1 forces the sources.
import { readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';

// perf (issue 9): on a single CPU, V8's background threads (concurrent marking and sweeping,
// parallel scavenges, concurrent compilation) do not run beside the event loop: they take turns
// with it, and each turn is a stall of the scheduler's slice (milliseconds) for every request in
// flight. The same work done on the event loop itself comes in small increments. Measured with
// `npm run bench -- gateway` (server pinned to one core): added p99 at half load 5-9 ms with
// background threads, ~1 ms without. GATEHOUSE_V8_BACKGROUND=1 keeps them.
if (availableParallelism() === 1 && !process.env.GATEHOUSE_V8_BACKGROUND) {
  v8.setFlagsFromString(
    '--no-parallel-scavenge --no-concurrent-marking --no-concurrent-sweeping --no-parallel-compaction ' +
      '--no-parallel-pointer-update --no-concurrent-array-buffer-sweeping --no-concurrent-recompilation --no-concurrent-osr --no-concurrent-sparkplug',
  );
}

const root = path.resolve(import.meta.dirname, '..');
const bundle = path.join(root, 'dist/server/gatehouse.mjs');

function newestSource(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function bundleIsFresh() {
  if (process.env.GATEHOUSE_NO_BUNDLE) return false;
  try {
    return statSync(bundle).mtimeMs >= newestSource(path.join(root, 'src'));
  } catch {
    return false;
  }
}

if (bundleIsFresh()) {
  await import(bundle);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
