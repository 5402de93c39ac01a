/**
 * A form body property declared `encoding: {address: {style: deepObject, explode: true}}` — what
 * qs.stringify sends (axios with qs, superagent `.type('form')`, jQuery `$.param`):
 * `address[city]=Paris&address[zip]=75001` is the object `{city, zip}`, validated at
 * `/body/address/city` as a deepObject query parameter is (red team 28, F2). Before, each entry was
 * refused as "read as address by qs". A property not declared so still refuses `address[city]`,
 * and an encoding style Warden does not honour is a warning at load.
 */
import t from 'tap';
import { OpenApiError } from '../../../src/openapi/document.js';
import { loadOpenApiDocument } from '../../../src/openapi/document.js';
import { operationsOf } from '../../../src/openapi/operations.js';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { testOperation } from '../../support/operation.js';
import { openApiFile } from '../../support/openapi-file.js';

const FORM = 'application/x-www-form-urlencoded';
const Address = {
  type: 'object',
  additionalProperties: false,
  properties: {
    city: { type: 'string', pattern: '^[^<>]*$' },
    zip: { type: 'string', pattern: '^[0-9]{5}$' },
    floor: { type: 'integer', maximum: 50 },
    tags: { type: 'array', items: { type: 'string', enum: ['a', 'b'] } },
  },
};
const schema = {
  type: 'object',
  properties: { nickname: { type: 'string' }, address: Address, billing: Address, role: { type: 'string', enum: ['user'] } },
};
const validatorFor = (encoding: Record<string, Record<string, unknown>>, s: Record<string, unknown> = schema) =>
  compileRequestValidator(testOperation({ requestBody: { content: { [FORM]: { schema: s, encoding } } } }), { unknownQuery: 'allow' });
const send = (v: ReturnType<typeof validatorFor>, text: string) => v.body(FORM, { body: Buffer.from(text) });

t.test('a deepObject form property is read as qs reads it, and validated at its path', async (t) => {
  const v = validatorFor({ address: { style: 'deepObject', explode: true } });
  t.equal(await send(v, 'nickname=eve&address%5Bcity%5D=Paris&address%5Bzip%5D=75001'), undefined, 'what qs.stringify sends');
  t.equal(await send(v, 'address[city]=Paris&address[tags]=a&address[tags]=b'), undefined, 'an array property repeats');
  t.match(await send(v, 'address[zip]=7500'), { pointer: '/body/address/zip' }, 'its property checked');
  t.match(await send(v, 'address[city]=%3Cscript%3E'), { pointer: '/body/address/city' });
  t.match(await send(v, 'address[floor]=99'), { pointer: '/body/address/floor' }, 'coerced and checked');
  t.match(await send(v, 'address[floor]=1e1'), { pointer: '/body/address/floor' }, 'numbers from plain spellings only');
  t.match(await send(v, 'address[isAdmin]=1'), { pointer: '/body/address' }, 'additionalProperties: false');
  t.match(await send(v, 'address[tags]=c'), { pointer: '/body/address/tags/0' });
  t.match(
    await send(v, 'address[city]=Paris&address[city]=%3Cx%3E'),
    { pointer: '/body/address/city', message: 'must be given once' },
    'given twice',
  );
  t.match(
    await send(v, 'address[geo][lat]=1'),
    { pointer: '/body/address[geo][lat]', message: /one level/ },
    'nested deeper than deepObject reads',
  );
  t.match(await send(v, 'address[]=x'), { pointer: '/body/address[]' }, 'an array form of it');
  t.match(await send(v, 'address[city]=Paris&address=x'), { pointer: '/body/address' }, 'its bare name beside');
  t.match(await send(v, 'ADDRESS[city]=x'), { pointer: '/body/ADDRESS[city]' }, 'another letter case');
  t.match(await send(v, 'address.city=x'), { pointer: '/body/address.city' }, "qs allowDots' spelling");
  t.match(
    await send(v, 'address[city]=Paris&billing[city]=Paris'),
    { pointer: '/body/billing[city]', message: /is read as "billing" by qs/ },
    'a property not declared deepObject keeps refusing',
  );
  t.match(await send(v, 'address[city]=Paris&role[]=admin'), { pointer: '/body/role[]' }, 'and so do the others');
  t.match(await send(v, 'address[city]=%26%2360%3Bx'), { pointer: '/body/address/city', message: /numeric character references/ });
});

t.test('deepObject encodings Warden cannot honour are refused at load', async (t) => {
  const err = t.throws(() => validatorFor({ nickname: { style: 'deepObject' } })) as unknown;
  t.ok(err instanceof OpenApiError);
  t.match((err as OpenApiError).message, /encoding "nickname": style deepObject needs an object schema/);
  t.throws(() => validatorFor({ nothere: { style: 'deepObject' } }), { message: /encoding "nothere".*names no property/ });
});

t.test('a form encoding style Warden does not honour is a warning at load; deepObject and exploded form are not', async (t) => {
  const doc = (encoding: string) =>
    openApiFile(`openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /p:
    post:
      requestBody:
        content:
          ${FORM}:
            schema: { type: object, properties: { tags: { type: array, items: { type: string } }, address: { type: object } } }
            encoding: ${encoding}
      responses: { '200': { description: ok } }
`);
  const warningsOf = async (encoding: string) => {
    const warnings: string[] = [];
    operationsOf(await loadOpenApiDocument(doc(encoding), undefined, (w) => warnings.push(`${w.pointer}: ${w.message}`)));
    return warnings;
  };
  t.same(await warningsOf('{ address: { style: deepObject, explode: true }, tags: { style: form } }'), []);
  for (const enc of ['{ style: pipeDelimited }', '{ style: spaceDelimited }', '{ style: form, explode: false }', '{ explode: false }']) {
    const warnings = await warningsOf(`{ tags: ${enc} }`);
    t.equal(warnings.length, 1, `${enc}: one warning`);
    t.match(warnings[0], /^#\/paths\/~1p\/post\/requestBody\/content\/application~1x-www-form-urlencoded\/encoding\/tags: .*not honoured/);
  }
});
