/**
 * A discriminator selects the branch by the property's value, as Jackson, System.Text.Json and
 * pydantic do. ajv's own keyword refused the shape generators emit — branches by $ref, with a
 * `mapping` ("mapping is not supported") or without (`"properties/kind" must have "const" or
 * "enum"`) — so the sidecar did not start (defect 174). Documents are loaded and dereferenced as
 * the sidecar loads them: the mapping is resolved through the identity of the dereferenced objects.
 */
import t from 'tap';
import { loadOpenApiDocument, OpenApiError } from '../../../src/openapi/document.js';
import { operationsOf } from '../../../src/openapi/operations.js';
import { compileRequestValidator, type RequestValidator } from '../../../src/openapi/request-validator.js';
import { openApiFile } from '../../support/openapi-file.js';

const CAT =
  '{ type: object, required: [kind], properties: { kind: { type: string }, name: { type: string }, lives: { type: integer, maximum: 9 } } }';
const DOG =
  '{ type: object, required: [kind], properties: { kind: { type: string }, name: { type: string }, bark: { type: string, maxLength: 3 } } }';

/** A document whose POST /pets body is `body`, with `schemas` as components.schemas. */
const documentOf = (schemas: string, body: string, version = '3.0.3') => `openapi: ${version}
info: { title: t, version: '1' }
components:
  schemas:
${schemas}
paths:
  /pets:
    post:
      requestBody: { required: true, content: { application/json: { schema: ${body} } } }
      responses: { '200': { description: ok } }
`;
const petsOf = (discriminator: string, version?: string) =>
  documentOf(
    `    Cat: ${CAT}\n    Dog: ${DOG}`,
    `{ oneOf: [$ref: '#/components/schemas/Cat', $ref: '#/components/schemas/Dog'], discriminator: ${discriminator} }`,
    version,
  );
const BODY = '#/paths/~1pets/post/requestBody/content/application~1json/schema';

async function validatorOf(text: string): Promise<RequestValidator> {
  const [op] = operationsOf(await loadOpenApiDocument(openApiFile(text)));
  if (!op) throw new Error('no operation');
  return compileRequestValidator(op, { unknownQuery: 'allow' });
}
const send = (v: RequestValidator, body: string) => v.body('application/json', { body: Buffer.from(body) });

t.test('dereferencing keeps identity: a $ref branch is the component object the mapping names', async (t) => {
  const doc = (await loadOpenApiDocument(openApiFile(petsOf('{ propertyName: kind }')))) as unknown as {
    components: { schemas: Record<string, unknown> };
    paths: Record<string, { post: { requestBody: { content: Record<string, { schema: { oneOf: unknown[] } }> } } }>;
  };
  const { oneOf } = doc.paths['/pets']?.post.requestBody.content['application/json']?.schema ?? { oneOf: [] };
  t.equal(oneOf[0], doc.components.schemas.Cat);
  t.equal(oneOf[1], doc.components.schemas.Dog);
});

for (const [label, mapping, version] of [
  ['mapping by $ref', "{ cat: '#/components/schemas/Cat', dog: '#/components/schemas/Dog' }", '3.0.3'],
  ['mapping by bare name', '{ cat: Cat, dog: Dog }', '3.0.3'],
  ['OpenAPI 3.1, mapping by $ref', "{ cat: '#/components/schemas/Cat', dog: '#/components/schemas/Dog' }", '3.1.0'],
]) {
  t.test(`${label}: the branch is the one the value maps to`, async (t) => {
    const v = await validatorOf(petsOf(`{ propertyName: kind, mapping: ${mapping} }`, version));
    t.equal(await send(v, '{"kind":"cat","name":"Tom"}'), undefined, 'a body both branches accept is a Cat by its kind (oneOf refused it)');
    t.equal(await send(v, '{"kind":"dog","name":"Rex","bark":"wuf"}'), undefined);
    t.same(await send(v, '{"kind":"cat","lives":99}'), { pointer: '/body/lives', message: 'must be <= 9' }, "Cat's maximum");
    t.equal(await send(v, '{"kind":"dog","lives":99}'), undefined, 'a Dog has no bound on lives');
    t.match(await send(v, '{"kind":"dog","bark":"woof"}'), { pointer: '/body/bark' }, "Dog's maxLength");
    t.match(
      await send(v, '{"kind":"bird"}'),
      { pointer: '/body/kind', message: 'must be equal to one of the allowed values' },
      'unknown value',
    );
    t.match(await send(v, '{"kind":"Cat"}'), { pointer: '/body/kind' }, 'an explicit mapping replaces the implicit name');
    t.same(await send(v, '{"name":"Tom"}'), { pointer: '/body/kind', message: 'is required' }, 'missing property');
    t.match(await send(v, '{"kind":5}'), { pointer: '/body/kind', message: 'must be string' });
    t.match(await send(v, '[{"kind":"cat"}]'), { pointer: '/body', message: 'must be object' });
  });
}

