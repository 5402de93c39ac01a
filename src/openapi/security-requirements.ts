/**
 * An operation's OpenAPI `security` as what Warden checks. Requirement objects are alternatives
 * (OR); the schemes within one are all needed (AND). By the scheme's type:
 *
 * - `oauth2`, `openIdConnect`, `http` bearer: the caller's token, with the scopes named;
 * - `mutualTLS`: a verified client certificate;
 * - `apiKey`: the credential sent where the scheme says (header, query or cookie) — its value is
 *   the backend's to check, as it was before Warden;
 * - `http` basic, digest or any other: cannot be met beside a bearer token (both are the
 *   Authorization header), so that alternative is never met here.
 *
 * Before, every scheme counted as "a token with these scopes": an alternative of `apiKey` alone
 * admitted any token, so `[{apiKey: []}, {oauth: [pets:admin]}]` served a `pets:read` token
 * without a key.
 *
 * An apiKey scheme where the sidecar reads a token (the Authorization header, any tokens.sources
 * header, cookie or query name, the DPoP or minted-token header) is refused at load: the token
 * there was taken for the key (`{apiKey in Authorization}` met by any bearer token, past the other
 * alternative's `pets:admin`), and a real key there is read as a malformed token and never reaches
 * the backend.
 */
import type { TokenPlaces } from '../config/token-places.js';
import { neverPassedAsSent } from '../net/sidecar-headers.js';
import { isTracePropagationHeader } from '../telemetry/trace-headers.js';
import { OpenApiError, type OpenApiDocument } from './document.js';
import { escapePointer } from './subschemas.js';

export interface ApiKeyLocation {
  readonly in: 'header' | 'query' | 'cookie';
  /** As the scheme spells it; a header's in lower case. */
  readonly name: string;
}

export interface SecurityAlternative {
  /** Every scope its oauth2, openIdConnect and http bearer schemes name. */
  readonly scopes: readonly string[];
  /** Its apiKey schemes: each credential must be sent. */
  readonly apiKeys: readonly ApiKeyLocation[];
  /** A mutualTLS scheme: the caller presented a verified client certificate. */
  readonly peer: boolean;
  /** An oauth2, openIdConnect or http bearer scheme: the caller's token, even with no scopes. */
  readonly token: boolean;
}

/** The names the operations' apiKey schemes read `in` one place (a header's in lower case), each once. */
export function apiKeyNames(
  operations: readonly { readonly security?: readonly SecurityAlternative[] | undefined }[],
  place: ApiKeyLocation['in'],
): Set<string> {
  const names = new Set<string>();
  for (const op of operations)
    for (const alternative of op.security ?? []) for (const key of alternative.apiKeys) if (key.in === place) names.add(key.name);
  return names;
}

/** Whether an alternative is met without a bearer token (API keys and/or a client certificate only). */
export const needsNoToken = (a: SecurityAlternative): boolean => !a.token;

const API_KEY_PLACES = new Set(['header', 'query', 'cookie']);

/** Whether an API key is sent where the sidecar reads (and removes) a caller's token. */
export function carriesToken(key: ApiKeyLocation, places: TokenPlaces | undefined): boolean {
  if (places === undefined) return false;
  if (key.in === 'header') return places.headers.has(key.name);
  return (key.in === 'cookie' ? places.cookies : places.query).has(key.name);
}

/** Where a token source reads `key`, in the words of sidecar.yaml. */
function tokenPlaceName(key: ApiKeyLocation): string {
  if (key.in !== 'header') return `the ${key.in} ${JSON.stringify(key.name)} (a tokens.sources entry)`;
  if (key.name === 'authorization') return 'the Authorization header';
  if (key.name === 'dpop') return 'the DPoP header';
  if (key.name === 'cookie') return 'the Cookie header (a tokens.sources cookie or header entry reads the token there)';
  return `the header ${JSON.stringify(key.name)} (tokens.sources or tokens.mint.header)`;
}

/**
 * The alternatives of a `security` list; `[]` when one is `{}` (public); undefined when the document
 * declares none. A list none of whose alternatives can be met here is an error at load, and so is
 * an apiKey scheme in one of `tokenPlaces` (the configuration's token sources; undefined: none).
 */
