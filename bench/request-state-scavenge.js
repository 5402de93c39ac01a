#!/usr/bin/env node
// Why Warden keeps per-request state on the request or in slots, not in a collection keyed per
// request (docs/performance.md, "A WeakMap cache" and "A Map of requests in flight"): one loop of
// short-lived "requests" (a small body Buffer and its parsed JSON; 32 in flight at a time, each with
// a tracing-like record), run under --trace-gc-nvp in three ways:
//   plain    nothing kept beyond the request (how the sidecar keeps both now: the parse and the
//            trace record live on the request itself);
//   weakmap  a module-level WeakMap from body to parse (src/net/json-body.ts's old cache);
//   map      a Map from request id to its record, set when it starts and deleted when it ends
//            (src/telemetry/request-tracing.ts's old registry).
// (Results before 2026-12-01 have a fourth mode, `slots`: the same registry through a slot array,
// src/telemetry/open-requests.ts, which the trace record on the request replaced.)
// A collection that outlives the young generation keeps what it pointed at through scavenges, so
// what should have died with the request is promoted.
// Usage: node bench/request-state-scavenge.js [--requests 1000000] [--out FILE]
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchOptions, writeResult } from './lib.js';

const self = fileURLToPath(import.meta.url);
const root = resolve(dirname(self), '..');
const MODES = ['plain', 'weakmap', 'map'];
const IN_FLIGHT = 32;

if (process.argv[2] === '--child') {
  const mode = process.argv[3];
  const requests = Number(process.argv[4]);
  const parsed = new WeakMap();
  const open = new Map();
  // The ids of the requests in flight, oldest first around the ring: a fixed array, overwritten.
  const flying = new Array(IN_FLIGHT).fill(undefined);
  let items = 0;
  let done = 0;
  // 2 000 requests per timer turn, as a busy event loop would see them.
  const turn = setInterval(() => {
    for (let i = 0; i < 2000; i++) {
      const n = done + i;
      const body = Buffer.from('{"customer":"ACME","items":[{"sku":"SKU-1","quantity":2}]}');
      const json = { value: JSON.parse(body.toString('utf8')) };
      if (mode === 'weakmap') parsed.set(body, json);
      if (mode === 'map') {
        const ended = flying[n % IN_FLIGHT];
        if (ended !== undefined) open.delete(ended);
        const id = `request-${n}`;
        open.set(id, { id, attributes: { 'url.path': '/orders', 'warden.request.id': id }, json });
        flying[n % IN_FLIGHT] = id;
      }
      items += json.value.items.length;
    }
    done += 2000;
    if (done < requests) return;
    clearInterval(turn);
    // The parses are used, so that no optimiser can leave them out.
    if (items !== done) process.exitCode = 1;
  }, 1);
} else {
  const opts = benchOptions('node bench/request-state-scavenge.js [--requests N] [--out FILE]', {
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
  const result = { date: new Date().toISOString(), settings: { requests: Number(opts.requests), in_flight: IN_FLIGHT } };
  for (const mode of MODES) {
    const r = (result[mode] = run(mode));
    console.log(
      `${mode.padEnd(7)} ${r.scavenges} scavenges, ${r.scavenge_pause_ms_total} ms paused in them, ${r.promoted_mb} MB promoted, ${r.mark_compacts} mark-compacts`,
    );
  }
  console.log(`written: ${writeResult(root, 'request-state-scavenge', result, opts.out)}`);
}
