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
 */
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

/** Whether an alternative is met without a bearer token (API keys and/or a client certificate only). */
export const needsNoToken = (a: SecurityAlternative): boolean => !a.token;

const API_KEY_PLACES = new Set(['header', 'query', 'cookie']);

/**
 * The alternatives of a `security` list; `[]` when one is `{}` (public); undefined when the document
 * declares none. A list none of whose alternatives can be met here is an error at load.
 */
export function compileSecurity(
  doc: OpenApiDocument,
  requirements: Record<string, string[]>[] | undefined,
  pointer: string,
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
          apiKeys.push({ in: place as ApiKeyLocation['in'], name: place === 'header' ? scheme.name.toLowerCase() : scheme.name });
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
