/**
 * A document read from a file goes through `yaml`'s alias bound first, as a fetched one does: the
 * parser's own js-yaml has none, and a 1 KB file of anchors used twice per level expanded to 2^N
 * nodes that validation and dereferencing walked (24 levels: `config check` 9–22 s).
 */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOpenApiDocument, OpenApiError } from '../../../src/openapi/document.js';
import { repoRoot } from '../../support/sidecar.js';

function aliasChain(levels: number): string {
  const lines = [
    'openapi: 3.0.3',
    "info: {title: t, version: '1'}",
    'paths:',
    '  /a:',
    '    get:',
    '      operationId: a',
    "      responses: {'200': {description: ok}}",
    'components:',
    '  schemas:',
    '    L0: &l0 {type: string}',
  ];
  for (let i = 1; i <= levels; i++) lines.push(`    L${i}: &l${i} {allOf: [*l${i - 1}, *l${i - 1}]}`);
  return `${lines.join('\n')}\n`;
}

t.test('a YAML file whose aliases expand exponentially is refused before it is walked', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-openapi-'));
  const file = join(dir, 'openapi.yaml');
  writeFileSync(file, aliasChain(24));
  const error = await loadOpenApiDocument(file).catch((e: unknown) => e);
  t.type(error, OpenApiError);
  t.match((error as Error).message, /cannot read .*openapi\.yaml \(.*alias/i);
  // A few aliases, as documents use them, still load.
  writeFileSync(file, aliasChain(3));
  const doc = await loadOpenApiDocument(file);
  t.ok(doc.paths?.['/a']);
});

t.test('a document file is read up to its bound: /dev/zero is refused, not read for ever', async (t) => {
  const error = await loadOpenApiDocument('/dev/zero').catch((e: unknown) => e);
  t.type(error, OpenApiError);
  t.match((error as Error).message, 'cannot read /dev/zero (larger than 16 MiB)');
  const petstore = await loadOpenApiDocument(join(repoRoot, 'test/fixtures/openapi/petstore-3.0.yaml'));
  t.ok(petstore.paths, 'an ordinary file loads');
});

t.test('a $ref to an empty file is refused, naming the file: its schema would check nothing', async (t) => {
  // A reload after `: > pet.yaml` served every body unchecked, and said it had reloaded.
  const dir = mkdtempSync(join(tmpdir(), 'warden-openapi-'));
  const file = join(dir, 'openapi.yaml');
  writeFileSync(
    file,
    [
      'openapi: 3.0.3',
      "info: {title: t, version: '1'}",
      'paths:',
      '  /pets:',
      '    post:',
      '      operationId: addPet',
      '      requestBody: {content: {application/json: {schema: {$ref: ./pet.yaml}}}}',
      "      responses: {'200': {description: ok}}",
      '',
    ].join('\n'),
  );
  for (const [content, what] of [
    ['', 'empty'],
    ['# nothing but a comment\n', 'empty'],
    ['"x"\n', 'a string'],
  ] as const) {
    writeFileSync(join(dir, 'pet.yaml'), content);
    const error = await loadOpenApiDocument(file).catch((e: unknown) => e);
    t.type(error, OpenApiError, `${JSON.stringify(content)}: refused`);
    t.match((error as OpenApiError).message, `is ${what}, not a YAML or JSON object: a $ref to it would check nothing`);
    t.match((error as OpenApiError).pointer, /pet\.yaml$/);
  }
  writeFileSync(join(dir, 'pet.yaml'), 'type: object\nrequired: [name]\n');
  t.ok((await loadOpenApiDocument(file)).paths?.['/pets'], 'an object loads');
});

t.test('a schema that is there but empty (a $ref to a definition with no value, `schema: ~`) is refused', async (t) => {
  // `Order:` emptied in schemas.yaml and a SIGHUP: the body went unchecked, and the reload said so.
  const { operationsOf } = await import('../../../src/openapi/operations.js');
  const dir = mkdtempSync(join(tmpdir(), 'warden-openapi-'));
  const file = join(dir, 'openapi.yaml');
  const documentWith = (body: string, parameter = '{type: string}') =>
    [
      'openapi: 3.0.3',
      "info: {title: t, version: '1'}",
      'paths:',
      '  /orders:',
      '    post:',
      '      operationId: addOrder',
      `      parameters: [{name: tag, in: query, schema: ${parameter}}]`,
      `      requestBody: {content: {application/json: {schema: ${body}}}}`,
      "      responses: {'200': {description: ok}}",
      '',
    ].join('\n');
  writeFileSync(join(dir, 'schemas.yaml'), 'Order:\nItem: {type: object}\n');
  for (const [body, parameter, pointer, message] of [
    [
      "{$ref: './schemas.yaml#/Order'}",
      undefined,
      '#/paths/~1orders/post/requestBody/content/application~1json/schema',
      /is empty \(null or a scalar/,
    ],
    // Inline, the document's own schema check refuses it already.
    ['~', undefined, '#/paths/~1orders/post/requestBody/content/application~1json/schema', /must be object/],
    [
      "{$ref: './schemas.yaml#/Item'}",
      "{$ref: './schemas.yaml#/Order'}",
      '#/paths/~1orders/post/parameters',
      /parameter "tag" in query: schema is empty/,
    ],
  ] as const) {
    writeFileSync(file, documentWith(body, parameter));
    const error = await loadOpenApiDocument(file)
      .then((doc) => operationsOf(doc))
      .catch((e: unknown) => e);
    t.type(error, OpenApiError, `${body} / ${parameter ?? 'string'}: refused`);
    t.equal((error as OpenApiError).pointer, pointer);
    t.match((error as OpenApiError).message, message);
  }
  writeFileSync(file, documentWith("{$ref: './schemas.yaml#/Item'}"));
  t.equal(operationsOf(await loadOpenApiDocument(file)).length, 1, 'a schema with a value loads');
});

t.test('a document the OpenAPI schema refuses is named: the unknown key, a path without "/", Swagger 2.0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-openapi-'));
  const head = 'openapi: 3.0.3\ninfo: { title: t, version: "1" }\n';
  const ok = '      responses: { "200": { description: ok } }\n';
  for (const [text, pointer, message] of [
    [
      `${head}paths:\n  /a:\n    get:\n${ok}      bogus: 1\n`,
      '#/paths/~1a/get',
      'unknown key "bogus" (not an OpenAPI field; extensions start "x-")',
    ],
    [`${head}paths:\n  a:\n    get:\n${ok}`, '#/paths', 'unknown key "a": a path must start with "/"'],
    [`${head}paths: {}\nextra: 1\n`, '#', 'unknown key "extra" (not an OpenAPI field; extensions start "x-")'],
    [
      `${head}paths:\n  /a:\n    get:\n${ok}      parameters: [{ name: q, in: qurey, schema: { type: string } }]\n`,
      '#/paths/~1a/get/parameters/0/in',
      'must be one of "query", "header"',
    ],
    [
      'swagger: "2.0"\ninfo: { title: t, version: "1" }\npaths: {}\n',
      '#/swagger',
      'Swagger "2.0" (OpenAPI 2) is not supported: convert the document to OpenAPI 3 (e.g. with swagger2openapi)',
    ],
  ] as const) {
    const file = join(dir, 'openapi.yaml');
    writeFileSync(file, text);
    const error = await loadOpenApiDocument(file).catch((e: unknown) => e);
    t.match(error, { pointer, message }, message);
  }
});
