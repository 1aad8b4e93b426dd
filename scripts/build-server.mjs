#!/usr/bin/env node
// Builds the server into one ES module (dist/server/gatehouse.mjs) with esbuild, so a start
// loads one pre-compiled file instead of compiling TypeScript through tsx: issue 9 measured
// ~1.8 s and ~170 MB with tsx. bin/gatehouse.mjs uses the build when it is newer than every
// file under src/ (and falls back to tsx otherwise). Native packages (better-sqlite3,
// @node-rs/argon2) and optional ones loaded only when configured stay outside the bundle.
// Runs from `prepare` (npm ci / npm install); `--if-possible` succeeds without esbuild.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const require = createRequire(path.join(root, 'package.json'));
let esbuild;
try {
  esbuild = require('esbuild');
} catch {
  console.warn('build:server: esbuild is not installed; Gatehouse will start through tsx (slower).');
  process.exit(process.argv.includes('--if-possible') ? 0 : 1);
}
// Placed two levels below the root, as the sources are, so paths computed from
// import.meta.dirname (src/console/static.ts → ../../web/dist) resolve the same.
const outfile = path.join(root, 'dist/server/gatehouse.mjs');
mkdirSync(path.dirname(outfile), { recursive: true });
const t0 = Date.now();
try {
  const r = await esbuild.build({
    entryPoints: [path.join(root, 'src/cli/main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    minifySyntax: true,
    legalComments: 'none',
    metafile: true,
    // Native addons, and packages only some deployments load (they are imported lazily).
    external: ['better-sqlite3', '@node-rs/argon2', 'pg-native', 'ioredis', 'nodemailer', 'smtp-server', 'pg'],
    // CommonJS dependencies inside an ES module bundle need require and __filename.
    banner: {
      js: "import { createRequire as __ghCreateRequire } from 'node:module'; import { fileURLToPath as __ghFileURLToPath } from 'node:url'; const require = __ghCreateRequire(import.meta.url); const __filename = __ghFileURLToPath(import.meta.url); const __dirname = import.meta.dirname;",
    },
    logLevel: 'warning',
  });
  writeFileSync(path.join(root, 'dist/server/meta.json'), JSON.stringify(r.metafile));
  console.log(`build:server: dist/server/gatehouse.mjs built in ${Date.now() - t0} ms`);
} catch (e) {
  console.error(`build:server: failed (${e.message}); Gatehouse will start through tsx.`);
  process.exit(process.argv.includes('--if-possible') ? 0 : 1);
}
if (!existsSync(outfile)) process.exit(1);
