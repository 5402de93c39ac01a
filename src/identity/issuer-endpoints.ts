/**
 * Where an issuer's keys, introspection and revocation endpoints are: configured, or discovered
 * from OpenID Connect Discovery (then RFC 8414 metadata). Discovery failures are retried on demand,
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

  const discover = async (): Promise<IssuerEndpoints> => {
    const base = cfg.issuer.replace(/\/$/, '');
    let lastStatus = 0;
    for (const wellKnown of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
      const res = await http.request(base + wellKnown);
      if (res.status !== 200) {
        lastStatus = res.status;
        if (res.status >= 500) break;
        continue;
      }
      const meta = res.json() as Record<string, unknown>;
      // RFC 8414 §3.3 / OIDC Discovery §4.3: a document for another issuer is an attack (mix-up), not a config.
      if (meta.issuer !== cfg.issuer) {
        throw new IdpError(
          'bad_response',
          `discovery at ${base} names issuer ${JSON.stringify(meta.issuer)}, not ${JSON.stringify(cfg.issuer)}`,
        );
      }
      return {
        jwksUri: configured.jwksUri ?? endpointOf(meta, 'jwks_uri', base),
        introspection: configured.introspection ?? endpointOf(meta, 'introspection_endpoint', base),
        revocation: configured.revocation ?? endpointOf(meta, 'revocation_endpoint', base),
      };
    }
    throw new IdpError('status', `discovery at ${base} answered ${lastStatus}`);
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
