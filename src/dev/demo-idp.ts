/**
 * The demo identity provider behind `warden dev` and the token tests: a real OpenID provider
 * (oidc-provider v9) on loopback that issues client_credentials tokens — opaque ones by default,
 * RFC 9068 JWT access tokens (ES256) when the request names the JWT resource; both carry the API's
 * audience (`aud`, also in introspection answers) — and answers
 * introspection (RFC 7662) and revocation (RFC 7009), with knobs to count and slow introspection.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { errors, type Client, type ResourceServerInfo, type Token } from 'oidc-provider';
import { request } from 'undici';
import { clientSecret, generateDemoIdpKeys } from './demo-idp-keys.js';
import { createDemoIdpStore } from './demo-idp-store.js';

export interface DemoIdpOptions {
  host?: string;
  port?: number;
  accessTokenTtlSeconds?: number;
  /** Audience (resource indicator) for which the IdP issues JWT access tokens (RFC 9068 at+jwt, ES256). */
  jwtResource?: string;
  /** Scopes the demo clients may request. */
  scopes?: string[];
  /**
   * The issuer (`iss`, the discovery base), when the IdP is reached through another address — a
   * proxy, a fault gate — that must be in its name. Default: this server's own `http://host:port`.
   * oidc-provider builds the discovery document's endpoints from the request's Host, so a client
   * that discovers through the proxy is sent on through it. The demo's own calls (issueToken,
   * revoke) go to this server directly.
   */
  issuer?: string;
  /**
   * Claims added to every access token: in a JWT's payload, in an opaque token's introspection
   * answer. For tests of what other IdPs add (Ory Hydra's `token_use: "access_token"`).
   */
  extraTokenClaims?: Record<string, unknown>;
}

export interface IssueOptions {
  /** Defaults to the demo client; any other id is registered on the fly with the demo client's secret and scopes. */
  clientId?: string;
  /** Defaults to every demo scope. */
  scope?: string;
  /** Present → JWT access token for that audience (must be the IdP's jwtResource); absent → opaque token with the same audience. */
  resource?: string;
}

export interface DemoIdp {
  readonly issuer: string;
  readonly port: number;
  readonly tokenEndpoint: string;
  readonly introspectionEndpoint: string;
  readonly revocationEndpoint: string;
  readonly jwksUri: string;
  /** The `aud` of every token this IdP issues (opaque and JWT): the demo API. */
  readonly audience: string;
  /** Credentials Warden uses to call introspection, one per client authentication method. */
  readonly introspectionClients: {
    basic: { clientId: string; clientSecret: string };
    post: { clientId: string; clientSecret: string };
    privateKeyJwt: { clientId: string; privateKeyPem: string; kid: string; alg: 'ES256' };
  };
  /** A client_credentials client callers use to get tokens. */
  readonly demoClient: { clientId: string; clientSecret: string };
  /** Gets an access token with client_credentials over real HTTP at the token endpoint. */
  issueToken(options?: IssueOptions): Promise<{ accessToken: string; expiresIn: number; scope: string }>;
  /** Revokes an opaque token at the revocation endpoint (RFC 7009), as the client it was issued to. JWTs are refused. */
  revoke(token: string): Promise<void>;
  /** Requests that reached the introspection endpoint since start (or since resetCounts()). */
  readonly introspectionCount: number;
  resetCounts(): void;
  /** Extra delay (ms) before answering introspection, to test timeouts and latency. */
  setIntrospectionDelay(ms: number): void;
  /** Stops listening and drops open connections, so tests can simulate the IdP going down. */
  close(): Promise<void>;
}

const ROUTES = { token: '/token', introspection: '/token/introspection', revocation: '/token/revocation', jwks: '/jwks' };
const DEFAULT_SCOPES = ['orders:read', 'orders:write', 'pets:read', 'pets:write'];
// Clients that only call introspection: no grants, no redirects.
const NO_GRANTS = { grant_types: [], response_types: [], redirect_uris: [] };
const secretClient = (c: { clientId: string; clientSecret: string }, method: string) => ({
  ...NO_GRANTS,
  client_id: c.clientId,
  client_secret: c.clientSecret,
  token_endpoint_auth_method: method,
});

