/**
 * Per-operation request validation compiled at startup from the OpenAPI document: parameters (path,
 * query, header, cookie — decoded per their style and coerced only where the schema's type says so,
 * or parsed as JSON where they are described by `content`: content-parameters.ts)
 * and bodies by content type (JSON and form-urlencoded), with ajv validators built once. On the
 * request path a validation is one decode and one or two compiled-function calls. A string read as
 * a number must be spelled plainly (number-spellings.ts): ajv's coercion reads `1000000e-4` as 100.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { percentDecoded } from '../net/percent-decoded.js';
import { cookieTrimmed } from '../net/cookie-trim.js';
import type { ValidateFunction } from 'ajv';
import type { Operation, ParameterObject } from './operations.js';
import { FORM_MEDIA_TYPE, MULTIPART_MEDIA_TYPE, isJsonMediaType, mediaTypeOf } from '../net/media-type.js';
import { formPairsOf } from '../net/form-pairs.js';
import { jsonBodyOf, type BufferedBody } from '../net/json-body.js';
import { declaresBody } from '../net/declared-body.js';
import { mayHoldNumericReference, numericReferencesDecoded } from '../net/numeric-references.js';
import { CaseVariantFinder, topLevelNames, type DottedValueCheck } from './case-variants.js';
import { compileNameReadings, cookieNameSpellings, deepObjectProperty, type NameReadings } from './name-readings.js';
import { compileNumberSpellings, type NumberSpellings } from './number-spellings.js';
import { violationOf } from './refused-value.js';
import { caseVariant, memberVariant, spellingVariant, tooDeep, type Violation } from './violation.js';
import { arrayPropertiesOf, objectPropertiesOf, shapeOf, takesOtherProperties, type Shape } from './schema-types.js';
import { compileDeepObjectFields, type DeepObjectField } from './form-encoding.js';
import { OpenApiError } from './document.js';
import { compileMultipartReading, multipartFields, type MultipartReading } from './multipart-fields.js';
import { createSchemaCompiler, type SchemaCompiler } from './schema-compiler.js';
import { escapePointer } from './subschemas.js';
import { contentByMediaType } from './media-type-keys.js';
import { compileContentParameter, type ContentCheck } from './content-parameters.js';
import { describesStructuredData } from './structured-schema.js';
import { compileBodyShadows, compileParameterShadows, type ParameterShadows } from './body-parameters.js';
import { compileCookieShadows, type CookieShadows } from './cookie-parameters.js';
import { memoizedByName } from './name-verdicts.js';
import { ufoQueryNames } from '../net/ufo-query-names.js';
import { isJsonSequenceType, jsonAsOther, jsonInOtherType, UNINTEROPERABLE_JSON } from './json-as-other.js';
import { forEachSubschema, isSchema, someSubschema } from './subschemas.js';

export type { Violation } from './violation.js';

export interface RequestParts {
  readonly params: Readonly<Record<string, string | undefined>>;
  readonly search: string;
  readonly headers: IncomingHttpHeaders;
}

/**
 * A body in a type Warden does not parse, matched only by a range key (`*\/*`, `text/*`) whose
 * schema describes an object or an array: refused (415) rather than forwarded unchecked.
 * `checkable`: the media types that schema is checked in.
 */
export interface UncheckableMediaType {
  readonly checkable: string;
}

export type BodyVerdict = Violation | 'unsupported' | UncheckableMediaType | undefined;

export interface RequestValidator {
  /** Whether a body is expected: the body stage buffers only then. */
  readonly hasBody: boolean;
  /** Whether the operation declares a requestBody at all: a body sent to one that does not is refused. */
  readonly takesBody: boolean;
  params(parts: RequestParts): Violation | undefined;
  /**
   * The request's buffered body (`undefined` = none was sent), whose JSON parse it keeps for the
   * other stages. Returns 'unsupported' for a content type the operation does not list, and
   * UncheckableMediaType for one whose schema it cannot check.
   */
  body(contentType: string | undefined, request: BufferedBody): BodyVerdict | Promise<BodyVerdict>;
}

/**
 * An object for names the client chooses (query keys, form and multipart field names): without a prototype,
 * so `__proto__` and `constructor` are names like any other (in a `{}`, `__proto__` is not stored,
 * and an unknown `?__proto__=` slipped past `unknown_query: refuse`), and created as a dictionary,
 * so that a client sending new names cannot fill V8's table of transitions from the empty object's
 * map (src/config/ajv-codegen.ts says what that costs the whole process).
 */
function clientKeyed<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/**
 * Adds a form or multipart field: a name given again makes its value an array, grown in place. A
 * copy of the array per value made repeats quadratic: 80 000 `a=` in a 240 KB form body held the
 * event loop for 67 s (test/adversarial/input.test.ts, docs/adversarial.md defect 8).
 */
function addField(fields: Record<string, unknown>, name: string, value: string): void {
  const prev = fields[name];
  if (prev === undefined) fields[name] = value;
  else if (Array.isArray(prev)) prev.push(value);
  else fields[name] = [prev, value];
}

/**
 * How one parameter is read, worked out once from its `style`, `explode` and schema (OpenAPI 3
 * §4.8.12.4). A name given again is refused unless each copy is an item of an array: the
 * validator can read only one copy of a single value, and backends differ on which they read
 * (first, last, or all as an array).
 */
