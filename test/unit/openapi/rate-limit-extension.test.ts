/**
 * x-warden-rate-limit is held to the bounds of sidecar.yaml's rate_limit: a value out of range is
 * refused with its pointer, never silently replaced by the default (`burst: 0`, `cost: 1.5`) nor
 * let through to the bucket (`per_seconds: .inf` turned the limit off; 1e300 gave a Retry-After of
 * 1e300 s); a cost above the bucket's size is refused (it would never allow a request).
 */
import t from 'tap';
import { OpenApiError, type OpenApiDocument } from '../../../src/openapi/document.js';
import { operationsOf } from '../../../src/openapi/operations.js';

const docWith = (ext: unknown): OpenApiDocument =>
  ({
    openapi: '3.0.3',
    info: { title: 't', version: '1' },
    paths: { '/a': { get: { operationId: 'getA', 'x-warden-rate-limit': ext, responses: { '200': { description: 'ok' } } } } },
  }) as unknown as OpenApiDocument;

const refusal = (ext: unknown): string => {
  try {
    operationsOf(docWith(ext));
  } catch (err) {
    if (err instanceof OpenApiError) return `${err.pointer} ${err.message}`;
    throw err;
  }
  return 'accepted';
};

t.test('x-warden-rate-limit values out of range are refused with their pointer', async (t) => {
  const cases: [unknown, RegExp][] = [
    [{ rate: 5, per_seconds: Infinity }, /per_seconds.*at most/],
    [{ rate: 5, per_seconds: 1e300 }, /per_seconds.*at most/],
    [{ rate: 5, per_seconds: 0 }, /per_seconds/],
    [{ rate: 5, per_seconds: '60' }, /per_seconds/],
    [{ rate: 5, burst: 0 }, /burst.*integer from 1/],
    [{ rate: 5, cost: 1.5 }, /cost.*integer from 1/],
    [{ rate: 5, per_seconds: 1, cost: 10 }, /cost.*burst \(5\)/],
    [{ rate: 5, burst: 3, cost: 4 }, /cost.*burst \(3\)/],
    [{ rate: 0 }, /rate must be an integer from 1/],
    [{}, /needs rate/],
    [[5], /needs rate/],
  ];
  for (const [ext, expected] of cases)
    t.match(
      refusal(ext),
      expected,
      JSON.stringify(ext, (_k, v: unknown) => (v === Infinity ? 'Infinity' : v)),
    );
  const [op] = operationsOf(docWith({ rate: 5, per_seconds: 60, burst: 10, cost: 2 }));
  t.same(op?.rateLimit, { rate: 5, per: 60_000, burst: 10, cost: 2 }, 'a valid one is read as written');
  t.same(operationsOf(docWith({ rate: 5 }))[0]?.rateLimit, { rate: 5, per: 1000, burst: undefined, cost: undefined }, 'defaults');
});

/**
 * red team 28 §2: unknown keys inside the extension were dropped (`per: 60`, sidecar.yaml's spelling
 * of the window, ran as 5 a SECOND), and the extension misspelt or misplaced (path item, document
 * root) limited nothing, all without a word.
 */
const refusalOf = (doc: unknown): string => {
  try {
    operationsOf(doc as OpenApiDocument);
  } catch (err) {
    if (err instanceof OpenApiError) return `${err.pointer} ${err.message}`;
    throw err;
  }
  return 'accepted';
};
const opDoc = (op: Record<string, unknown>, pathItem: Record<string, unknown> = {}, root: Record<string, unknown> = {}) => ({
  openapi: '3.0.3',
  info: { title: 't', version: '1' },
  ...root,
  paths: { '/login': { ...pathItem, post: { operationId: 'login', responses: { '200': { description: 'ok' } }, ...op } } },
});

t.test('x-warden-rate-limit: unknown keys are refused with the pointer and the allowed names', async (t) => {
  t.match(refusal({ rate: 5, per_second: 60, brust: 1 }), /x-warden-rate-limit\/per_second .*did you mean "per_seconds"/);
  t.match(refusal({ rate: 5, burst: 2, brust: 1 }), /x-warden-rate-limit\/brust .*did you mean "burst"/);
  t.match(refusal({ rate: 5, window: 60 }), /\/window unknown key.*rate, per, per_seconds, burst, cost/);
  // `per` as sidecar.yaml spells it: a duration with its unit; a bare number is ambiguous (sidecar.yaml reads milliseconds).
  t.match(refusal({ rate: 5, per: 60 }), /\/per .*"60s".*per_seconds: 60/);
  t.same(operationsOf(docWith({ rate: 5, per: '1m' }))[0]?.rateLimit?.per, 60_000, 'per: 1m is a minute');
  t.same(operationsOf(docWith({ rate: 5, per: '500ms' }))[0]?.rateLimit?.per, 500, 'per: 500ms');
  t.match(refusal({ rate: 5, per: '1m', per_seconds: 60 }), /per.*either/);
  t.match(refusal({ rate: 5, per: '0s' }), /\/per /);
  t.match(refusal({ rate: 5, per: '1000h' }), /\/per .*596/);
});

t.test('x-warden-* keys Warden does not read, or in a place it does not read them, are refused', async (t) => {
  t.match(
    refusalOf(opDoc({}, { 'x-warden-rate-limit': { rate: 5, per_seconds: 60 } })),
    /^#\/paths\/~1login\/x-warden-rate-limit .*operation/,
    'on the path item',
  );
  t.match(
    refusalOf(opDoc({ 'x-warden-ratelimit': { rate: 5 } })),
    /^#\/paths\/~1login\/post\/x-warden-ratelimit .*did you mean "x-warden-rate-limit"/,
    'misspelt on the operation',
  );
  t.match(refusalOf(opDoc({}, {}, { 'x-warden-rate-limit': { rate: 1 } })), /^#\/x-warden-rate-limit .*operation/, 'at the root');
  t.match(refusalOf(opDoc({ 'X-Warden-Rate-Limit': { rate: 1 } })), /X-Warden-Rate-Limit .*did you mean "x-warden-rate-limit"/);
  t.match(refusalOf(opDoc({ 'x-warden-timeout': 5 })), /x-warden-timeout .*Warden reads only x-warden-rate-limit/);
  t.equal(refusalOf(opDoc({ 'x-internal': true, 'x-ratelimit-owner': 'a' })), 'accepted', "other tools' extensions are left alone");
  t.equal(refusalOf(opDoc({ 'x-warden-rate-limit': { rate: 5, per: '1m' } })), 'accepted');
});
