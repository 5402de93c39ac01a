#!/usr/bin/env node
// Access lines written to /dev/null, CPU time per line: pino's sonic-boom buffering on its own
// (asynchronous, minLength 4096: what the logger used before), pino's default destination (a
// synchronous write per line), and Warden's line batcher in front of a synchronous sonic-boom (what
// src/telemetry/logger.ts builds for stdout), in alternating rounds. A loop with warm caches; the
// build A/B (bench/builds.js) is what measures it in a loaded sidecar.
// Usage: node bench/log-lines.js [--lines N] [--rounds N]
import { openSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { LineBatcher } from '../dist/telemetry/line-batcher.js';
import { median } from './lib.js';

const { values: opts } = parseArgs({ options: { lines: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '4' } } });
const LINES = Number(opts.lines);
const fd = openSync('/dev/null', 'w');

const writers = {
  'sonic-boom alone': () => pino.destination({ dest: fd, sync: false, minLength: 4096 }),
  'a write per line': () => pino.destination({ dest: fd, sync: true }),
  'line batcher': () => new LineBatcher(pino.destination({ dest: fd, sync: true, minLength: 0 })),
};
const prefix =
  '{"level":"info","time":1764427000000,"service":"demo","http.request.method":"POST","url.path":"/orders",' +
  '"http.route":"createOrder","http.response.status_code":201,"client.address":"127.0.0.1","network.protocol.version":"1.1",' +
  '"warden.request.id":"';

/** CPU µs per line, lines written 20 per event-loop turn, as requests end in a loaded sidecar. */
async function run(make) {
  const destination = make();
  const before = process.cpuUsage();
  let n = 0;
  await new Promise((done) => {
    const turn = () => {
      for (let i = 0; i < 20; i++, n++) destination.write(`${prefix}${n}","duration_ms":1.25,"msg":"request"}\n`);
      if (n < LINES) setImmediate(turn);
      else done();
    };
    turn();
  });
  destination.flushSync();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

const results = Object.fromEntries(Object.keys(writers).map((name) => [name, []]));
for (let round = 0; round < Number(opts.rounds); round++)
  for (const [name, make] of round % 2 ? Object.entries(writers).reverse() : Object.entries(writers)) results[name].push(await run(make));
for (const [name, us] of Object.entries(results))
  console.log(`${name.padEnd(18)} ${median(us).toFixed(2)} µs CPU per line (rounds ${us.map((u) => u.toFixed(2)).join(', ')})`);
