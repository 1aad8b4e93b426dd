#!/usr/bin/env node
// Starts Gatehouse from the pre-built bundle (dist/server/gatehouse.mjs, made by
// scripts/build-server.mjs on `npm ci`) when it is newer than every source file, otherwise
// runs the TypeScript sources directly through tsx (no build step needed between a clone and a
// start). GATEHOUSE_NO_BUNDLE=1 forces the sources.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

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