interface ParameterReading {
  readonly p: ParameterObject;
  readonly style: string;
  readonly explode: boolean;
  /** What its schema says the value is (schema-types.ts), decided at load: decodeParameter runs per request. */
  readonly shape: Shape | undefined;
  /** Each copy is an item (an exploded array): the name may repeat. */
  readonly listed: boolean;
  /** An exploded object's declared properties, which are query keys of their own. */
  readonly properties: readonly string[];
  /**
   * An exploded form object that takes properties it does not name (`additionalProperties`: a map):
   * the query keys no other parameter owns are its properties, checked against its schema.
   */
  readonly rest: boolean;
  /** The object's properties whose copies are items (their schema is an array): they may repeat. */
  readonly listedProperties: ReadonlySet<string>;
  /** Where its schema reads a string as a number, which spellings it takes (undefined: nowhere). */
  readonly numbers: NumberSpellings | undefined;
  /** A `content` (JSON) parameter's own check; its entry in the parameters' schema is `{}`. */
  readonly content: ContentCheck | undefined;
  /** `/query/limit`: where its violations point. */
  readonly pointer: string;
}

function readingOf(p: ParameterObject, content: ContentCheck | undefined): ParameterReading {
  const style = p.style ?? (p.in === 'query' || p.in === 'cookie' ? 'form' : 'simple');
  const explode = p.explode ?? style === 'form';
  const shape = shapeOf(p.schema);
  const object = shape === 'object';
  // Declared wherever the schema says (allOf, oneOf, anyOf), not only in its own `properties`.
  const properties = object ? objectPropertiesOf(p.schema) : new Map<string, Record<string, unknown>[]>();
  return {
    p,
    style,
    explode,
    shape,
    listed: shape === 'array' && style === 'form' && explode,
    properties: [...properties.keys()],
    rest: object && p.in === 'query' && style === 'form' && explode && takesOtherProperties(p.schema),
    listedProperties: arrayPropertiesOf(properties),
    numbers: compileNumberSpellings(p.schema),
    content,
    pointer: `/${p.in}/${p.in === 'header' ? p.name.toLowerCase() : p.name}`,
  };
}

/** A decoded value's own checks, before the parameters' schema: its number spellings, or its JSON (a `content` parameter). */
function valueProblem(reading: ParameterReading, value: unknown): Violation | undefined {
  const spelling = reading.numbers?.check(value, reading.pointer);
  if (spelling) return spelling;
  return reading.content && typeof value === 'string' ? reading.content(value, reading.pointer) : undefined;
}

/** A value given more than once where the schema holds one (see ParameterReading). */
class Repeated {
  constructor(readonly pointer: string) {}
}

const givenTwice = (pointer: string): Violation => ({ pointer, message: 'must be given once' });

/**
 * An object property's copy: an item of an array property (`listed`), else the one value (a second
 * is Repeated). `at`: the object's pointer (`/query/filter`, `/body/address`).
 */
function addProperty(
  out: Record<string, unknown>,
  listed: ReadonlySet<string>,
  at: string,
  name: string,
  value: string,
): Repeated | undefined {
  const prev = out[name];
  if (prev === undefined) out[name] = listed.has(name) ? [value] : value;
  else if (Array.isArray(prev)) prev.push(value);
  else return new Repeated(`${at}/${name}`);
  return undefined;
}

/**
 * One parameter's value from its raw string(s); the caller has refused a repeated name that is not
 * `listed`. `names`: the query keys the operation owns, for a `rest` object (it takes the others).
 */
function decodeParameter(reading: ParameterReading, raw: string[], query: URLSearchParams | undefined, names?: NameReadings): unknown {
  const { style, explode, shape } = reading;
  if (shape === 'array') {
    if (reading.listed) return raw;
    const sep = style === 'spaceDelimited' ? ' ' : style === 'pipeDelimited' ? '|' : ',';
    return raw.length === 0 ? [] : (raw[0] as string).split(sep);
  }
  if (shape === 'object' && query) {
    const out = clientKeyed<unknown>();
    if (style === 'deepObject') {
      for (const [k, v] of query) {
        const property = deepObjectProperty(k, reading.p.name);
        if (property === undefined) continue;
        const repeated = addProperty(out, reading.listedProperties, reading.pointer, property, v);
        if (repeated) return repeated;
      }
      return Object.keys(out).length ? out : undefined;
    }
    if (explode) {
      for (const name of reading.properties) {
        for (const v of query.getAll(name)) {
          const repeated = addProperty(out, reading.listedProperties, reading.pointer, name, v);
          if (repeated) return repeated;
        }
      }
      if (reading.rest && names) {
        // A key another parameter owns is its; one a backend reads as a declared name is refused by the caller.
        for (const [k, v] of query) {
          if (names.owns(k) || names.readAs(k) !== undefined) continue;
          const repeated = addProperty(out, reading.listedProperties, reading.pointer, k, v);
          if (repeated) return repeated;
        }
      }
      return Object.keys(out).length ? out : undefined;
    }
  }
  return raw[0];
}

/**
 * A form's fields with the entries of its deepObject properties (form-encoding.ts) read as a
 * deepObject query parameter's are (deepObjectProperty, addProperty): `address[city]=Paris` is
 * `address: {city: 'Paris'}`, checked at `/body/address/city`. A key below one (`address[geo][lat]`,
 * `address[]`) is refused: deepObject is one level deep, and qs, PHP and Rails read it as an
 * object or an array inside the property, which its schema does not describe. Other keys are kept
 * as sent (a bare `address` is refused by the caller, as qs reads it as the property). Numbers
 * in an object are checked here for their spellings, as a deepObject parameter's are. One pass;
 * `out` (clientKeyed) gets the fields.
 */
