/**
 * HTTP endpoints of token translation: the minted tokens' JWKS (admin listener, and optionally the
 * inbound one for other services) and token revocation (admin only: POST /tokens/revoke with an
 * RFC 7009-shaped form `token=…`, or JSON {"token": "…"}).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WardenError } from '../errors.js';
import type { TokenRuntime } from '../identity/token-runtime.js';
import { isB64Token } from '../identity/token-sources.js';
import { browserFieldsOf } from '../net/loopback.js';
import { send, sendProblem, type AdminEndpoint, type AdminRefuse } from './admin.js';
import { readBodyThen } from './body.js';

export const JWKS_PATH = '/.well-known/jwks.json';
const MAX_REVOKE_BODY = 16 * 1024;
/** A revocation's body is a token or two: a client that has one sends it at once. */
const REVOKE_BODY_DEADLINE_MS = 2000;

/** Writes the JWKS to an HTTP/1.1 ServerResponse or an HTTP/2 H2Response. */
export function writeJwks(
  runtime: TokenRuntime,
  res: { writeHead(status: number, headers: Record<string, string | number>): unknown; end(body: string): unknown },
): void {
  const body = runtime.jwksJson() ?? '{"keys":[]}';
  res.writeHead(200, {
    'content-type': 'application/jwk-set+json',
    'content-length': Buffer.byteLength(body),
    // Short: after a key rotation, verifiers also refetch on the new kid.
    'cache-control': 'public, max-age=60',
  });
  res.end(body);
}

export function tokenAdminEndpoints(runtime: TokenRuntime): Map<string, AdminEndpoint> {
  return new Map<string, AdminEndpoint>([
    [JWKS_PATH, { methods: ['GET'], handle: (_req, res) => writeJwks(runtime, res) }],
    ['/tokens/revoke', { methods: ['POST'], handle: (req, res, refuse) => void revoke(runtime, req, res, refuse) }],
  ]);
}

/**
 * The body, read whole (proxy/body.ts, as the data path reads one) up to MAX_REVOKE_BODY (413) and
 * within REVOKE_BODY_DEADLINE_MS (408), or undefined once refused (the connection then closes: the
 * rest is unread) or cut. Under the listener's 10 s request timeout alone, a body trickled a byte a
 * second kept a connection busy for 10 s, and 256 of them, reopened as they ended, kept every
 * probe, scrape and JWKS fetch off the admin listener.
 */
function bodyOf(req: IncomingMessage, res: ServerResponse, refuse: AdminRefuse): Promise<string | undefined> {
  return new Promise((resolve) => {
    readBodyThen(req, MAX_REVOKE_BODY, REVOKE_BODY_DEADLINE_MS, undefined, (err, body) => {
      if (err === undefined) return resolve((body as Buffer).toString('utf8'));
      resolve(undefined);
      if (!(err instanceof WardenError)) return; // the client went away
      res.setHeader('connection', 'close');
      // This endpoint's own bounds, not the data path's settings the reader names.
      const detail = err.code === 'ERR_REQUEST_TIMEOUT' ? `The body must arrive within ${REVOKE_BODY_DEADLINE_MS / 1000} s.` : err.detail;
      refuse(new WardenError(err.code, { rule: 'admin.tokens_revoke', detail }));
    });
  });
}

const malformed = (detail: string) => new WardenError('ERR_REQUEST_MALFORMED', { rule: 'admin.tokens_revoke', detail });

async function revoke(runtime: TokenRuntime, req: IncomingMessage, res: ServerResponse, refuse: AdminRefuse): Promise<void> {
  const browser = browserFieldsOf(req.headers);
  if (browser.length > 0) {
    req.resume();
    return refuse(
      new WardenError('ERR_ADMIN_BROWSER_REFUSED', {
        rule: 'admin.tokens_revoke',
        detail: `A request with ${browser.join(', ')} came from a web page; revoke with curl or a script.`,
      }),
    );
  }
  const raw = await bodyOf(req, res, refuse);
  if (raw === undefined) return;
  const type = req.headers['content-type'] ?? '';
  let sent: unknown;
  try {
    sent = type.startsWith('application/json') ? (JSON.parse(raw) as { token?: unknown }).token : new URLSearchParams(raw).get('token');
  } catch {
    return refuse(malformed('The body is not valid JSON.'));
  }
  // Surrounding whitespace is no token's (a file read with `curl --data-urlencode token@file` keeps
  // its newline); anything else a bearer token cannot hold is refused: revoking a string no request
  // can present would report a revocation while the real token kept working.
  const token = typeof sent === 'string' ? sent.trim() : undefined;
  if (token === undefined || token.length === 0)
    return refuse(malformed('Send the token to revoke as token=… (form) or {"token": "…"} (JSON).'));
  if (!isB64Token(token))
    return refuse(malformed('The token has characters no bearer token can have (RFC 6750 b64token); nothing was revoked.'));
  try {
    const outcome = await runtime.revoke(token);
    send(
      res,
      200,
      'application/json',
      JSON.stringify({
        revoked: true,
        token_hash: outcome.hash.slice(0, 16),
        idp: outcome.idp,
        shared: outcome.shared,
        service: outcome.service,
        detail: outcome.detail,
      }) + '\n',
    );
  } catch (err) {
    // The token's own problems (not a trusted issuer's, not decodable) are the request's: 400, not
    // the 401 they are on the data path, which would say the caller is not authenticated.
    if (err instanceof WardenError && err.status < 500) return refuse(malformed(err.detail ?? err.title));
    // The runtime's own refusals (a full revocation list) raise their event where they are made.
    sendProblem(
      res,
      err instanceof WardenError
        ? err
        : new WardenError('ERR_INTERNAL', { detail: `The token could not be revoked: ${(err as Error).message}`, cause: err }),
    );
  }
}
