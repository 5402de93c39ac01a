/** Small HTTP helpers of the CA API: bounded JSON bodies, JSON and problem+json responses. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WardenError } from '../errors.js';
import { problemBody } from '../pipeline/rescue.js';

/** Enough for a CSR (a few KiB) with room to spare; anything larger is not a CA request. */
export const MAX_BODY_BYTES = 64 * 1024;

/** The client went away before its request was read in full: nobody to answer. */
export class ClientGoneError extends Error {
  constructor(cause?: unknown) {
    super('the client closed the connection before sending its request body', cause === undefined ? undefined : { cause });
    this.name = 'ClientGoneError';
  }
}

/** `application/json`, with or without parameters (`; charset=utf-8`), in any case. */
const JSON_MEDIA_TYPE = /^application\/json\s*(;|$)/i;

/**
 * The request body as a JSON object; 415 unless it is declared `application/json`, 413 past `limit`,
 * ERR_CA_REQUEST_INVALID when not a JSON object. The media type is required: an admin POST sent as a
 * form or `text/plain` (what a browser may send cross-site without a preflight) used to be obeyed.
 */
export async function readJsonObject(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'];
  if (type === undefined || !JSON_MEDIA_TYPE.test(type.trim())) {
    throw new WardenError('ERR_MEDIA_TYPE_UNSUPPORTED', {
      detail: `the body must be sent as application/json${type === undefined ? ' (no Content-Type was given)' : `, not ${type.slice(0, 100)}`}`,
      rule: 'ca.content_type',
      // The body is left unread: close rather than parse what follows as the next request.
      headers: { connection: 'close' },
    });
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit)
    throw new WardenError('ERR_BODY_TOO_LARGE', { detail: `the limit is ${limit} bytes`, headers: { connection: 'close' } });
  // Read by events, not `for await`: leaving that loop destroys the request and its socket, so the
  // 413 of a chunked body past the limit could not be sent (and the socket was gone for the log).
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off('data', onData).pause();
      reject(new WardenError('ERR_BODY_TOO_LARGE', { detail: `the limit is ${limit} bytes`, headers: { connection: 'close' } }));
    };
    // A client that hangs up mid-body ('error' ECONNRESET "aborted", or 'close' before 'end') is no
    // failure of the CA: a ClientGoneError, which the server neither logs as an error nor audits.
    req
      .on('data', onData)
      .once('end', resolve)
      .once('error', (err) => reject(new ClientGoneError(err)))
      .once('close', () => (req.complete ? undefined : reject(new ClientGoneError())));
  });
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new WardenError('ERR_CA_REQUEST_INVALID', { cause: err, detail: 'the body must be a JSON object' });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WardenError('ERR_CA_REQUEST_INVALID', { detail: 'the body must be a JSON object' });
  }
  return value as Record<string, unknown>;
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

export function sendBytes(res: ServerResponse, contentType: string, body: string | Buffer, cacheSeconds = 0): void {
  res.writeHead(200, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': cacheSeconds > 0 ? `public, max-age=${cacheSeconds}` : 'no-store',
  });
  res.end(body);
}

/** RFC 9457 problem+json, the same body the sidecar sends (src/pipeline/rescue.ts). */
export function sendProblem(res: ServerResponse, error: WardenError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = problemBody(error, undefined);
  res.writeHead(error.status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...error.headers,
  });
  res.end(body);
}
