#!/usr/bin/env node
// `npm run build:web` (and `prepare`, so `npm ci` / `npm install` build it): the web console
// (web/, Vite + Preact) into web/dist, which Gatehouse serves at /console/. Without the dev
// dependencies (npm ci --omit=dev) there is nothing to build with: say so and succeed, and
// the server answers /console with a 503 that says how to build it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const vite = path.join(root, 'node_modules', 'vite', 'bin', 'vite.js');
if (!existsSync(vite)) {
  console.warn('build:web: vite is not installed (dev dependencies omitted?); the web console is not built.');
  process.exit(process.argv.includes('--if-possible') ? 0 : 1);
}
const r = spawnSync(process.execPath, [vite, 'build', 'web', '--logLevel', 'warn'], { stdio: 'inherit', cwd: root });
if (r.status === 0) console.log('build:web: web console built into web/dist');
process.exit(r.status ?? 1);
