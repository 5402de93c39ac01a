/**
 * JSON member names in another letter case, where the property is named only in a conditional, a
 * dependency or a negation (red team 29, F1: run by hand against Go 1.19's encoding/json, which
 * binds `ROLE` to the struct field `Role` whichever branch of the schema names it). Replayed here
 * against a Node backend that reads as Go does (test/support/go-reading-backend.ts): each case
 * variant is refused 400, and the same body in the declared spelling still reaches the backend.
 */
import t from 'tap';
import { fetchText, testAgent } from '../support/clients.js';
import { goJsonReading, startGoReadingBackend } from '../support/go-reading-backend.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

const op = (schema: string) => `
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema: ${schema}
      responses: { '200': { description: ok } }`;

const DOCUMENT_31 = `
openapi: 3.1.0
info: { title: t, version: '1' }
security: []
paths:
  /if:${op(`{ type: object, properties: { name: { type: string } }, if: { properties: { name: { const: a } }, required: [name] }, then: { properties: { role: { enum: [user] } } }, else: { properties: { limit: { maximum: 5 } } } }`)}
  /dependent:${op(`{ type: object, properties: { q: { type: string } }, dependentSchemas: { q: { properties: { limit: { maximum: 5 } } } } }`)}
  /not:${op(`{ type: object, not: { required: [role], properties: { role: { const: admin } } } }`)}
`;

const DOCUMENT_30 = `
openapi: 3.0.3
info: { title: t, version: '1' }
security: []
paths:
  /forbid:${op(`{ type: object, properties: { name: { type: string } }, not: { required: [role] } }`)}
`;

for (const [version, document, cases] of [
  [
    '3.1',
    DOCUMENT_31,
    [
      ['/if', '{"name":"a","role":"user"}', '{"name":"a","ROLE":"admin"}', 'role'],
      ['/if', '{"name":"b","limit":5}', '{"name":"b","Limit":9}', 'limit'],
      ['/dependent', '{"q":"x","limit":5}', '{"q":"x","LIMIT":9}', 'limit'],
      ['/not', '{"role":"user"}', '{"Role":"admin"}', 'role'],
    ],
  ],
  ['3.0', DOCUMENT_30, [['/forbid', '{"name":"x"}', '{"name":"x","Role":"admin"}', 'role']]],
] as const) {
  t.test(`OpenAPI ${version}: a case variant of a name declared only in if/then/else, dependentSchemas or not is refused`, async (t) => {
    const backend = await startGoReadingBackend();
    t.teardown(() => backend.close());
    const s = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(document), allow_public: true } });
    const agent = testAgent(s.ca);
    t.teardown(() => agent.close());
    const post = (path: string, body: string) =>
      fetchText(`${s.url}${path}`, agent, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    for (const [path, valid, variant, declared] of cases) {
      const hits = backend.hits;
      const ok = await post(path, valid);
      t.equal(ok.status, 200, `${path} ${valid}: the declared spelling passes`);
      t.equal(backend.hits, hits + 1, `${path} ${valid}: reached the backend`);
      // What Go reads of the variant: the declared field, with a value the schema refuses there.
      const go = goJsonReading(Buffer.from(variant)) as Record<string, unknown>;
      t.not(go[declared], null, `${path} ${variant}: Go binds it to ${declared}`);
      const r = await post(path, variant);
      t.equal(r.status, 400, `${path} ${variant}: refused`);
      t.match(r.json<{ detail: string }>().detail, new RegExp(`differs from the declared name "${declared}" only in letter case`), variant);
      t.equal(backend.hits, hits + 1, `${path} ${variant}: did not reach the backend`);
    }
  });
}
