/**
 * A `$ref` with sibling keywords, through a real sidecar (red team round 2, a-ref-siblings.mjs).
 * The dereferencer merged the siblings over the referenced schema, arrays replaced: `{$ref:
 * NewPet, required: [tag]}` forwarded `{"tag":"x"}` though NewPet requires name and species, and
 * `{$ref: Limit, maximum: 500}` forwarded `?size=400` past Limit's `maximum: 100`. In 3.1 both
 * apply (allOf); in 3.0 the siblings are ignored, with a warning in the log naming the pointer.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar, type Teardown } from '../support/sidecar.js';

const documentOf = (version: string) => `openapi: ${version}
info: { title: t, version: '1' }
paths:
  /pets:
    post:
      operationId: createPet
      security: []
      requestBody:
        required: true
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/NewPet'
              required: [tag]
      responses: { '201': { description: ok } }
  /items:
    get:
      operationId: listItems
      security: []
      parameters:
        - name: limit
          in: query
          schema: { $ref: '#/components/schemas/Limit', description: page size }
        - name: size
          in: query
          schema: { $ref: '#/components/schemas/Limit', maximum: 500 }
      responses: { '200': { description: ok } }
components:
  schemas:
    NewPet:
      type: object
      required: [name, species]
      properties:
        name: { type: string, minLength: 1 }
        species: { type: string, enum: [cat, dog] }
        tag: { type: string }
    Limit: { type: integer, minimum: 1, maximum: 100 }
`;

async function sidecarFor(t: Teardown, version: string) {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(documentOf(version)), allow_public: true } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const post = (body: string) =>
    fetchText(`${s.url}/pets`, agent, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then((r) => r.status);
  const get = (path: string) => fetchText(`${s.url}${path}`, agent).then((r) => r.status);
  return { backend, s, post, get };
}

t.test('3.1: the siblings of a $ref apply with the referenced schema, not instead of it', async (t) => {
  const { backend, post, get } = await sidecarFor(t, '3.1.0');
  t.equal(await post('{"name":"tom","species":"cat","tag":"x"}'), 200, 'a body that meets both');
  t.equal(await post('{"name":"tom","species":"cat"}'), 400, "the sibling's required: tag");
  t.equal(await post('{"tag":"x"}'), 400, "NewPet's required: name and species (the sibling replaced them)");
  t.equal(await get('/items?limit=1000'), 400, 'control: Limit with an annotation beside it');
  t.equal(await get('/items?size=400'), 400, "Limit's maximum: 100 holds beside maximum: 500");
  t.equal(await get('/items?size=50&limit=5'), 200);
  t.same(
    backend.requests.map((r) => `${r.method} ${r.url}`),
    ['POST /pets', 'GET /items?size=50&limit=5'],
    'only the valid requests reached the backend',
  );
});

t.test('3.0: the siblings of a $ref are ignored, as the specification says, and the log says so', async (t) => {
  const { backend, s, post, get } = await sidecarFor(t, '3.0.3');
  t.equal(await post('{"tag":"x"}'), 400, "NewPet's required: name and species");
  t.equal(await post('{"name":"tom","species":"cat"}'), 200, 'the ignored sibling required nothing');
  t.equal(await get('/items?size=400'), 400, "Limit's maximum: 100");
  t.equal(backend.requests.length, 1);
  const warnings = s.logs.filter((l) => l.level === 'warn').map((l) => String(l.msg));
  t.match(warnings, [
    /openapi\.document: .*openapi\.yaml #\/paths\/~1pets\/post\/requestBody\/content\/application~1json\/schema: "required" beside \$ref is ignored .*allOf/,
    /#\/paths\/~1items\/get\/parameters\/1\/schema: "maximum" beside \$ref is ignored/,
  ]);
  t.equal(warnings.length, 2, 'one warning each; an annotation beside $ref is not warned about');
});

t.test('3.1: unevaluatedProperties: false beside a $ref sees the properties the $ref evaluated (review of row 243)', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const doc = `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /pets:
    post:
      operationId: createPet
      security: []
      requestBody:
        required: true
        content: { application/json: { schema: { $ref: '#/components/schemas/Base', unevaluatedProperties: false } } }
      responses: { '200': { description: ok } }
components:
  schemas:
    Base: { type: object, properties: { name: { type: string }, tag: { type: string } }, required: [name] }
`;
  const s = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(doc), allow_public: true } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const post = (body: string) =>
    fetchText(`${s.url}/pets`, agent, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then((r) => r.status);
  t.equal(await post('{"name":"x"}'), 200, 'a valid body passes (before: 400, every body was refused)');
  t.equal(await post('{"name":"x","tag":"t"}'), 200);
  t.equal(await post('{"name":"x","evil":1}'), 400, 'a property Base does not name is refused');
  t.equal(backend.requests.length, 2);
});
