#!/usr/bin/env node
// Summarises a .cpuprofile (from --cpu-prof, see WARDEN_BENCH_PROFILE in bench/lib.js): the top
// functions by self time and by inclusive time, so a profile can be read without a browser.
// Usage: node bench/profile-top.js FILE.cpuprofile [--top N] [--filter TEXT]
import { parseArgs } from 'node:util';
import { readCpuProfile } from './lib.js';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' }, filter: { type: 'string' } },
});
if (positionals.length !== 1) {
  console.error('Usage: node bench/profile-top.js FILE.cpuprofile [--top N] [--filter TEXT]');
  process.exit(2);
}
const { profile, byId, parent } = readCpuProfile(positionals[0]);

// Sample time per node: timeDeltas[i] is the time before sample i.
const selfUs = new Map();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

const label = (n) => {
  const f = n.callFrame;
  const file = f.url ? f.url.replace(/^.*\/(node_modules\/|src\/|dist\/)/, '$1') : '';
  return `${f.functionName || '(anonymous)'} ${file}:${f.lineNumber + 1}`;
};
const self = new Map();
const inclusive = new Map();
for (const [id, us] of selfUs) {
  const n = byId.get(id);
  self.set(label(n), (self.get(label(n)) ?? 0) + us);
  // Each label once per stack, so recursion is not counted twice.
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const l = label(byId.get(cur));
    if (seen.has(l)) continue;
    seen.add(l);
    inclusive.set(l, (inclusive.get(l) ?? 0) + us);
  }
}
const show = (title, map) => {
  console.log(`\n${title} (total ${(total / 1000).toFixed(0)} ms)`);
  const rows = [...map].filter(([l]) => !opts.filter || l.includes(opts.filter)).sort((a, b) => b[1] - a[1]);
  for (const [l, us] of rows.slice(0, Number(opts.top))) console.log(`${((100 * us) / total).toFixed(1).padStart(5)} %  ${l}`);
};
show('self time', self);
show('inclusive time', inclusive);