t.test('without a mapping, the value is the branch component name', async (t) => {
  const v = await validatorOf(petsOf('{ propertyName: kind }'));
  t.equal(await send(v, '{"kind":"Cat","name":"Tom"}'), undefined);
  t.same(await send(v, '{"kind":"Cat","lives":99}'), { pointer: '/body/lives', message: 'must be <= 9' });
  t.equal(await send(v, '{"kind":"Dog","lives":99}'), undefined);
  t.match(await send(v, '{"kind":"cat"}'), { pointer: '/body/kind' }, 'the name, not a spelling of it');
});

t.test('branches that give the property a const or enum are selected by it (the shape ajv took)', async (t) => {
  const v = await validatorOf(
    documentOf(
      `    Cat: { type: object, properties: { kind: { type: string, enum: [cat, kitten] }, lives: { type: integer, maximum: 9 } } }
    Dog: { type: object, properties: { kind: { type: string, enum: [dog] } } }`,
      "{ oneOf: [$ref: '#/components/schemas/Cat', $ref: '#/components/schemas/Dog'], discriminator: { propertyName: kind } }",
    ),
  );
  t.equal(await send(v, '{"kind":"kitten","lives":3}'), undefined);
  t.match(await send(v, '{"kind":"kitten","lives":10}'), { pointer: '/body/lives' });
  t.equal(await send(v, '{"kind":"dog","lives":10}'), undefined);
  t.match(await send(v, '{"kind":"Cat"}'), { pointer: '/body/kind' });
});

t.test('a mapping the rewrite cannot follow is refused at load, naming its pointer', async (t) => {
  const refused = async (text: string) => {
    const err = await validatorOf(text).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.type(err, OpenApiError);
    return err as OpenApiError;
  };
  t.match(await refused(petsOf("{ propertyName: kind, mapping: { cat: '#/components/schemas/Kat' } }")), {
    pointer: `${BODY}/discriminator/mapping/cat`,
    message: /"#\/components\/schemas\/Kat" names no schema in components\.schemas/,
  });
  t.match(await refused(petsOf("{ propertyName: kind, mapping: { cat: 'other.yaml#/Cat' } }")), {
    pointer: `${BODY}/discriminator/mapping/cat`,
  });
  const bird = documentOf(
    `    Cat: ${CAT}\n    Dog: ${DOG}\n    Bird: { type: object }`,
    "{ oneOf: [$ref: '#/components/schemas/Cat', $ref: '#/components/schemas/Dog'], discriminator: { propertyName: kind, mapping: { bird: Bird } } }",
  );
  t.match(await refused(bird), { pointer: `${BODY}/discriminator/mapping/bird`, message: /is not one of the oneOf branches/ });
  const inline = documentOf(`    Cat: ${CAT}`, '{ oneOf: [{ type: object }, { type: object }], discriminator: { propertyName: kind } }');
  t.match(await refused(inline), { pointer: `${BODY}/discriminator`, message: /selects no schema/ });
});

/** The allOf pattern: the discriminator on the base, each subtype `allOf: [Pet, {...}]`; a Cat's friend is any Pet. */
const inherited = (mapping: string, body: string) =>
  documentOf(
    `    Pet: { type: object, required: [petType], properties: { petType: { type: string }, name: { type: string } }, discriminator: { propertyName: petType${mapping} } }
    Cat: { allOf: [$ref: '#/components/schemas/Pet', { properties: { lives: { type: integer, maximum: 9 }, friend: { $ref: '#/components/schemas/Pet' } } }] }
    Dog: { allOf: [$ref: '#/components/schemas/Pet', { properties: { bark: { type: string, maxLength: 3 } } }] }`,
    body,
  );

