#!/usr/bin/env node
// Why Warden keeps per-request state on the request, not in a WeakMap keyed by a request object
// (docs/performance.md, "A WeakMap cache"): the same loop of short-lived "requests" (a small body
// Buffer and its parsed JSON), with and without a module-level WeakMap from body to parse, run
// under --trace-gc-nvp. Without it nothing survives a scavenge; with it every entry does, is
// promoted, and each scavenge walks the growing table until a mark-compact clears it.
// Usage: node bench/weakmap-scavenge.js [--requests 1000000] [--out FILE]
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchOptions, writeResult } from './lib.js';

const self = fileURLToPath(import.meta.url);
const root = resolve(dirname(self), '..');

if (process.argv[2] === '--child') {
  const withWeakMap = process.argv[3] === 'weakmap';
  const requests = Number(process.argv[4]);
  const parsed = new WeakMap();
  let items = 0;
  let done = 0;
  // 2 000 requests per timer turn, as a busy event loop would see them.
  const turn = setInterval(() => {
    for (let i = 0; i < 2000; i++) {
      const body = Buffer.from('{"customer":"ACME","items":[{"sku":"SKU-1","quantity":2}]}');
      const json = { value: JSON.parse(body.toString('utf8')) };
      if (withWeakMap) parsed.set(body, json);
      items += json.value.items.length;
    }
    done += 2000;
    if (done < requests) return;
    clearInterval(turn);
    // The parses are used, so that no optimiser can leave them out.
    if (items !== done) process.exitCode = 1;
  }, 1);
} else {
  const opts = benchOptions('node bench/weakmap-scavenge.js [--requests N] [--out FILE]', {
    requests: { type: 'string', default: '1000000' },
  });
  const run = (mode) => {
    const trace = execFileSync(process.execPath, ['--trace-gc-nvp', self, '--child', mode, opts.requests], { encoding: 'latin1' });
    const gcs = trace
      .split('\n')
      .filter((l) => l.includes(' gc='))
      .map((l) => Object.fromEntries(l.split(' ').flatMap((f) => (f.includes('=') ? [f.split('=')] : []))));
    const scavenges = gcs.filter((g) => g.gc === 's');
    const sum = (xs, field) => xs.reduce((a, g) => a + Number(g[field] ?? 0), 0);
    return {
      scavenges: scavenges.length,
      scavenge_pause_ms_total: Math.round(sum(scavenges, 'pause')),
      promoted_mb: Math.round(sum(scavenges, 'promoted') / 1e5) / 10,
      mark_compacts: gcs.length - scavenges.length,
    };
  };
  const result = {
    date: new Date().toISOString(),
    settings: { requests: Number(opts.requests) },
    plain: run('plain'),
    weakmap: run('weakmap'),
  };
  for (const mode of ['plain', 'weakmap']) {
    const r = result[mode];
    console.log(
      `${mode.padEnd(7)} ${r.scavenges} scavenges, ${r.scavenge_pause_ms_total} ms paused in them, ${r.promoted_mb} MB promoted, ${r.mark_compacts} mark-compacts`,
    );
  }
  console.log(`written: ${writeResult(root, 'weakmap-scavenge', result, opts.out)}`);
}
