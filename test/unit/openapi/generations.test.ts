/**
 * Each plan compiles its validators with ajv instances of its own (schema-compiler.ts): once a plan
 * is replaced and dropped, its schemas and validators are collected. With instances for the whole
 * process, ajv kept every schema of every reload — keyed by the schema object, a new one each
 * time — and a 150-operation document grew the heap from 36 to 393 MiB over 40 reloads
 * (docs/adversarial.md defect 116). Collected here: the schema objects of earlier compilations
 * (WeakRef, after a full GC).
 */
import t from 'tap';
import v8 from 'node:v8';
import vm from 'node:vm';
import { parseSidecarConfig } from '../../../src/config/load.js';
import type { OpenApiDocument } from '../../../src/openapi/document.js';
import { operationsOf } from '../../../src/openapi/operations.js';
import { compilePlan, type RouteMatch } from '../../../src/pipeline/plan.js';
import { testConfigYaml } from '../../support/sidecar.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** The document as a reload reads it: new objects each time. */
function document(): OpenApiDocument {
  const paths: Record<string, Record<string, unknown>> = {};
  for (let i = 0; i < 20; i++)
    paths[`/r${i}/{id}`] = {
      post: {
        operationId: `op${i}`,
        parameters: [
          { name: 'id', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } },
          { name: 'q', in: 'query', schema: { type: 'string', maxLength: 50, pattern: '^([a-z]+-?)*$' } },
        ],
        requestBody: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: { url: { type: 'string', format: 'url' }, at: { type: 'string', format: 'date-time' } },
              },
            },
          },
        },
        responses: {
          '200': {
            description: 'ok',
            content: { 'application/json': { schema: { type: 'object', properties: { id: { type: 'integer' } } } } },
          },
        },
      },
    };
  return { openapi: '3.1.0', paths };
}

t.test("a replaced plan's schemas and validators are collected", async (t) => {
  const yaml = await testConfigYaml('http://127.0.0.1:1', { openapi: { document: './openapi.yaml', validation: { responses: 'report' } } });
  const { config } = parseSidecarConfig('s.yaml', yaml);
  const schemas: WeakRef<object>[] = [];
  const plans: WeakRef<object>[] = [];
  const compile = () => {
    const operations = operationsOf(document());
    const op = operations[0];
    for (const s of [
      op?.parameters[1]?.schema,
      op?.requestBody?.content?.['application/json']?.schema,
      op?.responses['200']?.content?.['application/json']?.schema,
    ])
      if (s) schemas.push(new WeakRef(s));
    const plan = compilePlan(config, { operations });
    const match = plan.resolve('POST', '/r0/7') as RouteMatch;
    t.equal(match.route.id, 'op0');
    plans.push(new WeakRef(plan));
  };
  for (let i = 0; i < 6; i++) compile();
  t.equal(schemas.length, 18);
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  t.equal(plans.filter((p) => p.deref() !== undefined).length, 0, 'the plans are collected');
  t.equal(schemas.filter((s) => s.deref() !== undefined).length, 0, 'and so are the schemas their validators were compiled from');
});
