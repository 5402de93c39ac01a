/**
 * What loading does to the document's schemas before they are dereferenced and compiled
 * (src/openapi/schema-rewrites.ts; red team round 2, a-ref-siblings.mjs and e-schema-keywords.mjs):
 * a `$ref`'s sibling keywords (3.1: applied beside it; 3.0: ignored, with a warning), 3.0's
 * boolean exclusiveMaximum/exclusiveMinimum, and formats Warden does not check (a warning).
 * The integration test (test/integration/openapi-ref-siblings.test.ts) has the red team's cases.
 */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOpenApiDocument, OpenApiError } from '../../../src/openapi/document.js';
import { operationsOf } from '../../../src/openapi/operations.js';
import { compileRequestValidator, type RequestValidator } from '../../../src/openapi/request-validator.js';
import { openApiFile } from '../../support/openapi-file.js';

const documentOf = (version: string, body: string, schemas = '', extra = '') => `openapi: ${version}
info: { title: t, version: '1' }
paths:
  /pets:
    post:
      requestBody: { required: true, content: { application/json: { schema: ${body} } } }
      responses: { '200': { description: ok } }
components:
  schemas:
    Id: { type: integer, minimum: 1 }
    Limit: { type: integer, minimum: 1, maximum: 100 }
${schemas}
${extra}`;

const BODY = '#/paths/~1pets/post/requestBody/content/application~1json/schema';

async function load(file: string): Promise<{ validator: RequestValidator; warnings: string[] }> {
  const warnings: string[] = [];
  const [op] = operationsOf(await loadOpenApiDocument(file, undefined, (w) => warnings.push(`${w.pointer}: ${w.message}`)));
  if (!op) throw new Error('no operation');
  return { validator: compileRequestValidator(op, { unknownQuery: 'allow' }), warnings };
}
const send = (v: RequestValidator, body: string) => v.body('application/json', { body: Buffer.from(body) });

t.test('3.1: a $ref and its siblings both apply, at every depth', async (t) => {
  const { validator: v, warnings } = await load(
    openApiFile(
      documentOf(
        '3.1.0',
        "{ type: object, properties: { n: { $ref: '#/components/schemas/Limit', maximum: 500, minimum: 0 }, id: { $ref: '#/components/schemas/Id', enum: [1, 2, 0] } } }",
      ),
    ),
  );
  t.match(send(v, '{"n":400}'), { pointer: '/body/n', message: 'must be <= 100' }, "Limit's maximum holds");
  t.match(send(v, '{"n":0}'), { pointer: '/body/n', message: 'must be >= 1' }, "Limit's minimum holds beside minimum: 0");
  t.match(send(v, '{"id":0}'), { pointer: '/body/id' }, "Id's minimum holds beside an enum that lists 0");
  t.equal(send(v, '{"n":50,"id":2}'), undefined);
  t.same(warnings, []);
});

t.test('3.1: unevaluatedProperties/unevaluatedItems beside a $ref see what the $ref evaluated (review of row 243)', async (t) => {
  const schemas = `    Base: { type: object, properties: { name: { type: string }, tag: { type: string } }, required: [name] }
    Pair: { type: array, prefixItems: [{ type: string }, { type: integer }] }`;
  const body = (props: string) =>
    `{ type: object, properties: { ${props}, list: { $ref: '#/components/schemas/Pair', unevaluatedItems: false } } }`;
  const { validator: v, warnings } = await load(
    openApiFile(
      documentOf(
        '3.1.0',
        body(
          "p: { $ref: '#/components/schemas/Base', unevaluatedProperties: false }, q: { $ref: '#/components/schemas/Base', required: [tag], unevaluatedProperties: false }",
        ),
        schemas,
      ),
    ),
  );
  // Before: the keyword sat in an allOf branch of its own, which evaluated no property: every body refused.
  t.equal(send(v, '{"p":{"name":"x"}}'), undefined, "Base's properties are evaluated: {name} passes");
  t.equal(send(v, '{"p":{"name":"x","tag":"t"}}'), undefined, 'and {name, tag}');
  t.match(send(v, '{"p":{"name":"x","evil":1}}'), { pointer: '/body/p' }, 'a property Base does not name is still refused');
  t.equal(send(v, '{"q":{"name":"x","tag":"t"}}'), undefined, 'beside another sibling: both apply');
  t.match(send(v, '{"q":{"name":"x"}}'), { pointer: '/body/q' }, 'the sibling required: [tag] holds');
  t.match(send(v, '{"q":{"name":"x","tag":"t","evil":1}}'), { pointer: '/body/q' });
  t.equal(send(v, '{"list":["a",1]}'), undefined, "unevaluatedItems sees Pair's prefixItems");
  t.match(send(v, '{"list":["a",1,true]}'), { pointer: '/body/list' }, 'an item past them is refused');
  t.same(warnings, []);
});

