/**
 * The operations of an OpenAPI document as routes: base paths from `servers` × `paths` × methods,
 * path templates in find-my-way syntax, the operation's security requirements as alternatives
 * (security-requirements.ts), and the per-operation
 * rate limit from the `x-warden-rate-limit` extension.
 */
import type { RateLimitConfig } from '../config/types.js';
import { closest } from '../config/closest-name.js';
import { costProblem } from '../config/rate-limit-schema.js';
import { MAX_TIMER_MS } from '../config/schema-parts.js';
import { parseDuration } from '../config/units.js';
import type { TokenPlaces } from '../config/token-places.js';
import { normaliseTarget } from '../net/request-target.js';
import { patternProblem } from '../net/pattern-form.js';
import { WardenError } from '../errors.js';
import { holdsNoSchema, OpenApiError, type OpenApiDocument } from './document.js';
import { compileSecurity, type SecurityAlternative } from './security-requirements.js';
import { escapePointer } from './subschemas.js';
import { OPERATION_METHODS } from './operation-methods.js';
import { parameterNameProblem, routerNamesOf } from './path-parameter-names.js';
import { RATE_LIMIT_EXTENSION, refuseUnreadWardenExtensions } from './warden-extensions.js';
import type { EncodingObject } from './form-encoding.js';

export interface Operation {
  /** operationId, or "METHOD /path" when the document gives none. */
  readonly id: string;
  readonly method: string;
  /** find-my-way patterns, one per server base path. */
  readonly paths: readonly string[];
  /** JSON pointer of the operation, for messages. */
  readonly pointer: string;
  /**
   * Router name → declared name of every path parameter, when one is routed under another name
   * (`{user-id}` as `:user_id`: path-parameter-names.ts); undefined when every name is its own.
   */
  readonly routedNames?: ReadonlyMap<string, string> | undefined;
  /**
   * Security alternatives: the request passes when it meets one of them in full. `[]` means the
   * document declares the operation public (`security: []` or an empty requirement); undefined means
   * no security is declared.
   */
  readonly security: readonly SecurityAlternative[] | undefined;
  readonly rateLimit: RateLimitConfig | undefined;
  /** Path-level and operation-level parameters (dereferenced; the operation's win by name + in). */
  readonly parameters: readonly ParameterObject[];
  readonly requestBody: RequestBodyObject | undefined;
  /** Responses by status code ("200", "2XX", "default"), dereferenced. */
  readonly responses: Readonly<Record<string, { content?: Record<string, { schema?: Record<string, unknown> }> }>>;
  /** "3.0" or "3.1": which JSON Schema dialect the schemas speak. */
  readonly dialect: '3.0' | '3.1';
  /** The document's components.schemas (dereferenced): the names a discriminator's mapping gives its branches. */
  readonly components?: Readonly<Record<string, unknown>>;
}

export interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  style?: string;
  explode?: boolean;
  schema?: Record<string, unknown>;
  /** In place of `schema`: one media type and its schema (content-parameters.ts). */
  content?: Record<string, { schema?: Record<string, unknown> }>;
}

export interface RequestBodyObject {
  required?: boolean;
  content?: Record<string, { schema?: Record<string, unknown>; encoding?: Record<string, EncodingObject> }>;
}

function mergeParameters(pathLevel: unknown, opLevel: unknown): ParameterObject[] {
  const byKey = new Map<string, ParameterObject>();
  for (const list of [pathLevel, opLevel]) {
    if (!Array.isArray(list)) continue;
    for (const p of list as ParameterObject[]) byKey.set(`${p.in}:${p.in === 'header' ? p.name.toLowerCase() : p.name}`, p);
  }
  return [...byKey.values()];
}

/**
 * A schema that is there but holds nothing (`schema: ~`, or a `$ref` into a definition that was
 * emptied: `Order:` with no value) was read as no schema: the body or parameter went unchecked
 * (a reload said it had reloaded). A 3.1 boolean schema is a schema.
 */