function foldDeepObjects(
  form: Record<string, unknown>,
  deep: ReadonlyMap<string, DeepObjectField>,
  out: Record<string, unknown>,
): Violation | undefined {
  const objects = new Map<string, Record<string, unknown>>();
  for (const key of Object.keys(form)) {
    const open = key.indexOf('[');
    const name = open > 0 ? key.slice(0, open) : undefined;
    const field = name === undefined ? undefined : deep.get(name);
    if (name === undefined || field === undefined) {
      out[key] = form[key];
      continue;
    }
    const property = deepObjectProperty(key, name);
    if (property === undefined && !key.endsWith(']')) {
      // Not bracket syntax (`address[city`: PHP's `address_city`): as sent, the caller reads it.
      out[key] = form[key];
      continue;
    }
    if (property === undefined)
      return {
        pointer: `/body/${key}`,
        message: `is below the deepObject property ${JSON.stringify(name)}, which is read one level deep (${name}[property]): qs (Express), PHP and Rails read it as an object or an array inside ${JSON.stringify(name)}`,
      };
    let object = objects.get(name);
    if (object === undefined) objects.set(name, (object = clientKeyed<unknown>()));
    const value = form[key];
    for (const v of Array.isArray(value) ? (value as string[]) : [value as string]) {
      const repeated = addProperty(object, field.listed, field.pointer, property, v);
      if (repeated) return givenTwice(repeated.pointer);
    }
  }
  for (const [name, object] of objects) {
    const spelling = (deep.get(name) as DeepObjectField).numbers?.check(object, `/body/${name}`);
    if (spelling) return spelling;
    out[name] = object;
  }
  return undefined;
}

/** Bodies of named text fields, read as strings and coerced to their schema's types like parameters. */
const FIELD_MEDIA_TYPES: ReadonlySet<string> = new Set([FORM_MEDIA_TYPE, MULTIPART_MEDIA_TYPE]);

/** The media types, within a range key, in which Warden parses a body and so can check its schema. */
function checkableIn(range: string): string {
  const types =
    range === '*/*'
      ? ['application/json', FORM_MEDIA_TYPE, MULTIPART_MEDIA_TYPE]
      : [
          `${range.slice(0, -2)}/json`,
          ...(range === 'application/*' ? [FORM_MEDIA_TYPE] : []),
          ...(range === 'multipart/*' ? [MULTIPART_MEDIA_TYPE] : []),
        ];
  return `${types.join(', ')} or a +json type`;
}

/** Parts of one multipart body validation reads; more are refused (busboy used to drop them silently). */
const MAX_MULTIPART_PARTS = 1000;

/** A pair hidden in a cookie's value after a comma or white space: `a=b, session=x`, `a=b session=x`. */
const HIDDEN_PAIR = /[\s,]([^\s,;=]+)=/g;

/**
 * The declared cookies' values, every copy of each (a name given twice is refused by the caller),
 * each as its readings (cookieValueReadings), or the first cookie a backend would read as a
 * declared one under another name: another letter case (ASP.NET Core's cookie collection ignores
 * it), percent-escapes and PHP's readings of a name (`sess%69on`, `page.size` for `page_size`,
 * `session[]`), or a pair after a comma or a space inside another cookie's value (ASP.NET Core and
 * Python's SimpleCookie split there too); or the first undeclared one PHP's `$_REQUEST` reads as a
 * parameter or body property (`shadows`: cookie-parameters.ts).
 */
function cookiesOf(
  header: string | undefined,
  declared: ReadonlySet<string>,
  names: NameReadings,
  undeclared: (name: string) => Violation | undefined,
): Map<string, string[][]> | Violation {
  const out = new Map<string, string[][]>();
  if (!header) return out;
  for (const pair of header.split(';')) {
    const i = pair.indexOf('=');
    if (i <= 0) continue;
    // As Starlette and Django read it (cookieTrimmed): `theme\x85` is the cookie `theme` to them.
    const name = cookieTrimmed(pair.slice(0, i));
    const value = pair.slice(i + 1).trim();
    if (value.includes(',') || value.includes(' ') || value.includes('\t')) {
      for (const hidden of value.matchAll(HIDDEN_PAIR)) {
        const read = declared.has(hidden[1] as string) ? hidden[1] : cookieReadAs(hidden[1] as string, names);
        if (read !== undefined)
          return {
            pointer: `/cookie/${name}`,
            message: `holds ${JSON.stringify(read)} after a comma or a space, a cookie of its own to ASP.NET Core and Python`,
          };
      }
    }
    if (!declared.has(name)) {
      const violation = undeclared(name);
      if (violation) return violation;
      continue;
    }
    const read = cookieValueReadings(value);
    if (read === undefined)
      return {
        pointer: `/cookie/${name}`,
        message: 'is quoted and holds a "\\", an escape Python and Werkzeug decode (browsers never send one)',
      };
    const values = out.get(name);
    if (values) values.push(read);
    else out.set(name, [read]);
  }
  return out;
}

/**
 * A cookie's value as backends read it, as sent first, each reading once: PHP and Rack keep a
 * quoted value's DQUOTEs (`"deadbeef"`) where Werkzeug, SimpleCookie and Django strip them
 * (`lang="en"` is `en`); PHP (php_raw_url_decode, `+` kept) and Express's cookie-parser
 * percent-decode it (`%3Cscript%3E` is `<script>`), Express after dropping the quotes. Each
 * reading must pass. Rack (so Rails and Sinatra) decodes it as a form value, `+` a space
 * (`dark+mode` is `dark mode`): not checked, since a pattern allowing `+` and no space (base64)
 * would then refuse every browser's raw base64 cookie, read whole by PHP and Express. Undefined for a quoted one holding a
 * `\`, whose `\074`-style escapes Python's readers decode (`"\074script\076"` is `<script>`);
 * browsers send neither quotes nor escapes.
 */