export async function startDemoIdp(options: DemoIdpOptions = {}): Promise<DemoIdp> {
  const { host = '127.0.0.1', port = 0, accessTokenTtlSeconds = 600, jwtResource = 'urn:warden:demo-api' } = options;
  const scopes = options.scopes ?? DEFAULT_SCOPES;
  const opaqueResource = `${jwtResource}:opaque`;

  // The default issuer embeds the port, so bind first and hand requests to the provider once it exists.
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => void res.writeHead(503).end();
  const server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => (server.off('error', reject), resolve()));
  });
  const boundPort = (server.address() as AddressInfo).port;
  const ownUrl = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
  const issuer = options.issuer ?? ownUrl;

  const keys = await generateDemoIdpKeys();
  const store = createDemoIdpStore();
  const demoClient = { clientId: 'demo-client', clientSecret: clientSecret() };
  const introspectionClients = {
    basic: { clientId: 'warden-introspect-basic', clientSecret: clientSecret() },
    post: { clientId: 'warden-introspect-post', clientSecret: clientSecret() },
    privateKeyJwt: {
      clientId: 'warden-introspect-jwt',
      privateKeyPem: keys.client.privateKeyPem,
      kid: keys.client.kid,
      alg: 'ES256' as const,
    },
  };
  const introspectors = new Set(Object.values(introspectionClients).map((c) => c.clientId));
  const tokenClient = (client_id: string) => ({
    client_id,
    client_secret: demoClient.clientSecret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: scopes.join(' '),
  });

  let provider: Provider;
  try {
    provider = new Provider(issuer, {
      adapter: store.adapter,
      jwks: { keys: [keys.signingJwk] },
      routes: ROUTES,
      // Custom scopes must be known to the provider: for requests without a resource it drops every
      // scope it does not recognise, and `scope` on a client only restricts recognised ones.
      scopes: ['openid', ...scopes],
      clients: [
        tokenClient(demoClient.clientId),
        secretClient(introspectionClients.basic, 'client_secret_basic'),
        secretClient(introspectionClients.post, 'client_secret_post'),
        {
          ...NO_GRANTS,
          client_id: introspectionClients.privateKeyJwt.clientId,
          token_endpoint_auth_method: 'private_key_jwt',
          token_endpoint_auth_signing_alg: 'ES256',
          jwks: { keys: [keys.client.publicJwk] },
        },
      ],
      // Clients default to RS256 ID tokens, which the single ES256 key cannot sign: the provider would refuse them.
      clientDefaults: { id_token_signed_response_alg: 'ES256' },
      enabledJWA: { clientAuthSigningAlgValues: ['ES256'] },
      ttl: { ClientCredentials: accessTokenTtlSeconds, AccessToken: accessTokenTtlSeconds },
      ...(options.extraTokenClaims ? { extraTokenClaims: async () => ({ ...options.extraTokenClaims }) } : {}),
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        revocation: {
          enabled: true,
          // RFC 7009 lets only the token's own client revoke it; this IdP also trusts the resource
          // servers' (Warden's) clients to, so `POST /tokens/revoke` on a sidecar revokes at the IdP too.
          allowedPolicy: async (_ctx: unknown, client: Client, token: Token) => {
            if (token.clientId !== client.clientId && !introspectors.has(client.clientId))
              throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
            return true;
          },
        },
        introspection: {
          enabled: true,
          // Resource servers (Warden) introspect tokens issued to other clients. JWT access tokens are
          // never introspectable: oidc-provider answers 400 unsupported_token_type for any JWT.
          allowedPolicy: async (_ctx: unknown, client: Client) => introspectors.has(client.clientId),
        },
        resourceIndicators: {
          enabled: true,
          // No resource → the opaque variant of the API: a reference token that still names its audience.
          defaultResource: async () => opaqueResource,
          useGrantedResource: async () => false,
          getResourceServerInfo: async (_ctx: unknown, resource: string): Promise<ResourceServerInfo> => {
            if (resource === opaqueResource) {
              return { scope: scopes.join(' '), audience: jwtResource, accessTokenFormat: 'opaque', accessTokenTTL: accessTokenTtlSeconds };
            }
            if (resource !== jwtResource) throw new errors.InvalidTarget(`unknown resource ${resource}`);
            return {
              scope: scopes.join(' '),
              audience: resource,
              accessTokenFormat: 'jwt',
              accessTokenTTL: accessTokenTtlSeconds,
              jwt: { sign: { alg: 'ES256' } },
            };
          },
        },
      },
    });
  } catch (err) {
    server.close(); // a configuration error must not leave the port bound
    throw err;
  }

  let introspectionCount = 0;
  let introspectionDelay = 0;
  provider.use(async (ctx, next) => {
    if (ctx.path === ROUTES.introspection) {
      introspectionCount++;
      if (introspectionDelay > 0) await new Promise((resolve) => setTimeout(resolve, introspectionDelay));
    }
    await next();
  });
  handler = provider.callback();

  const endpoint = (path: string) => `${issuer}${path}`;
  const basic = (id: string, secret: string) =>
    `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  const post = async (path: string, clientId: string, form: Record<string, string>) => {
    const res = await request(`${ownUrl}${path}`, {
      method: 'POST',
      // A fresh connection per call: a kept-alive one may be closed by the server's keep-alive
      // timeout just as a (non-retryable) POST goes out on it.
      reset: true,
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(clientId, demoClient.clientSecret) },
      body: new URLSearchParams(form).toString(),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`demo IdP ${path} answered ${res.statusCode}: ${text}`);
    return text;
  };
  const registered = new Set([demoClient.clientId]);

  return {
    issuer,
    port: boundPort,
    tokenEndpoint: endpoint(ROUTES.token),
    introspectionEndpoint: endpoint(ROUTES.introspection),
    revocationEndpoint: endpoint(ROUTES.revocation),
    jwksUri: endpoint(ROUTES.jwks),
    audience: jwtResource,
    introspectionClients,
    demoClient,
    async issueToken({ clientId = demoClient.clientId, scope = scopes.join(' '), resource } = {}) {
      if (!registered.has(clientId)) {
        if (introspectors.has(clientId)) throw new Error(`${clientId} is an introspection client; it cannot get tokens`);
        store.putClient(tokenClient(clientId));
        registered.add(clientId);
      }
      const form: Record<string, string> = { grant_type: 'client_credentials', scope };
      if (resource !== undefined) form.resource = resource;
      const body = JSON.parse(await post(ROUTES.token, clientId, form)) as { access_token: string; expires_in: number; scope?: string };
      return { accessToken: body.access_token, expiresIn: body.expires_in, scope: body.scope ?? '' };
    },
    async revoke(token) {
      // The token's owner revokes it (the default revocation policy); clients share the demo secret.
      const clientId = store.ownerOf(token) ?? demoClient.clientId;
      await post(ROUTES.revocation, clientId, { token });
    },
    get introspectionCount() {
      return introspectionCount;
    },
    resetCounts() {
      introspectionCount = 0;
    },
    setIntrospectionDelay(ms) {
      introspectionDelay = Math.max(0, ms);
    },
    // Idempotent, so a test can close early and still tear down.
    close: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
