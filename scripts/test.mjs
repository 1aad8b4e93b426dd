#!/usr/bin/env node
// `npm test`: type-check, then every *.test.ts under src/ and test/ with Node's test runner
// (tsx loads TypeScript). Extra arguments are passed as file filters: `npm test -- users`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const filters = process.argv.slice(2);

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (name === 'node_modules') continue;
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.ts')) out.push(path.relative(root, p));
  }
  return out;
}

const files = ['src', 'test'].flatMap((d) => find(path.join(root, d))).sort()
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

if (!process.env.SKIP_TYPECHECK && filters.length === 0) {
  console.log('type-checking (tsc --noEmit) ...');
  const tc = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', root], { stdio: 'inherit', cwd: root });
  if (tc.status !== 0) process.exit(tc.status ?? 1);
  // console (issue 7): the SPA has its own tsconfig (DOM, JSX)
  const tw = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', path.join(root, 'web')], { stdio: 'inherit', cwd: root });
  if (tw.status !== 0) process.exit(tw.status ?? 1);
}

// >>> console (issue 7): the browser tests need the built console
if (!existsSync(path.join(root, 'web', 'dist', 'index.html')) && files.some((f) => f.includes('console'))) {
  console.log('building the web console (web/dist is missing) ...');
  const b = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-web.mjs')], { stdio: 'inherit', cwd: root });
  if (b.status !== 0) process.exit(b.status ?? 1);
}
// <<< console

console.log(`running ${files.length} test files ...`);
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  { stdio: 'inherit', cwd: root, env: { ...process.env, NODE_ENV: 'test' } },
);
process.exit(r.status ?? 1);
