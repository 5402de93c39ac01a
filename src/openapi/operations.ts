/**
 * The operations of an OpenAPI document as routes: base paths from `servers` × `paths` × methods,
 * path templates in find-my-way syntax, the operation's security requirements as alternatives
 * (security-requirements.ts), and the per-operation
 * rate limit from the `x-warden-rate-limit` extension.
 */
import type { RateLimitConfig } from '../config/types.js';
import { costProblem } from '../config/rate-limit-schema.js';
import { MAX_TIMER_MS } from '../config/schema-parts.js';
import { OpenApiError, type OpenApiDocument } from './document.js';
import { compileSecurity, type SecurityAlternative } from './security-requirements.js';
import { escapePointer } from './subschemas.js';

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

export interface Operation {
  /** operationId, or "METHOD /path" when the document gives none. */
  readonly id: string;
  readonly method: string;
  /** find-my-way patterns, one per server base path. */
  readonly paths: readonly string[];
  /** JSON pointer of the operation, for messages. */
  readonly pointer: string;
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
}

export interface RequestBodyObject {
  required?: boolean;
  content?: Record<string, { schema?: Record<string, unknown> }>;
}

function mergeParameters(pathLevel: unknown, opLevel: unknown): ParameterObject[] {
  const byKey = new Map<string, ParameterObject>();
  for (const list of [pathLevel, opLevel]) {
    if (!Array.isArray(list)) continue;
    for (const p of list as ParameterObject[]) byKey.set(`${p.in}:${p.in === 'header' ? p.name.toLowerCase() : p.name}`, p);
  }
  return [...byKey.values()];
}

const pointerOf = (...segments: string[]) => `#/${segments.map(escapePointer).join('/')}`;

/** `/pets/{petId}/photos` → `/pets/:petId/photos`. */
function toRoutePattern(template: string, pointer: string): string {
  return template.replace(/\{([^{}]+)\}/g, (_, name: string) => {
    if (!/^[A-Za-z0-9_]+$/.test(name))
      throw new OpenApiError(pointer, `path parameter "{${name}}" must be letters, digits or "_" to be routed`);
    return `:${name}`;
  });
}

/** Base paths from `servers` (the path part of each URL, variables at their defaults); "" when none. */
function basePaths(doc: OpenApiDocument): string[] {
  const servers = doc.servers?.length ? doc.servers : [{ url: '/' }];
  const bases = servers.map((s, i) => {
    const url = s.url.replace(/\{([^{}]+)\}/g, (_, v: string) => {
      const d = s.variables?.[v]?.default;
      if (d === undefined) throw new OpenApiError(pointerOf('servers', String(i), 'url'), `server variable "${v}" has no default`);
      return d;
    });
    const path = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? new URL(url).pathname : url;
    return path.replace(/\/+$/, '');
  });
  return [...new Set(bases)];
}

/** The bounds sidecar.yaml's `rate_limit` has (rate-limit-schema.ts): the extension is held to the same. */
const MAX_RATE = 1_000_000_000;
const MAX_COST = 1_000_000;
const MAX_PER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);

function rateLimitOf(op: Record<string, unknown>, pointer: string): RateLimitConfig | undefined {
  const ext = op['x-warden-rate-limit'] as Record<string, unknown> | undefined;
  if (ext === undefined) return undefined;
  const at = `${pointer}/x-warden-rate-limit`;
  if (typeof ext !== 'object' || ext === null || Array.isArray(ext))
    throw new OpenApiError(at, 'needs rate: an integer ≥ 1 (and optionally per_seconds, burst, cost)');
  // Absent: the default; present: an integer in range, or an error (a wrong value silently
  // replaced by the default would be a limit other than the one written).
  const int = (name: string, max: number): number | undefined => {
    const v = ext[name];
    if (v === undefined) return undefined;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= max) return v;
    throw new OpenApiError(`${at}/${name}`, `must be an integer from 1 to ${max}, got ${JSON.stringify(v)}`);
  };
  const rate = int('rate', MAX_RATE);
  if (rate === undefined) throw new OpenApiError(at, 'needs rate: an integer ≥ 1 (and optionally per_seconds, burst, cost)');
  const perSeconds = ext.per_seconds === undefined ? 1 : ext.per_seconds;
  // Finite and bounded: `.inf` turned the limit off (NaN in the bucket), 1e300 a Retry-After of 1e300 s.
  if (typeof perSeconds !== 'number' || !(perSeconds > 0) || perSeconds > MAX_PER_SECONDS)
    throw new OpenApiError(`${at}/per_seconds`, `must be a number of seconds > 0 and at most ${MAX_PER_SECONDS} (596 h)`);
  const burst = int('burst', MAX_RATE);
  const cost = int('cost', MAX_COST);
  const bucket = { rate, per: perSeconds * 1000, burst, cost };
  const problem = costProblem(bucket);
  if (problem) throw new OpenApiError(`${at}/cost`, problem);
  return bucket;
}

export function operationsOf(doc: OpenApiDocument): Operation[] {
  const bases = basePaths(doc);
  const ops: Operation[] = [];
  const ids = new Map<string, string>();
  for (const [template, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = item[method] as Record<string, unknown> | undefined;
      if (op === undefined) continue;
      const pointer = pointerOf('paths', template, method);
      const id = typeof op.operationId === 'string' ? op.operationId : `${method.toUpperCase()} ${template}`;
      const seen = ids.get(id);
      if (seen) throw new OpenApiError(`${pointer}/operationId`, `operationId "${id}" is also used at ${seen}`);
      ids.set(id, pointer);
      const pattern = toRoutePattern(template, pointer);
      const security = (op.security as Record<string, string[]>[] | undefined) ?? doc.security;
      ops.push({
        id,
        method: method.toUpperCase(),
        paths: bases.map((b) => b + pattern),
        pointer,
        security: compileSecurity(doc, security, op.security ? `${pointer}/security` : '#/security'),
        rateLimit: rateLimitOf(op, pointer),
        parameters: mergeParameters(item.parameters, op.parameters),
        requestBody: op.requestBody as RequestBodyObject | undefined,
        responses: (op.responses as Operation['responses'] | undefined) ?? {},
        dialect: doc.openapi.startsWith('3.1') ? '3.1' : '3.0',
        components: doc.components?.schemas,
      });
    }
  }
  return ops;
}