t.test('3.1: a Reference Object keeps its summary and description; a recursive schema with siblings loads', async (t) => {
  const doc = `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /nodes:
    post:
      parameters:
        - $ref: '#/components/parameters/Limit'
          description: how many, at most
      requestBody: { content: { application/json: { schema: { $ref: '#/components/schemas/Node', description: a tree } } } }
      responses:
        '200': { $ref: '#/components/responses/Ok', description: done }
components:
  parameters:
    Limit: { name: limit, in: query, schema: { type: integer, maximum: 10 } }
  responses:
    Ok: { description: ok }
  schemas:
    Node:
      type: object
      properties:
        value: { type: integer }
        children: { type: array, items: { $ref: '#/components/schemas/Node', required: [value] } }
`;
  const document = await loadOpenApiDocument(openApiFile(doc));
  const get = document.paths?.['/nodes']?.post as { parameters: { name: string; description: string }[] };
  t.match(get.parameters[0], { name: 'limit', description: 'how many, at most' }, 'the parameter, its description overridden');
  const [op] = operationsOf(document);
  if (!op) throw new Error('no operation');
  const v = compileRequestValidator(op, { unknownQuery: 'allow' });
  t.equal(send(v, '{"value":1,"children":[{"value":2,"children":[{"value":3}]}]}'), undefined);
  t.match(send(v, '{"value":1,"children":[{"value":2,"children":[{"children":[]}]}]}'), {
    pointer: '/body/children/0/children/0/value',
  });
  t.match(send(v, '{"children":[{"value":"x"}]}'), { pointer: '/body/children/0/value' }, "Node's own keywords hold inside");
  t.match(v.params({ params: {}, search: '?limit=11', headers: {} }), { pointer: '/query/limit' });
});

t.test('3.0: the siblings of a $ref are ignored, each place warned about once; readOnly: true and nullable: true are kept', async (t) => {
  const { validator: v, warnings } = await load(
    openApiFile(
      documentOf(
        '3.0.3',
        "{ type: object, properties: { n: { $ref: '#/components/schemas/Limit', maximum: 500, description: d }, id: { $ref: '#/components/schemas/Id', readOnly: true }, m: { $ref: '#/components/schemas/Limit', nullable: true } } }",
      ),
    ),
  );
  t.match(send(v, '{"n":400}'), { pointer: '/body/n', message: 'must be <= 100' }, "Limit's maximum, not the sibling's");
  t.equal(send(v, '{"n":100}'), undefined);
  t.match(send(v, '{"id":5}'), { pointer: '/body/id', message: /read-only/ }, 'readOnly beside $ref still refuses the property');
  t.equal(send(v, '{"m":null}'), undefined, 'nullable: true beside $ref is kept, as 3.0 tools read it: null is accepted');
  t.match(send(v, '{"m":400}'), { pointer: '/body/m' }, "and Limit's maximum still holds for a number");
  t.same(warnings, [
    `${BODY}/properties/n: "maximum" beside $ref is ignored (OpenAPI 3.0: a $ref's siblings SHALL be ignored); to apply it, write allOf: [{$ref: …}, {maximum: …}]`,
  ]);
});