function refuseBlankSchemas(parameters: readonly ParameterObject[], requestBody: RequestBodyObject | undefined, pointer: string): void {
  const why =
    'is empty (null or a scalar, e.g. a $ref to a definition with no value): give a schema, or leave schema out to accept anything';
  for (const p of parameters)
    if (Object.hasOwn(p, 'schema') && holdsNoSchema(p.schema))
      throw new OpenApiError(`${pointer}/parameters`, `parameter "${p.name}" in ${p.in}: schema ${why}`);
  for (const [type, media] of Object.entries(requestBody?.content ?? {}))
    if (
      media !== null &&
      typeof media === 'object' &&
      Object.hasOwn(media, 'schema') &&
      holdsNoSchema((media as { schema?: unknown }).schema)
    )
      throw new OpenApiError(`${pointer}/requestBody/content/${escapePointer(type)}/schema`, why);
}

const pointerOf = (...segments: string[]) => `#/${segments.map(escapePointer).join('/')}`;

/** A template's `{name}` parts (split keeps them: odd indexes). */
const TEMPLATE_PARAMETER = /(\{[^{}]*\})/;

/** A template's route: the router's pattern and, when a name is routed under another, router name → declared name. */
interface TemplateRoute {
  readonly pattern: string;
  readonly routedNames: ReadonlyMap<string, string> | undefined;
}

/**
 * Refuses a template whose braces are not parameters (`/a/{a{b}`, `/a/{a}b}`: a name holding a
 * brace), or a parameter whose name no path segment's parameter can have (path-parameter-names.ts).
 */
function refuseUnnamableParameters(template: string, pointer: string): void {
  const parts = template.split(TEMPLATE_PARAMETER);
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    if (i % 2 === 1) {
      const problem = parameterNameProblem(part.slice(1, -1));
      if (problem !== undefined) throw new OpenApiError(pointer, problem);
    } else if (part.includes('{') || part.includes('}'))
      throw new OpenApiError(
        pointer,
        part.includes('{')
          ? 'a "{" that opens no parameter (no "}" closes it before the next "{"): a name cannot hold a brace'
          : 'a "}" that closes no parameter: a name cannot hold a brace',
      );
  }
}

/**
 * `/pets/{petId}/photos` → `/pets/:petId/photos`, for the router (find-my-way), whose own syntax the
 * template's literal parts must not speak: a literal `:` (Google's custom methods, `/items:search`,
 * AIP-136) is `::`, and a parameter right before one (`/jobs/{id}:cancel`) takes no colon. Read as
 * router syntax, `/items:search` was `/items` + a parameter: every path starting `/items` (`/items`,
 * `/items:purge`, `/itemsexport`) got that operation's policy (docs/adversarial.md 196). A literal
 * `*` (the router's wildcard) cannot be routed, and is refused. A name the router would end early
 * (`{user-id}`) is routed under a router-safe one (path-parameter-names.ts).
 */
function toRoutePattern(template: string, pointer: string): TemplateRoute {
  if (template.includes('*'))
    throw new OpenApiError(pointer, 'a literal "*" in a path cannot be routed (the router reads it as a wildcard)');
  const parts = template.split(TEMPLATE_PARAMETER);
  const declared = parts.filter((_, i) => i % 2 === 1).map((part) => part.slice(1, -1));
  const routed = routerNamesOf(declared);
  const pattern = parts
    .map((part, i) => {
      if (i % 2 === 0) return part.replaceAll(':', '::');
      const name = routed[(i - 1) / 2] as string;
      // `/b/{x}{y}` became `:x:y`, one parameter named "x:y": every request was refused "/path/x is required".
      if (parts[i + 1] === '' && i + 2 < parts.length)
        throw new OpenApiError(
          pointer,
          `path parameters "${part}" and "${parts[i + 2]}" have nothing between them, so no request can tell where one ends: put a literal between them (e.g. "${part}-${parts[i + 2]}")`,
        );
      return parts[i + 1]?.startsWith(':') ? `:${name}(^[^/:]+)` : `:${name}`;
    })
    .join('');
  // Whatever else the router would read differently from the template (`{id}_v2` is a parameter
  // named "id_v2"), refused rather than left to fail every request.
  const captured = routerParameterNames(pattern);
  const lost = routed.findIndex((name, i) => captured[i] !== name);
  if (lost !== -1 || captured.length !== routed.length) {
    const at = lost === -1 ? routed.length - 1 : lost;
    const name = declared[at] ?? '';
    const after = parts[2 * at + 2]?.[0] ?? '';
    // The name as the router read it, in the template's spelling: the declared name and what it read on.
    const readAs = name + (captured[at] ?? '').slice((routed[at] ?? '').length);
    throw new OpenApiError(
      pointer,
      `path parameter "{${name}}" is followed by "${after}", which the router reads as part of its name ("${readAs}"): follow a parameter with "/", "-", "." or ":"`,
    );
  }
  const renamed = routed.some((name, i) => name !== declared[i]);
  return { pattern, routedNames: renamed ? new Map(routed.map((name, i) => [name, declared[i] as string])) : undefined };
}

