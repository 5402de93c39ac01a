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
