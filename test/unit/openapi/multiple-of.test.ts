/**
 * `multipleOf: 0.01` is how money is written. ajv tested it in binary floating point (0.29 / 0.01 is
 * 28.999999999999996), refusing 159 of the 1 000 amounts 0.00–9.99 that pydantic, Jackson and decimal
 * backends accept; a quotient within 1e-9 of a whole number now counts as one (schema-compiler.ts).
 */
import t from 'tap';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { testOperation } from '../../support/operation.js';

const validator = compileRequestValidator(
  testOperation({
    parameters: [{ name: 'tip', in: 'query', schema: { type: 'number', multipleOf: 0.01 } }],
    requestBody: {
      content: { 'application/json': { schema: { type: 'object', properties: { price: { type: 'number', multipleOf: 0.01 } } } } },
    },
  }),
  { unknownQuery: 'allow' },
);
const body = (price: string) => validator.body('application/json', { body: Buffer.from(`{"price":${price}}`) });

t.test('every two-decimal amount from 0.00 to 9.99 is a multiple of 0.01, in a body and in a query', async (t) => {
  const refused: string[] = [];
  for (let cents = 0; cents < 1000; cents++) {
    const amount = (cents / 100).toFixed(2);
    if ((await body(amount)) !== undefined) refused.push(`body ${amount}`);
    if (validator.params({ params: {}, search: `?tip=${amount}`, headers: {} }) !== undefined) refused.push(`query ${amount}`);
  }
  t.same(refused, [], 'none refused (before: 0.07, 0.29, 1.15, 4.35, 19.99 … 159 of each)');
});

t.test('what is not a multiple still is not', async (t) => {
  for (const price of ['0.005', '0.295', '1.001', '0.0100001'])
    t.match(await body(price), { pointer: '/body/price', message: 'must be multiple of 0.01' }, price);
});