/**
 * The parameter names find-my-way reads from a pattern: a name runs from ":" to "(", "-", "." or
 * "/" (or the end); "::" is a literal colon; a "(…)" after a name is its regular expression.
 */
function routerParameterNames(pattern: string): string[] {
  const names: string[] = [];
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] !== ':') continue;
    if (pattern[i + 1] === ':') {
      i++;
      continue;
    }
    let end = i + 1;
    while (end < pattern.length && !'(-./'.includes(pattern[end] ?? '')) end++;
    names.push(pattern.slice(i + 1, end));
    if (pattern[end] === '(') end = pattern.indexOf(')', end);
    i = end;
  }
  return names;
}

/** More base paths than this from one document's server variables is refused: each is a route per operation. */
const MAX_BASE_PATHS = 64;

/** What a file document's relative server URLs are resolved against: it has no HTTP location, so `v1` is `/v1`. */
const FILE_DOCUMENT_BASE = 'http://localhost/';

/**
 * The base path one server URL (its variables substituted) gives: the URL resolved as a URI
 * reference (RFC 3986 §5) against the document's own URL (`documentBase`), its path normalised as
 * a request's is (request-target.ts: unreserved escapes decoded, dot-segments) and decoded as the
 * router decodes a request's, without a trailing slash. Before, only a URL with a scheme was
 * parsed: `//api.example.com/v1` (protocol-relative, common from Swagger 2 conversions) was the
 * base `//api.example.com/v1` that no request has, and `/v1?tenant=a` was `/v1?tenant=a`: under
 * `routing.unmatched: passthrough` every request then passed unchecked. A query or fragment cannot
 * be part of a base path, nor can a scheme other than http(s): refused.
 */
function basePathOf(url: string, documentBase: string, at: string): string {
  const problem = (what: string) =>
    new OpenApiError(
      at,
      `server URL ${JSON.stringify(url)} ${what}; a server URL is an http(s) URL or a reference relative to the document, such as /v1`,
    );
  if (url.includes('?') || url.includes('#'))
    throw problem(`has a ${url.includes('?') ? 'query' : 'fragment'}, which cannot be part of a base path: remove it`);
  let resolved: URL;
  try {
    // An empty URL is the root, as it always was here (as a reference it would name the document itself).
    resolved = new URL(url === '' ? '/' : url, documentBase);
  } catch {
    throw problem('cannot be read as a URL');
  }
  if (resolved.protocol !== 'http:' && resolved.protocol !== 'https:') throw problem(`has the scheme ${resolved.protocol.slice(0, -1)}`);
  const normalised = normaliseTarget(resolved.pathname);
  if (normalised instanceof WardenError)
    throw problem(`has a path no request can have (${(normalised.detail ?? normalised.message).replace(/\.$/, '')})`);
  // As the router reads a request's path before matching it (find-my-way: decodeURI, "%25" kept):
  // `/api v1` and `/api%20v1` are one base, matched by `/api%20v1/items`.
  let routed: string;
  try {
    routed = decodeURI(normalised.path.replaceAll('%25', '%2525'));
  } catch {
    throw problem('has a path no request can have (an escape that is not UTF-8)');
  }
  return routed.replace(/\/+$/, '');
}

/**
 * Base paths from a `servers` list (the path part of each URL, each variable at every value its
 * `enum` lists, or its default), in the router's syntax; "" when none. With the default alone,
 * `/v2/items` of a server `/{version}` (enum v1, v2) matched no operation: 404, or under
 * `routing.unmatched: passthrough` the default policy, past the operation's validation, scopes and
 * rate limit (docs/adversarial.md 197).
 */
