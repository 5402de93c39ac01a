/**
 * RFC 7662 introspection and RFC 7009 revocation calls, with the client authentication the IdP
 * registered for this sidecar: client_secret_basic, client_secret_post or private_key_jwt
 * (RFC 7523, a fresh signed assertion per call so replay protection at the IdP holds).
 */
import { createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import { MAX_SECRET_FILE_BYTES, readFileBounded } from '../config/bounded-file.js';
import { SignJWT } from 'jose';
import type { IssuerConfig } from '../config/types.js';
import type { SpanParent } from '../telemetry/client-span.js';
import { MAX_CLAIM_DEPTH, nestsDeeperThan } from './claim-depth.js';
import { IdpError, type IdpHttp, type IdpResponse } from './idp-http.js';

type IntrospectionConfig = NonNullable<IssuerConfig['introspection']>;

export interface IntrospectionClient {
  /** The introspection answer (an object with at least `active`); IdpError when the IdP could not answer. */
  introspect(endpoint: string, token: string, parent?: SpanParent): Promise<Record<string, unknown>>;
  /** Revokes a token at the IdP (RFC 7009). */
  revoke(endpoint: string, token: string): Promise<void>;
}

/** OAuth `error` codes with which an IdP refuses the token asked about, not the client asking. */
const TOKEN_REFUSALS: ReadonlySet<string> = new Set(['unsupported_token_type', 'invalid_token']);

/** The answer's times (RFC 7662 §2.2: seconds since the epoch); each is optional, but a number when present. */
const TIME_CLAIMS = ['exp', 'iat', 'nbf'] as const;

const isTimeOrAbsent = (value: unknown): boolean => value === undefined || (typeof value === 'number' && Number.isFinite(value));

function oauthError(res: IdpResponse): string {
  try {
    const error = (res.json() as { error?: unknown } | null)?.error;
    return typeof error === 'string' ? error : '';
  } catch {
    return '';
  }
}

/** Retry-After (RFC 9110 §10.2.3: seconds, or an HTTP date) in ms from now; undefined when absent or unreadable. */
export function retryAfterMsOf(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function createIntrospectionClient(cfg: IntrospectionConfig, issuer: string, http: IdpHttp): IntrospectionClient {
  const key: KeyObject | undefined = cfg.private_key
    ? createPrivateKey(readFileBounded(cfg.private_key, MAX_SECRET_FILE_BYTES))
    : undefined;

  const authenticate = async (form: URLSearchParams): Promise<Record<string, string>> => {
    switch (cfg.auth_method) {
      case 'client_secret_basic': {
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
        const pair = `${encodeURIComponent(cfg.client_id)}:${encodeURIComponent(cfg.client_secret ?? '')}`;
        return { authorization: `Basic ${Buffer.from(pair).toString('base64')}` };
      }
      case 'client_secret_post':
        form.set('client_id', cfg.client_id);
        form.set('client_secret', cfg.client_secret ?? '');
        return {};
      case 'private_key_jwt': {
        const assertion = await new SignJWT({})
          .setProtectedHeader({ alg: cfg.private_key_alg, ...(cfg.private_key_kid ? { kid: cfg.private_key_kid } : {}) })
          .setIssuer(cfg.client_id)
          .setSubject(cfg.client_id)
          .setAudience(issuer)
          .setJti(randomUUID())
          .setIssuedAt()
          .setExpirationTime('60s')
          .sign(key as KeyObject);
        form.set('client_id', cfg.client_id);
        form.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
        form.set('client_assertion', assertion);
        return {};
      }
    }
  };

  const post = async (endpoint: string, form: URLSearchParams, parent?: SpanParent) => {
    const headers = await authenticate(form);
    return http.request(endpoint, {
      parent,
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
  };

  return {
    async introspect(endpoint, token, parent) {
      const form = new URLSearchParams({ token });
      if (cfg.token_type_hint) form.set('token_type_hint', cfg.token_type_hint);
      const res = await post(endpoint, form, parent);
      // The IdP judged the token, not us: the answer RFC 7662 §2.2 asks for (active: false), not an
      // IdP failure. Counted as one, a caller's junk tokens opened the circuit for every new token
      // (oidc-provider answers 400 unsupported_token_type to anything shaped like a JWT).
      if (res.status === 400 && TOKEN_REFUSALS.has(oauthError(res))) return { active: false };
      // Back-pressure, not an outage: the IdP is up and asks us to slow down (introspector.ts waits
      // out its Retry-After instead of counting it towards opening the circuit breaker).
      if (res.status === 429) {
        throw new IdpError('throttled', `introspection at ${endpoint} answered 429 (too many requests)`, {
          retryAfterMs: retryAfterMsOf(res.header('retry-after')),
        });
      }
      // Any other 4xx means the IdP refused *us* (client credentials, policy): the token was not judged.
      if (res.status !== 200) throw new IdpError('status', `introspection at ${endpoint} answered ${res.status}`);
      const answer = res.json();
      if (typeof answer !== 'object' || answer === null || typeof (answer as { active?: unknown }).active !== 'boolean') {
        throw new IdpError('bad_response', `introspection at ${endpoint} answered without a boolean "active"`);
      }
      // Nested deeper than any real claim: code that walks claims recursively (the cache's size
      // estimate, SignJWT) overflowed the stack on it, a 500 on every request. A broken IdP, not
      // a verdict on the token, like the malformed answers below.
      if (nestsDeeperThan(answer, MAX_CLAIM_DEPTH)) {
        throw new IdpError('bad_response', `introspection at ${endpoint} answered JSON nested more than ${MAX_CLAIM_DEPTH} levels deep`);
      }
      const claims = answer as Record<string, unknown>;
      const malformed = claims.active === true ? TIME_CLAIMS.find((name) => !isTimeOrAbsent(claims[name])) : undefined;
      // A string "exp" used to be read as no expiry at all, so the answer was trusted up to
      // cache.max_ttl and a token the IdP had dated long expired was accepted: such an answer
      // cannot be relied on for the token's lifetime, so, like a missing "active", it is the IdP's
      // failure (503), not a verdict on the caller's token.
      if (malformed !== undefined) {
        throw new IdpError('bad_response', `introspection at ${endpoint} answered "${malformed}" that is not a number of seconds`);
      }
      return claims;
    },
    async revoke(endpoint, token) {
      const form = new URLSearchParams({ token });
      if (cfg.token_type_hint) form.set('token_type_hint', cfg.token_type_hint);
      const res = await post(endpoint, form);
      if (res.status !== 200) throw new IdpError('status', `revocation at ${endpoint} answered ${res.status}`);
    },
  };
}
