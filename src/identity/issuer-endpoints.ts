/**
 * Where an issuer's keys, introspection and revocation endpoints are: configured, or discovered
 * from OpenID Connect Discovery (then RFC 8414 metadata: `metadataUrls`). Discovery failures are retried on demand,
 * at most once per cooldown, so an IdP outage at startup does not stop the sidecar (requests get
 * 503 until the IdP answers) nor turn every request into a discovery call.
 */
import type { IssuerConfig } from '../config/types.js';
import { IdpError, type IdpHttp } from './idp-http.js';

export interface IssuerEndpoints {
  jwksUri: string | undefined;
  introspection: string | undefined;
  revocation: string | undefined;
}

const RETRY_COOLDOWN_MS = 5000;

export interface EndpointResolver {
  /** The endpoints, discovering them first if needed; rejects with IdpError while the IdP cannot say. */
  get(): Promise<IssuerEndpoints>;
  /** Endpoints already known, without waiting. */
  readonly known: IssuerEndpoints | undefined;
}

/**
 * A discovered endpoint: an http(s) URL, and https when the issuer is. An https issuer whose
 * document sends the client secret, callers' tokens or the keys over plain http would let anyone
 * on the path read them, or swap the keys and forge any token.
 */
function endpointOf(meta: Record<string, unknown>, field: string, base: string): string | undefined {
  const v = meta[field];
  if (typeof v !== 'string' || !/^https?:\/\//.test(v)) return undefined;
  if (base.startsWith('https://') && !v.startsWith('https://'))
    throw new IdpError('bad_response', `discovery at ${base} names ${field} ${JSON.stringify(v)}: plain http for an https issuer`);
  return v;
}

/**
 * Where an issuer's metadata is looked for, in this order: OpenID Connect Discovery §4 appends
 * `/.well-known/openid-configuration` to the issuer (what OpenID providers with a path — Keycloak's
 * realms, Okta's servers, Azure AD's tenants — serve, asked first as it always was); RFC 8414 §3.1
 * puts `/.well-known/oauth-authorization-server` between the host and the issuer's path; and the
 * appended form of that, which servers used before RFC 8414 said otherwise (§5), last. An issuer
 * without a path has one oauth-authorization-server URL. Computed once per resolver, not per request.
 */
export function metadataUrls(issuer: string): string[] {
  const base = issuer.replace(/\/$/, '');
  const urls = [`${base}/.well-known/openid-configuration`];
  let parsed: URL | undefined;
  try {
    parsed = new URL(base);
  } catch {
    // Not a URL: no request to it can succeed either, and the failure says so.
  }
  // RFC 8414 §3.1: a terminating "/" of the path is removed before the well-known segment goes in.
  const path = parsed ? parsed.pathname.replace(/\/$/, '') : '';
  if (parsed && path) urls.push(`${parsed.origin}/.well-known/oauth-authorization-server${path}`);
  urls.push(`${base}/.well-known/oauth-authorization-server`);
  return urls;
}

/**
 * What decides where an issuer's keys and endpoints come from: its `iss`, discovery and the endpoints
 * configured over it. Two issuer settings with the same key source get the same discovery answer and
 * the same keys; audiences, algorithms, `typ` and introspection's client and token types only decide
 * what is accepted with them, and are applied by whichever runtime verifies.
 */
export function keySourceOf(cfg: IssuerConfig): string {
  return JSON.stringify([
    cfg.issuer,
    cfg.discovery,
    cfg.jwks_uri ?? null,
    cfg.introspection?.endpoint ?? null,
    cfg.introspection?.revocation_endpoint ?? null,
  ]);
}

/**
 * `previous`: what the resolver this one replaces (a reload) discovered for the same key source
 * (`keySourceOf`). Discovery is asked again; when it fails, those endpoints are used, as the replaced
 * resolver went on using them: an IdP down during a reload does not undo what was found before it.
 */
export function createEndpointResolver(cfg: IssuerConfig, http: IdpHttp, previous?: IssuerEndpoints): EndpointResolver {
  const configured: IssuerEndpoints = {
    jwksUri: cfg.jwks_uri,
    introspection: cfg.introspection?.endpoint,
    revocation: cfg.introspection?.revocation_endpoint,
  };
  if (!cfg.discovery) return { get: async () => configured, known: configured };

  let known: IssuerEndpoints | undefined;
  let pending: Promise<IssuerEndpoints> | undefined;
  let failedAt = 0;
  let lastError: IdpError | undefined;

  const base = cfg.issuer.replace(/\/$/, '');
  const urls = metadataUrls(cfg.issuer);
  const discover = async (): Promise<IssuerEndpoints> => {
    const answers: string[] = [];
    for (const url of urls) {
      const res = await http.request(url);
      if (res.status !== 200) {
        answers.push(`${res.status} at ${url}`);
        if (res.status >= 500) break;
        continue;
      }
      const meta = res.json() as Record<string, unknown>;
      // RFC 8414 §3.3 / OIDC Discovery §4.3: a document for another issuer is an attack (mix-up), not a config.
      if (meta.issuer !== cfg.issuer) {
        throw new IdpError(
          'bad_response',
          `discovery at ${url} names issuer ${JSON.stringify(meta.issuer)}, not ${JSON.stringify(cfg.issuer)}`,
        );
      }
      return {
        jwksUri: configured.jwksUri ?? endpointOf(meta, 'jwks_uri', base),
        introspection: configured.introspection ?? endpointOf(meta, 'introspection_endpoint', base),
        revocation: configured.revocation ?? endpointOf(meta, 'revocation_endpoint', base),
      };
    }
    // What it answered, each URL asked: the IdP is up, its metadata is not where it was looked for.
    throw new IdpError('status', `discovery for ${cfg.issuer} answered ${answers.join(', ')}`);
  };

  return {
    get known() {
      return known;
    },
    get() {
      if (known) return Promise.resolve(known);
      if (pending) return pending;
      if (lastError && Date.now() - failedAt < RETRY_COOLDOWN_MS) return Promise.reject(lastError);
      pending = discover().then(
        (endpoints) => {
          known = endpoints;
          pending = undefined;
          return endpoints;
        },
        (err: unknown) => {
          pending = undefined;
          if (previous) return (known = previous);
          failedAt = Date.now();
          lastError = err instanceof IdpError ? err : new IdpError('bad_response', (err as Error).message, { cause: err });
          throw lastError;
        },
      );
      return pending;
    },
  };
}