t.test('allOf pattern: the base selects its subtype by value; inside it, the base is not selected again', async (t) => {
  const v = await validatorOf(inherited(', mapping: { cat: Cat, dog: Dog }', "{ $ref: '#/components/schemas/Pet' }"));
  t.equal(await send(v, '{"petType":"cat","lives":3}'), undefined);
  t.same(await send(v, '{"petType":"cat","lives":99}'), { pointer: '/body/lives', message: 'must be <= 9' });
  t.equal(await send(v, '{"petType":"dog","lives":99}'), undefined);
  t.match(await send(v, '{"petType":"dog","bark":"woof"}'), { pointer: '/body/bark' });
  t.match(await send(v, '{"petType":"pet"}'), { pointer: '/body/petType' }, 'the base itself is not a value unless mapped');
  t.match(await send(v, '{"petType":"cat","name":5}'), { pointer: '/body/name' }, "the base's own properties apply");
  t.same(await send(v, '{"petType":"cat","friend":{"petType":"cat","lives":99}}'), {
    pointer: '/body/friend/lives',
    message: 'must be <= 9',
  });
  t.match(
    await send(v, '{"petType":"cat","friend":{"petType":"fish"}}'),
    { pointer: '/body/friend/petType' },
    'a nested Pet selects again',
  );

  const cat = await validatorOf(inherited(', mapping: { cat: Cat, dog: Dog }', "{ $ref: '#/components/schemas/Cat' }"));
  t.equal(await send(cat, '{"petType":"cat","lives":3}'), undefined, 'a subtype as the body');
  t.match(await send(cat, '{"petType":"cat","lives":99}'), { pointer: '/body/lives' });
  t.match(await send(cat, '{"petType":"fish"}'), { pointer: '/body/petType' }, "through its allOf the base's discriminator applies");
});

t.test('allOf pattern without a mapping: the subtypes are the components whose allOf holds the base, by name', async (t) => {
  const v = await validatorOf(inherited('', "{ $ref: '#/components/schemas/Pet' }"));
  t.equal(await send(v, '{"petType":"Cat","lives":3}'), undefined);
  t.match(await send(v, '{"petType":"Cat","lives":99}'), { pointer: '/body/lives' });
  t.match(await send(v, '{"petType":"Dog","bark":"woof"}'), { pointer: '/body/bark' });
  t.match(await send(v, '{"petType":"cat"}'), { pointer: '/body/petType' });
});

t.test('a base that lists its subtypes in oneOf, each of which is allOf the base (springdoc): no cycle', async (t) => {
  const v = await validatorOf(
    documentOf(
      `    Pet: { type: object, required: [petType], properties: { petType: { type: string } }, oneOf: [$ref: '#/components/schemas/Cat', $ref: '#/components/schemas/Dog'], discriminator: { propertyName: petType, mapping: { cat: Cat, dog: Dog } } }
    Cat: { allOf: [$ref: '#/components/schemas/Pet', { properties: { lives: { type: integer, maximum: 9 } } }] }
    Dog: { allOf: [$ref: '#/components/schemas/Pet', { properties: { bark: { type: string, maxLength: 3 } } }] }`,
      "{ $ref: '#/components/schemas/Pet' }",
    ),
  );
  t.equal(await send(v, '{"petType":"cat","lives":3}'), undefined);
  t.match(await send(v, '{"petType":"cat","lives":99}'), { pointer: '/body/lives' });
  t.equal(await send(v, '{"petType":"dog","lives":99}'), undefined);
});

t.test('nullable (3.0) keeps null allowed beside the selection', async (t) => {
  const v = await validatorOf(petsOf('{ propertyName: kind, mapping: { cat: Cat, dog: Dog } }, nullable: true'));
  t.equal(await send(v, 'null'), undefined);
  t.match(await send(v, '{"kind":"cat","lives":99}'), { pointer: '/body/lives' });
});
