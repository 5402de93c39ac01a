/**
 * A RequestContext as the handler builds it, for the unit tests of stages: a GET of `/` on route
 * `r` from 127.0.0.1 over HTTP/1.1, no peer, no headers. A test sets what it checks.
 */
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { NO_PEER } from '../../src/mesh/peer-identity.js';
import type { RequestContext } from '../../src/pipeline/stage.js';

export function testContext(fields: Partial<RequestContext> = {}): RequestContext {
  return {
    requestId: 'r',
    startedAt: 0,
    protocol: '1.1',
    method: 'GET',
    path: '/',
    search: '',
    clientAddress: '127.0.0.1',
    peer: NO_PEER,
    headers: {},
    upstreamHeaders: {},
    route: { id: 'r' },
    params: {},
    traceContext: ROOT_CONTEXT,
    ...fields,
  };
}