function basePaths(servers: Server[] | undefined, pointer: string, documentBase: string): string[] {
  const list = servers?.length ? servers : [{ url: '/' }];
  const bases: string[] = [];
  list.forEach((s, i) => {
    const at = `${pointer}/${i}/url`;
    let urls = [s.url];
    for (const [, v] of s.url.matchAll(/\{([^{}]+)\}/g)) {
      const variable = s.variables?.[v as string];
      if (variable?.default === undefined) throw new OpenApiError(at, `server variable "${v}" has no default`);
      const values = [...new Set([variable.default, ...(Array.isArray(variable.enum) ? variable.enum.map(String) : [])])];
      urls = urls.flatMap((u) => values.map((value) => u.replace(`{${v}}`, value)));
      if (urls.length > MAX_BASE_PATHS) throw new OpenApiError(at, `its variables' values make more than ${MAX_BASE_PATHS} base paths`);
    }
    for (const url of urls) {
      const path = basePathOf(url, documentBase, at);
      if (path.includes('*'))
        throw new OpenApiError(at, 'a literal "*" in a base path cannot be routed (the router reads it as a wildcard)');
      bases.push(path.replaceAll(':', '::'));
    }
  });
  return [...new Set(bases)];
}

/** The bounds sidecar.yaml's `rate_limit` has (rate-limit-schema.ts): the extension is held to the same. */
const MAX_RATE = 1_000_000_000;
const MAX_COST = 1_000_000;
const MAX_PER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);

const RATE_LIMIT_KEYS = ['rate', 'per', 'per_seconds', 'burst', 'cost'];
const RATE_LIMIT_NEEDS = 'needs rate: an integer ≥ 1 (and optionally per or per_seconds, burst, cost)';

/**
 * The window, in milliseconds: `per_seconds` (a number of seconds), or `per` as sidecar.yaml's
 * buckets spell it, a duration with its unit ("1m"). A bare number for `per` is refused: sidecar.yaml
 * reads it as milliseconds, an operator writing `per: 60` here meant seconds (red team 28 §2: it was
 * dropped, and the limit ran at 5 a second instead of 5 a minute).
 */
function windowOf(ext: Record<string, unknown>, at: string): number {
  if (ext.per !== undefined && ext.per_seconds !== undefined)
    throw new OpenApiError(`${at}/per`, 'give the window either as per (a duration like "1m") or as per_seconds, not both');
  if (ext.per !== undefined) {
    const bare =
      typeof ext.per === 'number'
        ? String(ext.per)
        : typeof ext.per === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(ext.per)
          ? ext.per.trim()
          : undefined;
    if (bare !== undefined)
      throw new OpenApiError(`${at}/per`, `needs a unit: write per: "${bare}s" (or per_seconds: ${bare}) for seconds, or "ms", "m", "h"`);
    const ms = parseDuration(ext.per);
    if (ms === undefined || ms < 1 || ms > MAX_PER_SECONDS * 1000)
      throw new OpenApiError(`${at}/per`, `must be a duration like "1s" or "1m", above 0 and at most 596h, got ${JSON.stringify(ext.per)}`);
    return ms;
  }
  const perSeconds = ext.per_seconds === undefined ? 1 : ext.per_seconds;
  // Finite and bounded: `.inf` turned the limit off (NaN in the bucket), 1e300 a Retry-After of 1e300 s.
  if (typeof perSeconds !== 'number' || !(perSeconds > 0) || perSeconds > MAX_PER_SECONDS)
    throw new OpenApiError(`${at}/per_seconds`, `must be a number of seconds > 0 and at most ${MAX_PER_SECONDS} (596 h)`);
  return perSeconds * 1000;
}

function rateLimitOf(op: Record<string, unknown>, pointer: string): RateLimitConfig | undefined {
  const ext = op[RATE_LIMIT_EXTENSION] as Record<string, unknown> | undefined;
  if (ext === undefined) return undefined;
  const at = `${pointer}/${RATE_LIMIT_EXTENSION}`;
  if (typeof ext !== 'object' || ext === null || Array.isArray(ext)) throw new OpenApiError(at, RATE_LIMIT_NEEDS);
  // A key not read was a limit other than the one written (`brust`, `per_second`).
  for (const key of Object.keys(ext))
    if (!RATE_LIMIT_KEYS.includes(key)) {
      const hint = closest(key, RATE_LIMIT_KEYS);
      throw new OpenApiError(
        `${at}/${escapePointer(key)}`,
        `unknown key${hint ? `; did you mean "${hint}"?` : ''} (allowed: ${RATE_LIMIT_KEYS.join(', ')})`,
      );
    }
  // Absent: the default; present: an integer in range, or an error (a wrong value silently
  // replaced by the default would be a limit other than the one written).
  const int = (name: string, max: number): number | undefined => {
    const v = ext[name];
    if (v === undefined) return undefined;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= max) return v;
    throw new OpenApiError(`${at}/${name}`, `must be an integer from 1 to ${max}, got ${JSON.stringify(v)}`);
  };
  const rate = int('rate', MAX_RATE);
  if (rate === undefined) throw new OpenApiError(at, RATE_LIMIT_NEEDS);
  const per = windowOf(ext, at);
  const burst = int('burst', MAX_RATE);
  const cost = int('cost', MAX_COST);
  const bucket = { rate, per, burst, cost };
  const problem = costProblem(bucket);
  if (problem) throw new OpenApiError(`${at}/cost`, problem);
  return bucket;
}