export function compileSecurity(
  doc: OpenApiDocument,
  requirements: Record<string, string[]>[] | undefined,
  pointer: string,
  tokenPlaces?: TokenPlaces,
  isInternalHeader: (lowerCaseName: string) => boolean = () => false,
): SecurityAlternative[] | undefined {
  if (requirements === undefined) return undefined;
  if (requirements.length === 0) return []; // security: [] = public
  const schemes = doc.components?.securitySchemes ?? {};
  const alternatives: SecurityAlternative[] = [];
  const unmet: string[] = [];
  for (const [i, req] of requirements.entries()) {
    const names = Object.keys(req);
    if (names.length === 0) return []; // {} = anonymous access is one of the alternatives
    const scopes = new Set<string>();
    const apiKeys: ApiKeyLocation[] = [];
    let peer = false;
    let token = false;
    let never: string | undefined;
    for (const name of names) {
      const scheme = Object.hasOwn(schemes, name) ? (schemes[name] as Record<string, unknown>) : undefined;
      if (scheme === undefined)
        throw new OpenApiError(
          `${pointer}/${i}/${name}`,
          `names security scheme "${name}", which components.securitySchemes does not define`,
        );
      const at = `#/components/securitySchemes/${escapePointer(name)}`;
      switch (scheme.type) {
        case 'oauth2':
        case 'openIdConnect':
          token = true;
          for (const s of req[name] ?? []) scopes.add(s);
          break;
        case 'http':
          if (typeof scheme.scheme === 'string' && scheme.scheme.toLowerCase() === 'bearer') {
            token = true;
            for (const s of req[name] ?? []) scopes.add(s);
          } else never ??= `"${name}" (http ${String(scheme.scheme)})`;
          break;
        case 'apiKey': {
          const place = scheme.in;
          if (typeof place !== 'string' || !API_KEY_PLACES.has(place) || typeof scheme.name !== 'string' || scheme.name === '')
            throw new OpenApiError(at, 'an apiKey scheme needs in (header, query or cookie) and a name');
          const key = { in: place as ApiKeyLocation['in'], name: place === 'header' ? scheme.name.toLowerCase() : scheme.name };
          if (carriesToken(key, tokenPlaces))
            throw new OpenApiError(
              at,
              `apiKey scheme "${name}" is sent in ${tokenPlaceName(key)}, where Warden reads the caller's token: any token would be taken for the key, and a key there is refused as a malformed token and never reaches the backend; send the key elsewhere (e.g. in: header, name: X-Api-Key)`,
            );
          // Met only when the backend receives the key as sent (authz-scopes.ts apiKeySent): in a
          // header the sidecar removes or sets itself, every caller was refused and nothing said why.
          const dropped = place === 'header' ? (neverPassedAsSent(key.name, isInternalHeader) ?? rewrittenWhenTraced(key.name)) : undefined;
          if (dropped !== undefined)
            throw new OpenApiError(
              at,
              `apiKey scheme "${name}" is sent in the header ${JSON.stringify(scheme.name)}, ${dropped}: the key could never be met; send it in another header (e.g. X-Api-Key)`,
            );
          apiKeys.push(key);
          break;
        }
        case 'mutualTLS':
          peer = true;
          break;
        default:
          throw new OpenApiError(
            `${at}/type`,
            `must be apiKey, http, mutualTLS, oauth2 or openIdConnect, got ${JSON.stringify(scheme.type)}`,
          );
      }
    }
    if (never !== undefined) unmet.push(never);
    else alternatives.push({ scopes: [...scopes], apiKeys, peer, token });
  }
  if (alternatives.length === 0)
    throw new OpenApiError(
      pointer,
      `every requirement needs a scheme a bearer token cannot meet (${unmet.join(', ')}): add an oauth2, openIdConnect or http bearer alternative, or set openapi.operations.<operationId>.scopes`,
    );
  return alternatives;
}

/** A trace header is checked before the request is traced (authz-scopes runs first), then rewritten for the backend. */
function rewrittenWhenTraced(name: string): string | undefined {
  return isTracePropagationHeader(name.toLowerCase().replaceAll('_', '-'))
    ? 'a trace propagation header, which the sidecar rewrites when it traces'
    : undefined;
}
