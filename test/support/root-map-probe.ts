/**
 * Run as a child with `--import tsx --allow-natives-syntax` (test/unit/config/ajv-codegen.test.ts):
 * compiles schemas, then prints whether V8 can still record a new first property added to `{}` as
 * a shared map transition, `{"shared":true}`, or has run out of room (1 536 transitions from that
 * map), `{"shared":false}`: then such objects each get a map of their own.
 *
 * A full (mark-compact) GC clears transitions to maps no object uses any more, so one between the
 * compile and the probe makes room again and the answer means nothing: the parent runs this with an
 * old space large enough that none is due, and the probe counts the major GCs it saw (`majorGcs`),
 * which the parent requires to be 0.
 *
 * PROBE=ajv-default compiles the sidecar schema with ajv's default code generation (the
 * control); PROBE=warden runs Warden's own loaders: the sidecar schema, the OpenAPI meta-schema
 * and every request validator of the petstore fixtures.
 */
import { join } from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { Ajv } from 'ajv';
import { parseSidecarConfig } from '../../src/config/load.js';
import { sidecarSchema } from '../../src/config/sidecar-schema.js';
import { loadOpenApiDocument } from '../../src/openapi/document.js';
import { operationsOf } from '../../src/openapi/operations.js';
import { compileRequestValidator } from '../../src/openapi/request-validator.js';

let majorGcs = 0;
const gcs = new PerformanceObserver((list) => {
  for (const entry of list.getEntries())
    if ((entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majorGcs++;
});
gcs.observe({ entryTypes: ['gc'] });

const fixtures = join(import.meta.dirname, '../fixtures/openapi');

if (process.env.PROBE === 'ajv-default') {
  new Ajv({ allErrors: true, useDefaults: true, coerceTypes: true, verbose: true, passContext: true, strict: false }).compile(
    sidecarSchema,
  );
} else {
  try {
    parseSidecarConfig('probe.yaml', 'upstream: { url: "http://127.0.0.1:1" }\n');
  } catch {
    // Missing listeners: the schema was compiled all the same, which is what is probed.
  }
  for (const file of ['petstore-3.0.yaml', 'petstore-3.1.yaml']) {
    for (const op of operationsOf(await loadOpenApiDocument(join(fixtures, file)))) compileRequestValidator(op, { unknownQuery: 'refuse' });
  }
}

// A key no code has used before: adding it to `{}` must add a transition from the empty object's map.
const key = `probe_${process.pid}_${Date.now()}`;
const withKey = (): object => {
  const o: Record<string, number> = {};
  o[key] = 1;
  return o;
};
// V8's natives syntax is not TypeScript: the one call is compiled from a string (the child runs with --allow-natives-syntax).
// eslint-disable-next-line @typescript-eslint/no-implied-eval
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;
const shared = haveSameMap(withKey(), withKey());
// GC entries arrive on a later turn of the event loop.
await new Promise((resolve) => setTimeout(resolve, 50));
gcs.disconnect();
console.log(JSON.stringify({ shared, majorGcs }));
