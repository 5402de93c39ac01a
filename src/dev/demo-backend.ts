/**
 * The demo backend behind `warden dev`: a tiny JSON API that echoes what it received, so a person
 * can see what the sidecar passes on (forwarded headers, request id) and what it strips. It also
 * does what a real backend behind Warden does with the minted token: verifies it with `jose`
 * against the sidecar's JWKS, and shows the verified claims (or why verification failed).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify } from 'jose';

export interface MintedTokenCheck {
  /** The sidecar's JWKS, e.g. http://127.0.0.1:9901/.well-known/jwks.json */
  jwksUrl: string;
  /** The `aud` the sidecar mints for this backend. */
  audience: string;
}

/** How a backend behind Warden reads its caller: one JWKS fetch (cached by jose), then local verification. */
export function createMintedTokenVerifier(check: MintedTokenCheck) {
  const jwks = createRemoteJWKSet(new URL(check.jwksUrl));
  return async (authorization: string | undefined): Promise<Record<string, unknown>> => {
    if (!authorization?.startsWith('Bearer ')) return { token_error: 'no minted token (public route, or no sidecar in front)' };
    try {
      const { payload } = await jwtVerify(authorization.slice(7), jwks, { audience: check.audience, typ: 'at+jwt', algorithms: ['ES256'] });
      return { token_claims: payload };
    } catch (err) {
      return { token_error: (err as Error).message };
    }
  };
}

function echo(req: IncomingMessage, bodyBytes: number) {
  return {
    method: req.method,
    path: req.url,
    body_bytes: bodyBytes,
    received_headers: req.headers,
  };
}

export interface DemoBackend {
  readonly address: AddressInfo;
  /** Starts verifying minted tokens (once the sidecar, and so its JWKS, is up). */
  verifyMintedTokens(check: MintedTokenCheck): void;
  close(): Promise<void>;
}

export async function startDemoBackend(port: number, host = '127.0.0.1'): Promise<DemoBackend> {
  let verify: ReturnType<typeof createMintedTokenVerifier> | undefined;
  const server: Server = createServer((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => void answer(req, res, bytes));
  });
  const answer = async (req: IncomingMessage, res: ServerResponse, bytes: number) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    const reply = (status: number, body: unknown) => {
      const text = JSON.stringify(body, null, 2) + '\n';
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (path === '/healthz') return reply(200, { status: 'ok' });
    const caller = verify ? await verify(req.headers.authorization) : {};
    if (path === '/api/hello') return reply(200, { message: 'hello from the demo backend', ...caller, ...echo(req, bytes) });
    if (path === '/api/echo' || path === '/api/orders' || path?.startsWith('/api/orders/'))
      return reply(200, { ...caller, ...echo(req, bytes) });
    if (path?.startsWith('/public/')) return reply(200, { message: 'public information', ...caller });
    if (path?.startsWith('/admin/')) return reply(200, { secret: 'the sidecar should never let you read this' });
    return reply(404, { error: 'the demo backend has no such path' });
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    address: server.address() as AddressInfo,
    verifyMintedTokens(check) {
      verify = createMintedTokenVerifier(check);
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
