#!/usr/bin/env node
// Writes the flame graph of a .cpuprofile (from --cpu-prof; bench/side-profile.js keeps one per
// peer) as an SVG beside it, or to --out. Open it in any browser; hover a box for its share.
// --requests leaves out the start-up: only the samples from the first HTTP request's dispatch on.
// Usage: node bench/flame-graph.js FILE.cpuprofile [--requests] [--out FILE.svg] [--title TEXT] [--width PX]
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { REQUEST_DISPATCH, flameGraphSvg } from './flame-graph-svg.js';

const usage = 'Usage: node bench/flame-graph.js FILE.cpuprofile [--requests] [--out FILE.svg] [--title TEXT] [--width PX]';
let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      title: { type: 'string' },
      width: { type: 'string', default: '1200' },
      requests: { type: 'boolean', default: false },
    },
  });
} catch (err) {
  console.error(`flame-graph: ${err.message}\n${usage}`);
  process.exit(2);
}
const { values: opts, positionals } = parsed;
const width = Number(opts.width);
if (positionals.length !== 1 || !Number.isInteger(width) || width < 200) {
  console.error(usage);
  process.exit(2);
}
const [file] = positionals;
const out = opts.out ?? file.replace(/\.cpuprofile$/, '') + '.svg';
try {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const from = opts.requests ? REQUEST_DISPATCH : undefined;
  writeFileSync(out, flameGraphSvg(profile, { title: opts.title ?? file.split('/').pop(), width, from }));
} catch (err) {
  console.error(`flame-graph: ${file}: ${err.message}`);
  process.exit(1);
}
console.log(`written: ${out}`);
