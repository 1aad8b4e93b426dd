// Summarise a V8 .cpuprofile (node --cpu-prof): top frames by self time, and by total time
// (inclusive) for frames matching an optional filter. Usage: node bench/prof-top.mjs file [N] [filter]
import { readFileSync } from 'node:fs';

const [file, nArg, filter] = process.argv.slice(2);
const N = Number(nArg ?? 30);
const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const dt = new Map();
for (let i = 0; i < prof.samples.length; i++) dt.set(prof.samples[i], (dt.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
const total = [...dt.values()].reduce((a, b) => a + b, 0);
const label = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/^.*node_modules\//, '~/').replace(/^file:\/\/.*\/src\//, 'src/')}:${n.callFrame.lineNumber + 1}`;
const self = new Map();
for (const n of prof.nodes) {
  const k = label(n);
  self.set(k, (self.get(k) ?? 0) + (dt.get(n.id) ?? 0));
}
// inclusive: sum of subtree, counted once per label per stack
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const incl = new Map();
for (const [id, t] of dt) {
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const k = label(byId.get(cur));
    if (seen.has(k)) continue;
    seen.add(k);
    incl.set(k, (incl.get(k) ?? 0) + t);
  }
}
const pct = (t) => ((t / total) * 100).toFixed(1).padStart(5) + '%';
console.log(`total ${(total / 1e6).toFixed(1)} s sampled\n-- self --`);
for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, N)) console.log(pct(t), k);
console.log('-- inclusive --');
for (const [k, t] of [...incl].sort((a, b) => b[1] - a[1]).filter(([k]) => !filter || k.includes(filter)).slice(0, N)) console.log(pct(t), k);
