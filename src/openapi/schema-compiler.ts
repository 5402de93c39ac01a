/**
 * The ajv instances that compile one generation's OpenAPI validators (one per compilePlan). ajv
 * keeps every schema it compiles, keyed by the schema object, and each reload brings new objects:
 * with instances for the whole process, a 150-operation document grew the heap from 36 to 393 MiB
 * over 40 reloads of an unchanged file, and a sidecar with a 160 MiB old space died after 12
 * (docs/adversarial.md defect 116). Here the instances, their caches and their patterns belong to
 * the plan, and go with it once its requests have drained.
 *
 * Every schema is checked before it is compiled: its patterns must run in linear time
 * (pattern-engine.ts) and its size is bounded (acyclic-schema.ts). Its discriminators become plain
 * JSON Schema (discriminator.ts): ajv's keyword takes neither `mapping` nor $ref'd branches. In a
 * request's schema, read-only properties are refused (read-only.ts). A problem is an OpenApiError naming where the schema is in the document.
 */
import type { Ajv as AjvCore, ValidateFunction } from 'ajv';
import { Ajv } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { AJV_CODE_OPTIONS } from '../config/ajv-codegen.js';
import { acyclicSchema, SchemaTooLarge } from './acyclic-schema.js';
import { rewriteDiscriminators } from './discriminator.js';
import { addReadOnlyKeyword, refuseReadOnlyProperties } from './read-only.js';
import { presentValuesOnly } from './present-values.js';
import { OpenApiError } from './document.js';
import { OPENAPI_FORMATS } from './formats.js';
import { createPatternEngine, patternProblem, type RegExpEngine } from './pattern-engine.js';
import { escapePointer, forEachSubschema, isSchema, type Schema } from './subschemas.js';

// ajv-formats is CommonJS with `exports.default` (see document.ts for ajv-draft-04).
type AddFormats = (ajv: AjvCore) => AjvCore;
const addFormats = ((addFormatsModule as unknown as { default?: AddFormats }).default ?? addFormatsModule) as unknown as AddFormats;

/**
 * A $ref'd (shared) schema of at most this many keywords is inlined where it is used, a larger one
 * called: inlining every one made the code as large as the tree the schema unfolds to.
 */
const INLINE_REFS = 50;

/**
 * One per dialect for the process, that only checks schemas against the meta-schema (a check keeps
 * nothing of the schema): compiling the meta-schema took 50–150 ms per ajv instance, per reload.
 */
const metaCheckers = new Map<string, AjvCore>();
function metaChecker(dialect: '3.0' | '3.1'): AjvCore {
  let ajv = metaCheckers.get(dialect);
  if (!ajv) {
    const options = { strict: false, logger: false as const, code: AJV_CODE_OPTIONS };
    metaCheckers.set(dialect, (ajv = dialect === '3.1' ? new Ajv2020(options) : new Ajv(options)));
    addFormats(ajv);
  }
  return ajv;
}

const MULTIPLE_OF_PRECISION = 9;

/** Parameters arrive as strings and are coerced; bodies are not. */
function makeAjv(dialect: '3.0' | '3.1', coerce: boolean, regExp: RegExpEngine): AjvCore {
  const options = {
    strict: false,
    validateSchema: false, // metaChecker's
    allErrors: false,
    coerceTypes: coerce ? ('array' as const) : false,
    // `multipleOf: 0.01` (money) tested in binary floating point refused 159 of the 1 000 amounts
    // 0.00–9.99 (0.29 / 0.01 is 28.999999999999996), which pydantic, Jackson and decimal backends
    // accept: a quotient within 1e-9 of a whole number is one.
    multipleOfPrecision: MULTIPLE_OF_PRECISION,
    logger: false as const,
    inlineRefs: INLINE_REFS,
    code: { ...AJV_CODE_OPTIONS, regExp },
  };
  const ajv: AjvCore = dialect === '3.1' ? new Ajv2020(options) : new Ajv(options);
  addFormats(ajv);
  for (const [name, def] of Object.entries(OPENAPI_FORMATS)) ajv.addFormat(name, def as never);
  addReadOnlyKeyword(ajv);
  return ajv;
}

