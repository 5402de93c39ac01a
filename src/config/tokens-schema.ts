/**
 * JSON Schema of sidecar.yaml's `tokens` section (token translation: which tokens are accepted, how
 * they are checked, what the backend receives) and of the routes' `authn` / `scopes` keys.
 */
import { duration, positiveInt, size } from './schema-parts.js';

const headerName = {
  type: 'string',
  pattern: "^[A-Za-z0-9!#$%&'+.^_`|~-]+$",
  'x-expect': 'a header name such as "x-api-token"',
} as const;
const cookieOrParam = { type: 'string', pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", 'x-expect': 'a cookie or parameter name' } as const;
const url = { type: 'string', pattern: '^https?://[^/?#]+(/[^?#]*)?$', 'x-expect': 'an http(s) URL' } as const;
const scopeToken = {
  type: 'string',
  pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$',
  'x-expect': 'a scope (RFC 6749 §3.3: no spaces or quotes)',
} as const;
const scopeList = { type: 'array', default: [], items: scopeToken } as const;

/** JWS algorithms an issuer may be trusted with: asymmetric only (no `none`, no HS* with public keys). */
const ASYMMETRIC_ALGS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA', 'Ed25519'] as const;

/** DPoP proof algorithms (RFC 9449 §4.2): asymmetric, no `none`, no MAC. */
export const DPOP_ALGS = ['ES256', 'ES384', 'ES512', 'RS256', 'PS256', 'EdDSA'] as const;

const tokenSource = {
  type: 'object',
  additionalProperties: false,
  required: ['from'],
  'x-expect': 'a token source: { from: authorization } or { from: header|cookie|query, name: … }',
  properties: {
    from: { enum: ['authorization', 'header', 'cookie', 'query'], 'x-expect': '"authorization", "header", "cookie" or "query"' },
    name: cookieOrParam,
  },
} as const;

const introspection = {
  type: 'object',
  additionalProperties: false,
  required: ['client_id'],
  'x-expect': 'the introspection client: { client_id, auth_method, client_secret | private_key }',
  properties: {
    endpoint: url,
    revocation_endpoint: url,
    client_id: { type: 'string', minLength: 1, 'x-expect': 'the client id registered at the IdP for this sidecar' },
    auth_method: {
      enum: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      default: 'client_secret_basic',
      'x-expect': '"client_secret_basic", "client_secret_post" or "private_key_jwt"',
    },
    client_secret: { type: 'string', minLength: 1, 'x-secret': true, 'x-expect': 'the client secret (use ${ENV} or ${file:…})' },
    private_key: { type: 'string', minLength: 1, 'x-path': true, 'x-expect': 'the path of a PKCS#8 PEM private key' },
    private_key_alg: {
      enum: ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'],
      default: 'ES256',
      'x-expect': 'ES256, ES384, RS256, PS256 or EdDSA',
    },
    private_key_kid: { type: 'string', minLength: 1, 'x-expect': 'the key id registered at the IdP' },
    token_type_hint: { type: 'string', default: 'access_token', 'x-expect': 'a token type hint such as "access_token"' },
    token_types: { type: 'array', default: [], items: { type: 'string', minLength: 1, 'x-expect': 'a token_type value such as "Bearer"' } },
  },
} as const;

const issuer = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'issuer'],
  'x-expect': 'a trusted issuer: { id, issuer: "https://idp.example.com", audience: [...] }',
  properties: {
    id: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$', 'x-expect': 'an issuer id of letters, digits, ".", "_" or "-"' },
    issuer: { type: 'string', minLength: 1, 'x-expect': 'the issuer identifier exactly as the IdP writes it in `iss`' },
    discovery: { type: 'boolean', default: true, 'x-expect': 'true or false' },
    jwks_uri: url,
    audience: { type: 'array', default: [], items: { type: 'string', minLength: 1, 'x-expect': 'an audience value' } },
    allow_any_audience: { type: 'boolean', default: false, 'x-expect': 'true or false' },
    jwt: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        algorithms: {
          type: 'array',
          minItems: 1,
          default: ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'],
          items: { enum: ASYMMETRIC_ALGS, 'x-expect': `an asymmetric JWS algorithm (${ASYMMETRIC_ALGS.join(', ')})` },
        },
        typ: { type: 'string', minLength: 1, 'x-expect': 'a JOSE typ such as "at+jwt"' },
        require_client: { type: 'boolean', default: false, 'x-expect': 'true or false' },
      },
    },
    introspection,
  },
} as const;

