/**
 * HTTP endpoints of token translation: the minted tokens' JWKS (admin listener, and optionally the
 * inbound one for other services) and token revocation (admin only: POST /tokens/revoke with an
 * RFC 7009-shaped form `token=…`, or JSON {"token": "…"}).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WardenError } from '../errors.js';
import type { TokenRuntime } from '../identity/token-runtime.js';
import { send, type AdminEndpoint } from './admin.js';

export const JWKS_PATH = '/.well-known/jwks.json';
const MAX_REVOKE_BODY = 16 * 1024;

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
    ['/tokens/revoke', { methods: ['POST'], handle: (req, res) => void revoke(runtime, req, res) }],
  ]);
}

async function revoke(runtime: TokenRuntime, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const problem = (status: number, detail: string) =>
    send(res, status, 'application/problem+json', JSON.stringify({ status, detail }) + '\n');
  let raw = '';
  try {
    for await (const chunk of req) {
      raw += (chunk as Buffer).toString('utf8');
      if (raw.length > MAX_REVOKE_BODY) return problem(413, `the body may be at most ${MAX_REVOKE_BODY} bytes`);
    }
  } catch {
    return;
  }
  const type = req.headers['content-type'] ?? '';
  let token: unknown;
  try {
    token = type.startsWith('application/json') ? (JSON.parse(raw) as { token?: unknown }).token : new URLSearchParams(raw).get('token');
  } catch {
    return problem(400, 'the body is not valid JSON');
  }
  if (typeof token !== 'string' || token.length === 0)
    return problem(400, 'send the token to revoke as token=… (form) or {"token": "…"} (JSON)');
  try {
    const outcome = await runtime.revoke(token);
    send(
      res,
      200,
      'application/json',
      JSON.stringify({ revoked: true, token_hash: outcome.hash.slice(0, 16), idp: outcome.idp, shared: outcome.shared }) + '\n',
    );
  } catch (err) {
    if (err instanceof WardenError) return problem(400, err.detail ?? err.title);
    problem(500, (err as Error).message);
  }
}