/** Where a schema is, for errors: its JSON pointer, and a label when the pointer alone does not say (a parameter). */
export interface SchemaPlace {
  readonly pointer: string;
  readonly label?: string;
}

/** How a schema is used: parameters arrive as strings and are coerced, bodies not; a request's refuses read-only properties. */
export interface SchemaUse {
  readonly coerce: boolean;
  readonly refuseReadOnly?: boolean;
  /** Checks only the values a document holds (present-values.ts): no `required`, `oneOf` read as `anyOf`. */
  readonly presentValuesOnly?: boolean;
}

export interface SchemaCompiler {
  /**
   * Throws OpenApiError when a pattern cannot run in linear time, the schema is too large, or a
   * discriminator cannot be followed. `components`: the document's components.schemas, by which a
   * discriminator's mapping names its branches.
   */
  compile(
    dialect: '3.0' | '3.1',
    schema: Record<string, unknown>,
    use: SchemaUse,
    place: SchemaPlace,
    components?: Readonly<Record<string, unknown>>,
  ): ValidateFunction;
  /** The same checks on a schema compiled as part of another (a parameter's, in the operation's parameters). */
  check(schema: Record<string, unknown> | undefined, place: SchemaPlace): void;
}

function problemAt(place: SchemaPlace, inner: string, message: string): OpenApiError {
  return place.label === undefined
    ? new OpenApiError(place.pointer + inner, message)
    : new OpenApiError(place.pointer, `${place.label}: schema${inner} ${message}`);
}

/** Each distinct subschema once (a shared one at the first place it is reached). */
function checkPatterns(root: Schema, place: SchemaPlace): void {
  const seen = new Set<Schema>();
  const stack: [Schema, string][] = [[root, '']];
  while (stack.length > 0) {
    const [s, at] = stack.pop() as [Schema, string];
    if (seen.has(s)) continue;
    seen.add(s);
    const patterns: [string, string][] = typeof s.pattern === 'string' ? [[s.pattern, `${at}/pattern`]] : [];
    if (isSchema(s.patternProperties))
      for (const key of Object.keys(s.patternProperties)) patterns.push([key, `${at}/patternProperties/${escapePointer(key)}`]);
    for (const [pattern, where] of patterns) {
      const problem = patternProblem(pattern);
      if (problem) throw problemAt(place, where, `${JSON.stringify(pattern)} ${problem}`);
    }
    forEachSubschema(s, (child, path) => stack.push([child, `${at}/${path}`]));
  }
}

export function createSchemaCompiler(): SchemaCompiler {
  const regExp = createPatternEngine();
  const instances = new Map<string, AjvCore>();
  const ajvFor = (dialect: '3.0' | '3.1', coerce: boolean) => {
    const key = dialect + String(coerce);
    let ajv = instances.get(key);
    if (!ajv) instances.set(key, (ajv = makeAjv(dialect, coerce, regExp)));
    return ajv;
  };
  const check = (schema: Record<string, unknown> | undefined, place: SchemaPlace) => {
    if (schema) checkPatterns(schema, place);
  };
  return {
    check,
    compile(dialect, schema, use, place, components) {
      check(schema, place);
      let tree: Record<string, unknown>;
      try {
        // After the discriminators: a mapping names its branches in the document, by the originals.
        const chosen = rewriteDiscriminators(schema, components, place.pointer);
        const guarded = use.refuseReadOnly === true ? refuseReadOnlyProperties(chosen) : chosen;
        tree = acyclicSchema(use.presentValuesOnly === true ? presentValuesOnly(guarded) : guarded);
      } catch (err) {
        if (err instanceof SchemaTooLarge) throw problemAt(place, '', err.message);
        if (err instanceof OpenApiError && place.label !== undefined) throw new OpenApiError(err.pointer, `${place.label}: ${err.message}`);
        throw err;
      }
      try {
        const meta = metaChecker(dialect);
        if (!meta.validateSchema(tree)) throw new Error(`schema is invalid: ${meta.errorsText(meta.errors)}`);
        return ajvFor(dialect, use.coerce).compile(tree);
      } catch (err) {
        throw problemAt(place, '', `cannot be compiled: ${(err as Error).message.split('\n')[0]}`);
      }
    },
  };
}