export const tokensSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['issuers'],
  'x-expect': 'token translation: tokens: { issuers: [ { id, issuer, audience } ] }',
  properties: {
    sources: { type: 'array', minItems: 1, default: [{ from: 'authorization' }], items: tokenSource },
    issuers: { type: 'array', minItems: 1, items: issuer },
    leeway: duration('30s'),
    max_token_bytes: size('8KiB'),
    idp: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        timeouts: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: { connect: duration('2s'), response: duration('3s') },
        },
        breaker: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: { failures: positiveInt(5, 1000), open_for: duration('10s') },
        },
        grace: duration('0s'),
        max_concurrent: positiveInt(64, 10_000),
      },
    },
    cache: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        max_entries: positiveInt(10_000, 10_000_000),
        max_bytes: size('16MiB'),
        max_ttl: duration('60s'),
        negative_ttl: duration('0s'),
        negative_max_entries: positiveInt(1000, 1_000_000),
      },
    },
    shared: {
      type: 'object',
      additionalProperties: false,
      required: ['redis'],
      properties: {
        redis: { type: 'string', pattern: '^rediss?://', 'x-expect': 'a Redis URL like "redis://127.0.0.1:6379"' },
        // No default here: it is `warden:<service.name>:`, set where the service name is known
        // (one prefix for every service let each read the others' answers and revocations).
        prefix: { type: 'string', minLength: 1, 'x-expect': 'a key prefix such as "warden:orders:"' },
        revocation_lag: duration('30s'),
        write_back: duration('30s'),
        key: {
          type: 'string',
          minLength: 32,
          'x-secret': true,
          'x-expect': 'a secret of at least 32 characters, the same on every replica (use ${file:…} or ${ENV})',
        },
      },
    },
    mint: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: true, 'x-expect': 'true or false' },
        issuer: { type: 'string', minLength: 1, 'x-expect': 'the iss of minted tokens' },
        audience: { type: 'string', minLength: 1, 'x-expect': 'the aud of minted tokens (the backend)' },
        header: { ...headerName, default: 'authorization' },
        ttl: duration('5m'),
        max_bytes: size('8KiB'),
        claims: {
          type: 'object',
          default: {},
          'x-expect': 'a map of minted claim → source claim, e.g. { email: email, tenant: org_id }',
          propertyNames: {
            'x-expect':
              'a claim name other than those Warden sets itself (iss, aud, exp, iat, nbf, jti, sub, client_id, scope, cnf, act, idp)',
            pattern: '^(?!(iss|aud|exp|iat|nbf|jti|sub|client_id|scope|cnf|act|idp)$)[A-Za-z_][A-Za-z0-9_.:-]*$',
          },
          additionalProperties: { type: 'string', minLength: 1, 'x-expect': 'a source claim name' },
        },
        key_rotation: duration('24h'),
        jwks_path: { type: 'string', pattern: '^/', 'x-expect': 'an absolute path such as "/.well-known/jwks.json"' },
      },
    },
    dpop: {
      type: 'object',
      additionalProperties: false,
      default: {},
      'x-expect': 'DPoP proof checks (RFC 9449): { max_age, clock_skew, algorithms, replay_cache_entries, replay_entries_per_caller }',
      properties: {
        max_age: duration('60s'),
        clock_skew: duration('5s'),
        algorithms: {
          type: 'array',
          minItems: 1,
          default: [...DPOP_ALGS],
          items: { enum: DPOP_ALGS, 'x-expect': `a DPoP proof algorithm (${DPOP_ALGS.join(', ')})` },
        },
        replay_cache_entries: positiveInt(200_000, 10_000_000),
        // No default: derived from replay_cache_entries (dpop-proof.ts replayShareOf).
        replay_entries_per_caller: {
          type: 'integer',
          minimum: 1,
          maximum: 10_000_000,
          'x-expect': 'an integer 1–10000000 (default: an eighth of replay_cache_entries, at least 1000, at most half)',
        },
      },
    },
    authn: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        mode: { enum: ['auto', 'jwt', 'introspect', 'off'], default: 'auto', 'x-expect': '"auto", "jwt", "introspect" or "off"' },
        optional: { type: 'boolean', default: false, 'x-expect': 'true or false' },
        issuers: { type: 'array', default: [], items: { type: 'string', 'x-expect': 'an issuer id from tokens.issuers' } },
      },
    },
  },
} as const;

/** A route's own authn settings; missing keys come from tokens.authn. */
export const routeAuthn = {
  type: 'object',
  additionalProperties: false,
  properties: {
    mode: { enum: ['auto', 'jwt', 'introspect', 'off'], 'x-expect': '"auto", "jwt", "introspect" or "off"' },
    optional: { type: 'boolean', 'x-expect': 'true or false' },
    issuers: { type: 'array', items: { type: 'string', 'x-expect': 'an issuer id from tokens.issuers' } },
  },
} as const;

export const routeScopes = {
  type: 'object',
  additionalProperties: false,
  'x-expect': 'required scopes: { all_of: [...] } and/or { any_of: [...] }',
  properties: { all_of: scopeList, any_of: scopeList },
} as const;