function cookieValueReadings(value: string): string[] | undefined {
  // Starlette and Django strip the value as they strip the name: `dark\x85` is `dark` to them, and each reading must pass.
  const stripped = cookieTrimmed(value);
  if (stripped === value) return valueReadingsOf(value);
  const sent = valueReadingsOf(value);
  const read = valueReadingsOf(stripped);
  return sent && read ? [...new Set([...sent, ...read])] : undefined;
}

function valueReadingsOf(value: string): string[] | undefined {
  const quoted = value.length >= 2 && value.startsWith('"') && value.endsWith('"');
  if (!quoted && !value.includes('%')) return [value];
  const inner = quoted ? value.slice(1, -1) : value;
  if (quoted && inner.includes('\\')) return undefined;
  const readings = new Set([value, inner]);
  // querystring's unescape keeps a malformed escape as it is, and a `+`, as PHP does.
  if (value.includes('%')) {
    readings.add(percentDecoded(value));
    readings.add(percentDecoded(inner));
  }
  return [...readings];
}

/**
 * The check of a cookie the operation does not declare (by its name alone, so kept per name):
 * read as a declared cookie under another name, or as a parameter or body property by PHP's
 * `$_REQUEST` (`shadows`: cookie-parameters.ts).
 */
function compileUndeclaredCookieCheck(names: NameReadings, shadows: CookieShadows | undefined): (name: string) => Violation | undefined {
  return memoizedByName((name) => {
    const read = cookieReadAs(name, names);
    if (read !== undefined)
      return { pointer: `/cookie/${name}`, message: `is read as the cookie ${JSON.stringify(read)} by ASP.NET Core or PHP` };
    return shadows?.(name);
  });
}

/** A violation in a cookie value's reading other than as sent: says so (the value as sent passed). */
const inAnotherReading = (v: Violation): Violation => ({
  pointer: v.pointer,
  message: `${v.message}, as a backend reads it (PHP keeps the quotes, Werkzeug drops them; PHP, Express and Rails percent-decode it, Rails reads "+" as a space; Starlette and Django strip U+0085)`,
});

const withReferencesDecoded = (v: Violation): Violation => ({
  pointer: v.pointer,
  message: `${v.message}, with its numeric character references decoded (Express 5's body-parser with interpretNumericEntities reads &#60; as <)`,
});

/**
 * The declared cookie a backend reads `name` as: as sent, or decoded as PHP before 7.4.11 (`+` a
 * space) and ASP.NET Core 2 decode cookie names (cookieNameSpellings).
 */
function cookieReadAs(name: string, names: NameReadings): string | undefined {
  for (const spelling of cookieNameSpellings(name)) {
    const declared = names.readAs(spelling)?.declared;
    if (declared !== undefined) return declared;
  }
  return undefined;
}

/** A query key or form field the operation does not own, when a backend would read it as a declared name (name-readings.ts). */
function misread(key: string, names: NameReadings, at: string): Violation | undefined {
  const read = names.readAs(key);
  if (read === undefined) return undefined;
  if (read.caseOnly) return caseVariant(`${at}/${key}`, read.declared);
  if (read.separators) return spellingVariant(`${at}/${key}`, read.declared);
  if (read.stripped)
    return {
      pointer: `${at}/${key}`,
      message: `is read as ${JSON.stringify(read.declared)} by Django, which strips white space around a multipart field's name`,
    };
  if (read.dots)
    return {
      pointer: `${at}/${key}`,
      message: `is read as ${JSON.stringify(read.declared)} by qs with allowDots (koa-bodyparser and koa-body by default, restify's queryParser and koa-qs as an option)`,
    };
  return { pointer: `${at}/${key}`, message: `is read as ${JSON.stringify(read.declared)} by qs (Express), PHP, Rails or System.Web` };
}

/**
 * A name ufo reads from a pair that starts with `=` (src/net/ufo-query-names.ts), which is an empty
 * name here: refused when it is a declared one or read as one, as any other key is.
 */
function ufoMisread(name: string, names: NameReadings): Violation | undefined {
  const declared = names.owns(name) ? name : names.readAs(name)?.declared;
  if (declared === undefined) return undefined;
  return {
    pointer: '/query/',
    message: `(a pair starting with "=") is read as ${JSON.stringify(declared)} by ufo (h3 1.x: Nitro 2, Nuxt 3), which skips a pair's leading "=" signs`,
  };
}

/** The first of `keys` a backend would read as a declared name it is not. */
function misreadName(keys: Iterable<string>, names: NameReadings, at: string): Violation | undefined {
  for (const k of keys) {
    const violation = names.owns(k) ? undefined : misread(k, names, at);
    if (violation) return violation;
  }
  return undefined;
}

export interface ValidatorOptions {
  unknownQuery: 'allow' | 'refuse';
  /** Read-only body properties (read-only.ts): refused (the default), or allowed as ajv alone allows them. */
  readOnly?: 'refuse' | 'allow';
}

/**
 * Refuses at load a parameter whose value Warden could not read as its schema means it: a
 * deepObject whose schema is no object, a schema that constrains an object or an array without
 * saying which the value is (no `type`, directly, in an allOf member or in every oneOf/anyOf
 * branch), and two exploded form maps (each would take the same unowned query keys). Before, such
 * a parameter was read as a single value never sent, and its constraints skipped.
 */
