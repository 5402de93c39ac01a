import type { IncomingHttpHeaders } from 'node:http';

/**
 * Whether an HTTP/1.1 request's head says a body follows: a Content-Length above 0 (`00` is none),
 * or a Transfer-Encoding. One reading for the inbound handler, egress and OpenAPI validation.
 */
export function declaresBody(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  if (length === undefined) return headers['transfer-encoding'] !== undefined;
  return length !== '0' && Number(length) > 0;
}
