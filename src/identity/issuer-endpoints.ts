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

export function createEndpointResolver(cfg: IssuerConfig, http: IdpHttp): EndpointResolver {
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
      const url = (v: unknown) => (typeof v === 'string' && /^https?:\/\//.test(v) ? v : undefined);
      return {
        jwksUri: configured.jwksUri ?? url(meta.jwks_uri),
        introspection: configured.introspection ?? url(meta.introspection_endpoint),
        revocation: configured.revocation ?? url(meta.revocation_endpoint),
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
          failedAt = Date.now();
          lastError = err instanceof IdpError ? err : new IdpError('bad_response', (err as Error).message, { cause: err });
          throw lastError;
        },
      );
      return pending;
    },
  };
}