function checkShapes(op: Operation, readings: readonly ParameterReading[]): void {
  let rest: ParameterReading | undefined;
  for (const r of readings) {
    const { p, shape } = r;
    if (p.content !== undefined || p.schema === undefined) continue;
    const label = `parameter "${p.name}" in ${p.in}`;
    if (r.style === 'deepObject' && shape !== 'object')
      throw new OpenApiError(
        op.pointer,
        `${label}: style deepObject needs an object schema, and Warden cannot tell this one is: give it type: object (directly, in an allOf member, or in every oneOf/anyOf branch)`,
      );
    if (shape === undefined && describesStructuredData(p.schema))
      throw new OpenApiError(
        op.pointer,
        `${label}: its schema constrains an object or an array but does not say which the value is, so Warden cannot decode it: give it a type (directly, in an allOf member, or in every oneOf/anyOf branch)`,
      );
    if (r.rest) {
      if (rest !== undefined)
        throw new OpenApiError(
          op.pointer,
          `${label} and parameter "${rest.p.name}" in query are both exploded form objects with additionalProperties: Warden cannot tell which takes a query key neither declares; set explode: false or style: deepObject on one`,
        );
      rest = r;
    }
  }
}

/**
 * Whether a schema has places below its root a dotted member name can lead to: a schema of an
 * object or an array reached from it (the root itself too, when it contains itself). An over-estimate.
 */
function hasInnerPlaces(schema: Record<string, unknown>): boolean {
  const places = (s: Record<string, unknown>) =>
    isSchema(s.properties) ||
    isSchema(s.additionalProperties) ||
    isSchema(s.patternProperties) ||
    s.items !== undefined ||
    s.prefixItems !== undefined;
  let found = false;
  forEachSubschema(schema, (child) => (found ||= someSubschema(child, places)));
  return found;
}

/** The values of an object whose keys are exactly `0` … `n-1` (as PHP reads it: a list), or undefined. */
function indexKeyedValues(object: Record<string, unknown>): unknown[] | undefined {
  const keys = Object.keys(object);
  if (keys.length === 0) return undefined;
  // Integer-like keys come first, ascending: key i must be `i` itself.
  for (let i = 0; i < keys.length; i++) if (keys[i] !== String(i)) return undefined;
  return keys.map((k) => object[k]);
}

const UNTAKEN_BODY: Violation = Object.freeze({ pointer: '/body', message: 'is not taken by this operation (it declares no requestBody)' });

/**
 * `compiler`: the generation's (compilePlan makes one per plan, so that a reload's validators go
 * with their plan); a compiler of its own by default. Throws OpenApiError for a schema that cannot
 * be used (a pattern RE2 cannot run, a schema too large), naming where it is.
 */