t.test("a file a $ref names: 3.1 siblings are refused (its structure is not known); 3.0's are dropped with a warning", async (t) => {
  for (const version of ['3.1.0', '3.0.3']) {
    const dir = mkdtempSync(join(tmpdir(), 'warden-openapi-'));
    writeFileSync(
      join(dir, 'pets.yaml'),
      "NewPet: { $ref: '#/Pet', required: [tag] }\nPet: { type: object, required: [name] }\nSub: { $ref: '#/Pet', description: ok }\n",
    );
    const file = join(dir, 'openapi.yaml');
    writeFileSync(file, documentOf(version, "{ $ref: 'pets.yaml#/NewPet' }"));
    if (version === '3.1.0') {
      const error = await loadOpenApiDocument(file).catch((e: unknown) => e);
      t.type(error, OpenApiError);
      t.match(
        (error as Error).message,
        /^pets\.yaml#\/NewPet: a \$ref beside "required" in a referenced file is not supported .*write allOf: \[\{\$ref: …\}, \{required: …\}\]$/,
      );
      writeFileSync(
        join(dir, 'pets.yaml'),
        "NewPet: { $ref: '#/Pet', description: an annotation }\nPet: { type: object, required: [name] }\n",
      );
      const { validator } = await load(file);
      t.match(send(validator, '{}'), { pointer: '/body/name' }, 'an annotation beside it loads');
    } else {
      const { validator, warnings } = await load(file);
      t.match(send(validator, '{}'), { pointer: '/body/name' }, "Pet's required");
      t.equal(send(validator, '{"name":"x"}'), undefined, 'the ignored required: [tag]');
      t.match(warnings, [/^#: pets\.yaml#\/NewPet: "required" beside \$ref is ignored/]);
    }
  }
});

t.test('3.0: a boolean exclusiveMaximum/exclusiveMinimum (draft 4) is read as the bound it qualifies', async (t) => {
  const { validator: v, warnings } = await load(
    openApiFile(
      documentOf(
        '3.0.3',
        '{ type: object, properties: { a: { type: integer, maximum: 100, exclusiveMaximum: true, minimum: 0, exclusiveMinimum: true }, b: { type: integer, maximum: 10, exclusiveMaximum: false, minimum: 1, exclusiveMinimum: false } } }',
      ),
    ),
  );
  t.equal(send(v, '{"a":99,"b":10}'), undefined);
  t.match(send(v, '{"a":100}'), { pointer: '/body/a', message: 'must be < 100' });
  t.match(send(v, '{"a":0}'), { pointer: '/body/a', message: 'must be > 0' });
  t.equal(send(v, '{"b":1}'), undefined, 'false: the bound is inclusive');
  t.match(send(v, '{"b":11}'), { pointer: '/body/b', message: 'must be <= 10' });
  t.same(warnings, []);
  // In a parameter too (coerced from the query string).
  const doc = `openapi: 3.0.3
info: { title: t, version: '1' }
paths:
  /items:
    get:
      parameters: [{ name: limit, in: query, schema: { type: integer, maximum: 100, exclusiveMaximum: true } }]
      responses: { '200': { description: ok } }
`;
  const [op] = operationsOf(await loadOpenApiDocument(openApiFile(doc)));
  if (!op) throw new Error('no operation');
  const p = compileRequestValidator(op, { unknownQuery: 'allow' });
  t.match(p.params({ params: {}, search: '?limit=100', headers: {} }), { pointer: '/query/limit' });
  t.equal(p.params({ params: {}, search: '?limit=99', headers: {} }), undefined);
});

t.test('a format Warden does not check is an annotation: one warning per format, naming the first place it is reached', async (t) => {
  const { validator: v, warnings } = await load(
    openApiFile(
      documentOf(
        '3.1.0',
        "{ type: object, properties: { a: { type: string, format: x-sku }, b: { type: string, format: x-sku }, c: { type: string, format: decimal }, d: { type: integer, format: uint8 }, e: { $ref: '#/components/schemas/Code' } } }",
        '    Code: { type: string, format: char }',
      ),
    ),
  );
  t.same(warnings, [
    '#/components/schemas/Code/format: format "char" is not checked (an annotation): values are not held to it; use pattern, minimum/maximum or enum to constrain them',
    `${BODY}/properties/a/format: format "x-sku" is not checked (an annotation): values are not held to it; use pattern, minimum/maximum or enum to constrain them`,
  ]);
  t.equal(send(v, '{"a":"anything","e":"xyz"}'), undefined, 'and values pass it');
  t.match(send(v, '{"d":300}'), { pointer: '/body/d' });
});