type Server = NonNullable<OpenApiDocument['servers']>[number];

export interface OperationsOptions {
  /** Where the document was fetched from (an http(s) URL): relative server URLs are relative to it. */
  readonly documentUrl?: string;
  /** Where the configuration reads a caller's token: an apiKey scheme there is refused (security-requirements.ts). */
  readonly tokenPlaces?: TokenPlaces;
  /** The configuration's headers.internal: an apiKey scheme in one is refused, as it never reaches the backend. */
  readonly isInternalHeader?: (lowerCaseName: string) => boolean;
}

export function operationsOf(doc: OpenApiDocument, options: OperationsOptions = {}): Operation[] {
  const documentBase =
    options.documentUrl !== undefined && /^https?:\/\//i.test(options.documentUrl) ? options.documentUrl : FILE_DOCUMENT_BASE;
  const basesOf = (servers: Server[] | undefined, pointer: string) => basePaths(servers, pointer, documentBase);
  refuseUnreadWardenExtensions(doc);
  const documentBases = basesOf(doc.servers, '#/servers');
  const ops: Operation[] = [];
  const ids = new Map<string, string>();
  for (const [template, item] of Object.entries(doc.paths ?? {})) {
    // A template requests never match (`/e/%7Bb%7D`, `/a//b`) was a dead operation, or under passthrough one whose policy never applied.
    // The names first: a control character in one is a name's problem, not a path's.
    refuseUnnamableParameters(template, pointerOf('paths', template));
    const problem = patternProblem(template, 'template');
    if (problem !== undefined) throw new OpenApiError(pointerOf('paths', template), problem);
    for (const method of OPERATION_METHODS) {
      const op = item[method] as Record<string, unknown> | undefined;
      if (op === undefined) continue;
      const pointer = pointerOf('paths', template, method);
      const id = typeof op.operationId === 'string' ? op.operationId : `${method.toUpperCase()} ${template}`;
      const seen = ids.get(id);
      if (seen) throw new OpenApiError(`${pointer}/operationId`, `operationId "${id}" is also used at ${seen}`);
      ids.set(id, pointer);
      const { pattern, routedNames } = toRoutePattern(template, pointer);
      // A path item's or an operation's own `servers` replace the document's (OpenAPI 3 §4.8.9, §4.8.10).
      const bases = Array.isArray(op.servers)
        ? basesOf(op.servers as Server[], `${pointer}/servers`)
        : Array.isArray(item.servers)
          ? basesOf(item.servers as Server[], `${pointerOf('paths', template)}/servers`)
          : documentBases;
      const security = (op.security as Record<string, string[]>[] | undefined) ?? doc.security;
      const parameters = mergeParameters(item.parameters, op.parameters);
      const requestBody = op.requestBody as RequestBodyObject | undefined;
      refuseBlankSchemas(parameters, requestBody, pointer);
      ops.push({
        id,
        method: method.toUpperCase(),
        paths: bases.map((b) => b + pattern),
        pointer,
        routedNames,
        security: compileSecurity(
          doc,
          security,
          op.security ? `${pointer}/security` : '#/security',
          options.tokenPlaces,
          options.isInternalHeader,
        ),
        rateLimit: rateLimitOf(op, pointer),
        parameters,
        requestBody,
        responses: (op.responses as Operation['responses'] | undefined) ?? {},
        dialect: doc.openapi.startsWith('3.1') ? '3.1' : '3.0',
        components: doc.components?.schemas,
      });
    }
  }
  return ops;
}