export function compileRequestValidator(
  op: Operation,
  options: ValidatorOptions,
  compiler: SchemaCompiler = createSchemaCompiler(),
): RequestValidator {
  const byIn = {
    path: [] as ParameterObject[],
    query: [] as ParameterObject[],
    header: [] as ParameterObject[],
    cookie: [] as ParameterObject[],
  };
  for (const p of op.parameters) byIn[p.in]?.push(p);
  const contentChecks = new Map(op.parameters.map((p) => [p, compileContentParameter(p, op, compiler, options.readOnly !== 'allow')]));
  const reading = (p: ParameterObject) => readingOf(p, contentChecks.get(p));
  const readings = {
    path: byIn.path.map(reading),
    query: byIn.query.map(reading),
    header: byIn.header.map(reading),
    cookie: byIn.cookie.map(reading),
  };
  checkShapes(op, [...readings.path, ...readings.query, ...readings.header, ...readings.cookie]);
  // An exploded form map takes the query keys no other parameter owns: none of them is unknown.
  const queryRest = readings.query.some((r) => r.rest);
  const cookieNames: ReadonlySet<string> = new Set(byIn.cookie.map((p) => p.name));
  const cookieReadings = compileNameReadings(byIn.cookie);
  // A `content` parameter has no `schema`: `{}` here (required or not), its value checked on its own.
  const group = (list: ParameterObject[], additional: boolean) => ({
    type: 'object',
    properties: Object.fromEntries(list.map((p) => [p.in === 'header' ? p.name.toLowerCase() : p.name, p.schema ?? {}])),
    required: list.filter((p) => p.required || p.in === 'path').map((p) => (p.in === 'header' ? p.name.toLowerCase() : p.name)),
    additionalProperties: additional,
  });
  const paramSchema = {
    type: 'object',
    properties: {
      path: group(byIn.path, true),
      query: group(byIn.query, options.unknownQuery === 'allow'),
      header: group(byIn.header, true),
      cookie: group(byIn.cookie, true),
    },
  };
  const hasParams = op.parameters.length > 0 || options.unknownQuery === 'refuse';
  for (const p of op.parameters) compiler.check(p.schema, { pointer: op.pointer, label: `parameter "${p.name}" in ${p.in}` });
  const validateParams: ValidateFunction | undefined = hasParams
    ? compiler.compile(op.dialect, paramSchema, { coerce: true }, { pointer: op.pointer, label: 'parameters' }, op.components)
    : undefined;
  // Deep-object and exploded-object parameters own other query keys: not "unknown".
  const queryNames = compileNameReadings(byIn.query);

  const content = op.requestBody?.content ?? {};
  const bodyValidators = new Map<string, ValidateFunction | null>();
  // JSON schemas as checks of present values only (present-values.ts): for a JSON document sent
  // under another type (json-as-other.ts) and the value under a dotted member name (dotted-names.ts).
  const presentValues = new Map<string, ValidateFunction>();
  // Per media type with a schema: what finds names a backend misreads — JSON members at any depth
  // (case-variants.ts), form and multipart fields like query keys (name-readings.ts), top-level
  // names a backend merging query and body reads as a parameter (body-parameters.ts).
  const bodyNames = new Map<
    string,
    { json: CaseVariantFinder; fields: NameReadings; multipartFields: NameReadings; parameters: ParameterShadows | undefined }
  >();
  // Per media key read as a form: its properties declared `style: deepObject` (form-encoding.ts).
  const deepObjects = new Map<string, ReadonlyMap<string, DeepObjectField>>();
  // Keyed by the media type alone, as a request's Content-Type is looked up (media-type-keys.ts).
  const keyed = contentByMediaType(content, `${op.pointer}/requestBody/content`);
  // Every body schema's top-level names: query keys a merging backend reads as one (body-parameters.ts),
  // and cookies PHP's $_REQUEST lets override them (cookie-parameters.ts).
  const bodyProperties = new Set<string>();
  const formProperties = new Set<string>();
  // A type Warden neither parses nor reads as JSON records: a JSON document in it is checked (json-as-other.ts).
  const takesOtherTypes = [...keyed.keys()].some(
    (mime) => !isJsonMediaType(mime) && !FIELD_MEDIA_TYPES.has(mime) && !isJsonSequenceType(mime),
  );
  for (const [mime, { key: type, media }] of keyed) {
    if (media.schema) {
      const properties = topLevelNames(media.schema);
      for (const name of properties) bodyProperties.add(name);
      // PHP's $_POST, which a cookie overrides in $_REQUEST, holds form bodies only.
      if (FIELD_MEDIA_TYPES.has(mime)) for (const name of properties) formProperties.add(name);
      // A form read under this key (its own, or a range's) takes its deepObject properties' entries;
      // a multipart body does not (it is no form: `address[city]` stays a name it misreads).
      const deep =
        mime === FORM_MEDIA_TYPE || mime === 'application/*' || mime === '*/*'
          ? compileDeepObjectFields(media, op.pointer, type)
          : undefined;
      if (deep) deepObjects.set(mime, deep);
      const fieldsReadAs = (stripped: boolean, deepNames?: ReadonlyMap<string, DeepObjectField>) =>
        compileNameReadings(
          properties.map((name) => ({ name, in: 'query' as const, ...(deepNames?.has(name) ? { style: 'deepObject' } : {}) })),
          { separators: true, stripped },
        );
      const fields = fieldsReadAs(false, deep);
      // Django strips white space around a multipart field's name, not a form field's (QueryDict).
      const multipartFields = mime === MULTIPART_MEDIA_TYPE || mime.endsWith('/*') ? fieldsReadAs(true) : fields;
      const parameters = compileParameterShadows(op.parameters, properties);
      let dotted: DottedValueCheck | undefined;
      if (isJsonMediaType(mime) && (takesOtherTypes || hasInnerPlaces(media.schema))) {
        const schema = media.schema;
        let compiled: ValidateFunction | undefined;
        // Compiled at load where a JSON document under another type needs it; for dotted names
        // alone, on the first body that holds one with a place in the schema (once per operation
        // and generation): compiling every JSON schema twice at load doubled a large document's
        // load and reload time (150 operations: 1.5 → 3.3 s).
        const relaxed = () =>
          (compiled ??= compiler.compile(
            op.dialect,
            schema,
            { coerce: false, refuseReadOnly: options.readOnly !== 'allow', presentValuesOnly: true },
            { pointer: `${op.pointer}/requestBody/content/${escapePointer(type)}/schema` },
            op.components,
          ));
        if (takesOtherTypes) presentValues.set(mime, relaxed());
        dotted = (document) => {
          let validate: ValidateFunction;
          try {
            validate = relaxed();
          } catch {
            // The schema compiled at load; should its relaxed copy not, the name is refused as such.
            return 'could not be checked at its path';
          }
          return violationOf(validate, document, '')?.message;
        };
      }
      bodyNames.set(mime, { json: new CaseVariantFinder(media.schema, dotted), fields, multipartFields, parameters });
    }
    bodyValidators.set(
      mime,
      media.schema
        ? compiler.compile(
            op.dialect,
            media.schema,
            { coerce: FIELD_MEDIA_TYPES.has(mime), refuseReadOnly: options.readOnly !== 'allow' },
            {
              pointer: `${op.pointer}/requestBody/content/${escapePointer(type)}/schema`,
            },
            op.components,
          )
        : null,
    );
  }
  // Query keys a backend merging query and body reads as a body property (body-parameters.ts).
  const bodyShadows = compileBodyShadows(bodyProperties);
  const cookieShadows = compileCookieShadows(op.parameters, formProperties);
  const undeclaredCookie = compileUndeclaredCookieCheck(cookieReadings, cookieShadows);
  // Range keys whose schema describes an object or an array: a body in a type Warden does not parse
  // is refused there, not forwarded unchecked (structured-schema.ts).
  const unparsedRefused = new Map<string, UncheckableMediaType>();
  for (const [mime, { media }] of keyed) {
    if (mime.endsWith('/*') && describesStructuredData(media.schema)) unparsedRefused.set(mime, { checkable: checkableIn(mime) });
  }
  // Form and multipart text fields are coerced like parameters, numbers only from plain spellings.
  const fieldNumbers = new Map<string, NumberSpellings | undefined>();
  const multipartReadings = new Map<string, MultipartReading>();
  for (const [mime, { media }] of keyed) {
    if (FIELD_MEDIA_TYPES.has(mime)) fieldNumbers.set(mime, compileNumberSpellings(media.schema));
    // A multipart body may be read under a range key (`multipart/*`, `*/*`): each key its own reading.
    if (mime === MULTIPART_MEDIA_TYPE || mime.endsWith('/*')) multipartReadings.set(mime, compileMultipartReading(media));
  }
  const bodyRequired = op.requestBody?.required === true;
  /** A form or multipart body's field names a backend misreads (a `_method` is the method-field stage's). */
  const fieldNames = (mediaKey: string, keys: string[], multipart = false): Violation | undefined => {
    const names = bodyNames.get(mediaKey);
    return names && (misreadName(keys, multipart ? names.multipartFields : names.fields, '/body') ?? names.parameters?.(keys));
  };

  /** A parsed JSON value's check under media key `key`, past its schema: names a backend reads as declared ones. */
  const checkJson = (key: string, validate: ValidateFunction, value: unknown): Violation | undefined => {
    const violation = violationOf(validate, value, '/body');
    if (violation) return violation;
    const names = bodyNames.get(key);
    const variant = names?.json.find(value, '/body');
    if (variant) return memberVariant(variant);
    const object = typeof value === 'object' && value !== null && !Array.isArray(value);
    return names?.parameters && object ? names.parameters(Object.keys(value)) : undefined;
  };
  // The JSON types declared with a schema, application/json first: a JSON document in another type
  // is checked against them for present values (json-as-other.ts), and passes when one of them allows it.
  const jsonSchemas = [...presentValues]
    .map(([key, validate]) => [key, validate, shapeOf(keyed.get(key)?.media.schema)] as const)
    .sort(([a], [b]) => Number(b === 'application/json') - Number(a === 'application/json'));
  const checkJsonAsOther = (request: BufferedBody): Violation | undefined => {
    const json = jsonInOtherType(request);
    if (json === undefined) return undefined;
    if (json === 'not-interoperable') return UNINTEROPERABLE_JSON;
    if (json.tooDeep) return jsonAsOther(tooDeep('/body'));
    const kind = Array.isArray(json.value) ? 'array' : typeof json.value === 'object' && json.value !== null ? 'object' : 'value';
    // PHP's json_decode(…, true), which toArray() and json() use, reads `{"0":…,"1":…}` as the
    // array `[…]`: such an object is checked as that array by an array schema (third review rt27, F2).
    const asArray = kind === 'object' ? indexKeyedValues(json.value as Record<string, unknown>) : undefined;
    let first: Violation | undefined;
    let checked = false;
    for (const [key, validate, shape] of jsonSchemas) {
      const value = shape === 'array' && asArray !== undefined ? asArray : json.value;
      // A root of another type than the schema's: the reader finds none of what this schema limits
      // (another declared JSON type's may: each is asked).
      if (shape !== undefined && shape !== (value === asArray ? 'array' : kind)) continue;
      checked = true;
      const violation = checkJson(key, validate, value);
      if (violation === undefined) return undefined;
      first ??= violation;
    }
    return checked && first ? jsonAsOther(first) : undefined;
  };

  const pick = (contentType: string): [string, ValidateFunction | null, string] | undefined => {
    // Exact type, then type/*, then */* (OpenAPI 3 §4.8.14.1: the most specific key applies).
    const mime = mediaTypeOf(contentType);
    for (const key of [mime, `${mime.split('/', 1)[0]}/*`, '*/*']) {
      const v = bodyValidators.get(key);
      if (v !== undefined) return [mime, v, key];
    }
    return undefined;
  };

  const takesBody = op.requestBody !== undefined;
  return {
    hasBody: bodyValidators.size > 0,
    takesBody,
    params(parts) {
      // A body the operation does not take reaches no stage, and a backend that does not read it
      // parses it as the next request on the connection (CL.0): an unchecked request, and its
      // answer given to whoever is next. Declared bodies are refused here; one that only arrives
      // (h2 without content-length) goes on a connection not reused (handler.ts).
      if (!takesBody && declaresBody(parts.headers)) return UNTAKEN_BODY;
      if (!validateParams) {
        // No parameter, and so no declared cookie: only a cookie $_REQUEST reads as a body property.
        const found = cookieShadows && cookiesOf(parts.headers.cookie, cookieNames, cookieReadings, undeclaredCookie);
        if (found && !(found instanceof Map)) return found;
        if (!bodyShadows || parts.search.length <= 1) return undefined;
      }
      const query = new URLSearchParams(parts.search.length > 1 ? parts.search.slice(1) : '');
      if (!validateParams) {
        // No parameter to validate, yet a query key may still be read as a body property.
        for (const k of query.keys()) {
          const violation = bodyShadows?.(k);
          if (violation) return violation;
        }
        for (const k of ufoQueryNames(parts.search.slice(1))) {
          const violation = bodyShadows?.(k);
          if (violation) return violation;
        }
        return undefined;
      }
      // Path, header and cookie entries are named by the document; query keys by the client too (unknown_query).
      const data = {
        path: {} as Record<string, unknown>,
        query: clientKeyed<unknown>(),
        header: {} as Record<string, unknown>,
        cookie: {} as Record<string, unknown>,
      };
      for (const r of readings.path) {
        const v = parts.params[r.p.name];
        if (v === undefined) continue;
        const problem = valueProblem(r, (data.path[r.p.name] = decodeParameter(r, [v], undefined)));
        if (problem) return problem;
      }
      for (const r of readings.query) {
        const p = r.p;
        const raw = query.getAll(p.name);
        if (raw.length > 1 && !r.listed) return givenTwice(`/query/${p.name}`);
        const v = decodeParameter(r, raw, query, queryNames);
        if (v instanceof Repeated) return givenTwice(v.pointer);
        if (v !== undefined && !(raw.length === 0 && r.shape !== 'object')) {
          const problem = valueProblem(r, v);
          if (problem) return problem;
          data.query[p.name] = v;
        }
      }
      // Keys the operation does not own: refused when read as a declared one, else unknown.
      for (const k of query.keys()) {
        if (queryNames.owns(k)) continue;
        const violation = misread(k, queryNames, '/query') ?? bodyShadows?.(k);
        if (violation) return violation;
        if (options.unknownQuery === 'refuse' && !queryRest) data.query[k] = '';
      }
      // Pairs starting with `=`: an empty name above, a name to ufo (h3 1.x), read here as any key.
      for (const k of ufoQueryNames(parts.search.slice(1))) {
        const violation = ufoMisread(k, queryNames) ?? bodyShadows?.(k);
        if (violation) return violation;
      }
      for (const r of readings.header) {
        const name = r.p.name.toLowerCase();
        const v = parts.headers[name];
        if (v === undefined) continue;
        const problem = valueProblem(r, (data.header[name] = decodeParameter(r, [String(v)], undefined)));
        if (problem) return problem;
      }
      let cookies: Map<string, string[][]> | undefined;
      if (cookieNames.size > 0 || cookieShadows) {
        const found = cookiesOf(parts.headers.cookie, cookieNames, cookieReadings, undeclaredCookie);
        if (!(found instanceof Map)) return found;
        cookies = found;
      }
      // Each reading of the declared cookies' values in turn (cookieValueReadings): as sent first.
      let turns = 1;
      for (const values of cookies?.values() ?? []) for (const read of values) turns = Math.max(turns, read.length);
      for (let turn = 0; turn < turns; turn++) {
        if (cookies) {
          data.cookie = {};
          for (const r of readings.cookie) {
            const values = cookies.get(r.p.name)?.map((read) => read[turn] ?? (read[0] as string));
            if (values === undefined) continue;
            if (values.length > 1 && !r.listed) return givenTwice(`/cookie/${r.p.name}`);
            const problem = valueProblem(r, (data.cookie[r.p.name] = decodeParameter(r, values, undefined)));
            if (problem) return turn === 0 ? problem : inAnotherReading(problem);
          }
        }
        const problem = violationOf(validateParams, data, '');
        if (problem) return turn > 0 ? inAnotherReading(problem) : problem;
      }
      return undefined;
    },
    body(contentType, request) {
      const body = request.body;
      if (body === undefined || body.length === 0) return bodyRequired ? { pointer: '/body', message: 'is required' } : undefined;
      if (bodyValidators.size === 0) return undefined;
      const found = contentType ? pick(contentType) : undefined;
      if (!found) return 'unsupported';
      const [mime, validate, key] = found;
      // A type Warden does not parse. Whatever key matched: a body typed `*/*` literally is the key
      // itself, and was forwarded unread. One that is a JSON document all the same is checked as JSON
      // where the operation takes JSON too (json-as-other.ts); any other is forwarded unvalidated.
      if (!isJsonMediaType(mime) && !FIELD_MEDIA_TYPES.has(mime))
        return unparsedRefused.get(key) ?? (jsonSchemas.length > 0 && !isJsonSequenceType(mime) ? checkJsonAsOther(request) : undefined);
      if (!validate) return undefined;
      if (isJsonMediaType(mime)) {
        const json = jsonBodyOf(request);
        if (json === undefined) return { pointer: '/body', message: 'is not valid JSON' };
        if (json.tooDeep) return tooDeep('/body');
        return checkJson(key, validate, json.value);
      } else if (mime === FORM_MEDIA_TYPE) {
        const form = clientKeyed<unknown>();
        const pairs = formPairsOf(request) ?? [];
        for (let i = 0; i < pairs.length; i += 2) addField(form, pairs[i] as string, pairs[i + 1] as string);
        const deep = deepObjects.get(key);
        const fields = deep ? clientKeyed<unknown>() : form;
        const below = deep && foldDeepObjects(form, deep, fields);
        if (below) return below;
        const spelling = fieldNumbers.get(key)?.check(fields, '/body');
        if (spelling) return spelling;
        const violation = violationOf(validate, fields, '/body');
        if (violation) return violation;
        // The names as sent: a deepObject's `address[city]` is its own, a bare `address` is not.
        const misnamed = fieldNames(key, Object.keys(form));
        if (misnamed || !mayHoldNumericReference(body)) return misnamed;
        // Its values with `&#60;` read as `<` too, as qs reads them (numeric-references.ts).
        const decoded = clientKeyed<unknown>();
        let differs = false;
        for (let i = 0; i < pairs.length; i += 2) {
          const v = pairs[i + 1] as string;
          const d = numericReferencesDecoded(v);
          if (d !== undefined) differs = true;
          addField(decoded, pairs[i] as string, d ?? v);
        }
        if (!differs) return undefined;
        const read = deep ? clientKeyed<unknown>() : decoded;
        const problem =
          (deep && foldDeepObjects(decoded, deep, read)) ||
          (fieldNumbers.get(key)?.check(read, '/body') ?? violationOf(validate, read, '/body'));
        return problem && withReferencesDecoded(problem);
      } else if (mime === MULTIPART_MEDIA_TYPE) {
        const reading = multipartReadings.get(key) as MultipartReading;
        return multipartFields(contentType as string, body, reading, clientKeyed<unknown>(), MAX_MULTIPART_PARTS).then(
          (read) => {
            if ('violation' in read) return read.violation;
            const fields = read.fields;
            const spelling = fieldNumbers.get(key)?.check(fields, '/body');
            if (spelling) return spelling;
            const violation = violationOf(validate, fields, '/body');
            if (violation) return violation;
            const misreadField = fieldNames(key, Object.keys(fields), true);
            if (misreadField) return misreadField;
            // Members of a JSON part in another letter case, as in a JSON body.
            const variant = bodyNames.get(key)?.json.find(fields, '/body');
            return variant && memberVariant(variant);
          },
          () => ({ pointer: '/body', message: 'is not valid multipart/form-data' }),
        );
      }
      return undefined;
    },
  };
}
