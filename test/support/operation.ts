/**
 * An Operation as src/openapi/operations.ts builds it from a document, for the unit tests that
 * compile validators without one: `POST /x` declaring nothing, OpenAPI 3.1. A test sets what it
 * checks.
 */
import type { Operation } from '../../src/openapi/operations.js';

export function testOperation(fields: Partial<Operation> = {}): Operation {
  return {
    id: 'op',
    method: 'POST',
    paths: ['/x'],
    pointer: '#/paths/~1x/post',
    security: undefined,
    rateLimit: undefined,
    parameters: [],
    requestBody: undefined,
    responses: {},
    dialect: '3.1',
    ...fields,
  };
}
