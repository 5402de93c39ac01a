/**
 * `waf` stages: the request's parameters (path, query, selected headers, cookies — names and values)
 * and, on routes whose body is read anyway, its JSON or form body, through libddwaf with Warden's
 * ruleset. block → 403 ERR_WAF_BLOCKED raising warden.input.<class>; detect → the event only.
 * Events carry the rule id and the parameter path, never the value.
 */
import type { WafConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { RequestContext, Stage, StreamingStage, Verdict } from '../pipeline/stage.js';
import { reportDetected } from '../pipeline/rescue.js';
import type { EventBus, EventName } from '../telemetry/events.js';
import { addText, addValue, createWafTexts, WafInputTooLarge, type FlattenLimits, type WafTexts } from '../threats/waf-input.js';
import { createMultipartStream } from '../threats/multipart-stream.js';
import {
  contentTypeRefusal,
  FORM_MEDIA_TYPE,
  isAsciiCompatibleCharset,
  isFieldBody,
  isJsonMediaType,
  isMultipartMediaType,
  isXmlMediaType,
  mediaTypeOf,
  opensJsonDocument,
  unreadableCharset,
} from '../net/media-type.js';
import { isActiveDoctype, readXml, xmlEncodingProblem, type XmlReading } from '../net/xml-body.js';
import { formPairs, formPairsOf, type FormPairs } from '../net/form-pairs.js';
import { decodedFormFields } from '../net/body-as-form.js';
import { jsonBodyOf, jsonStringLiterals, type BufferedBody } from '../net/json-body.js';
import { wideEncoding } from '../net/wide-encoding.js';
import type { WafEngine, WafFound, WafMatch } from '../threats/waf.js';
import type { Readable } from 'node:stream';
// `%XX` decoded as UTF-8 bytes, invalid escapes kept (as PHP's urldecode keeps them), never a throw.
import { percentDecoded } from '../net/percent-decoded.js';
import { formBodyProblem } from '../net/form-body-problem.js';
import { hasPercentU, percentUDecoded } from '../net/percent-u.js';
import { mayHoldNumericReference, numericReferencesDecoded } from '../net/numeric-references.js';
import { cookieTrimmed } from '../net/cookie-trim.js';
import { opensJsonValue } from '../net/json-opening.js';

/** Headers an attacker controls that backends commonly read (logs, redirects, analytics). */
const INSPECTED_HEADERS = ['user-agent', 'referer', 'origin', 'x-forwarded-host', 'x-original-url', 'x-rewrite-url'];
/** Names OpenAPI ignores as header parameters (Accept, Content-Type, Authorization), and cookies, inspected on their own. */
const NOT_HEADER_PARAMETERS = new Set(['accept', 'content-type', 'authorization', 'cookie']);

/**
 * The headers a route's waf inspects: the common ones, and the header parameters its OpenAPI
 * operation declares (`in: header`) — the backend reads those by its own description.
 */
export function inspectedHeaders(declared: readonly string[] = []): readonly string[] {
  const names = new Set(INSPECTED_HEADERS);
  for (const name of declared) if (!NOT_HEADER_PARAMETERS.has(name.toLowerCase())) names.add(name.toLowerCase());
  return [...names];
}

export interface WafStageOptions {
  cfg: WafConfig;
  engine: WafEngine;
  /** Parameter paths (prefixes) this route does not inspect: known false positives. */
  skippedParameters: readonly string[];
  /** Header names this route inspects, lower case (inspectedHeaders). */
  headers: readonly string[];
  events: EventBus | undefined;
}

/** The path as the backend's router decodes it (the normalised path keeps reserved escapes like %27). */
function decodedPath(path: string): string {
  if (!path.includes('%')) return path;
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

const ESCAPED_OR_PLUS = /%[0-9A-Fa-f]{2}|%[uU][0-9A-Fa-f]{4}|\+/;

/** Both escapes decoded: `%XX` as UTF-8 bytes (invalid ones kept, as PHP's urldecode keeps them), then `%uXXXX`. */
const fullyDecoded = (s: string) => percentUDecoded(percentDecoded(s));

/**
 * A cookie's name and value as sent, and as backends decode them when that differs: PHP (`+` as a
 * space too), Express's cookie parser and Rails unescape `%XX` (System.Web `%uXXXX` too), and drop
 * the quotes around a quoted value. Read as sent only, `%27%20OR%201%3D1` passed every rule.
 */
function cookieReadings(name: string, value: string): [string, string][] {
  const unquoted = value.length > 1 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
  const readings: [string, string][] = [[name, value]];
  if (!ESCAPED_OR_PLUS.test(name) && !ESCAPED_OR_PLUS.test(unquoted)) return readings;
  readings.push([fullyDecoded(name), fullyDecoded(unquoted)]);
  if (name.includes('+') || unquoted.includes('+'))
    readings.push([fullyDecoded(name.replaceAll('+', ' ')), fullyDecoded(unquoted.replaceAll('+', ' '))]);
  return readings;
}

/** A character past U+007F: in a header value, a byte past 0x7F (node hands header values over as Latin-1). */
const HIGH_BYTE = /[\u0080-\uffff]/;

/**
 * A header value's bytes as a backend reads them: UTF-8. Node hands header values over as Latin-1,
 * one character per byte, so `1＇ OR 1=1` arrives as mojibake the NFKC reading cannot fold. Read
 * leniently (invalid sequences as U+FFFD, as Node, Java and .NET decode them): a strict reading
 * would give up on the whole value for one stray byte, and a lenient backend still reads the rest.
 */
const utf8Of = (latin1: string) => Buffer.from(latin1, 'latin1').toString('utf8');

function cookiePairReadings(pair: string): [string, string][] {
  const i = pair.indexOf('=');
  // The name as Starlette and Django read it (cookieTrimmed: `theme\x85` is `theme`), so a route's excluded cookie is that cookie.
  return i === -1 ? cookieReadings(pair, '') : cookieReadings(cookieTrimmed(pair.slice(0, i)), pair.slice(i + 1).trim());
}

/**
 * Every pair, the odd ones too: `=<value>` is inspected as a value with an empty name, and a pair
 * without `=` as a name (PHP reads it as a cookie of that name, empty): parsers differ on both. A
 * pair with bytes past 0x7F is also read as UTF-8 (its readings after those of its Latin-1 text).
 */
function cookieEntries(header: string | undefined): [string, string][] {
  if (!header) return [];
  // One scan of the header; pairs are looked at again only when it holds such a byte.
  const high = HIGH_BYTE.test(header);
  return header.split(';').flatMap((pair) => {
    const trimmed = pair.trim();
    if (trimmed === '') return [];
    const readings = cookiePairReadings(trimmed);
    // Decoded before trimming: trim() takes U+00A0, which is the last byte of some UTF-8 characters.
    if (high && HIGH_BYTE.test(trimmed)) readings.push(...cookiePairReadings(utf8Of(pair).trim()));
    return readings;
  });
}

const PLAIN_SEGMENT = /^[\w.$@[\]-]{1,64}$/;

/**
 * The suffixes the waf itself writes after a parameter's path: its name (`/query/q#name`), an XML
 * element's whole text and its processing instructions (`/body/order#text`, `#pi`). A `#` in a
 * name is escaped (`~2`, pointerSegment), so only these, at the very end, are suffixes.
 */
const SUFFIXES = ['#name', '#text', '#pi'] as const;

const suffixOf = (path: string): string | undefined => SUFFIXES.find((s) => path.endsWith(s));

/**
 * The parameter path for an event. Names are attacker input too, so a segment that is not a plain
 * identifier (`/query/<script>…#name`) is shown as `*`.
 */
function redactedPath(path: string): string {
  const suffix = suffixOf(path) ?? '';
  return (
    path
      .slice(0, path.length - suffix.length)
      .split('/')
      .map((seg, i) => (i === 0 || PLAIN_SEGMENT.test(seg) ? seg : '*'))
      .join('/') + suffix
  );
}

/**
 * Input the waf refuses as it reads it, before libddwaf: a `_charset_` parameter naming a charset
 * it cannot read, an XML document type declaration that fetches or expands entities, XML a strict
 * parser refuses. Thrown from a fill, like WafInputTooLarge, with the refusal it calls for.
 */
class InputRefused extends Error {
  constructor(readonly refusal: WardenError) {
    super(refusal.message);
  }
}

/** What stops filling a request's texts: too much to inspect, or input refused as it is read. */
const stopsFilling = (x: unknown): x is WafInputTooLarge | InputRefused => x instanceof WafInputTooLarge || x instanceof InputRefused;

/** A match named by its parameter path. */
type NamedMatch = Omit<WafMatch, 'index'> & { readonly path: string };
type Finding = NamedMatch | 'timeout' | WafInputTooLarge | InputRefused | undefined;

/** The refusal a finding calls for, or undefined when the configuration lets it through. */
function refusalOf(found: Finding, cfg: WafConfig): WardenError | undefined {
  if (found === undefined) return undefined;
  if (found instanceof InputRefused) return found.refusal;
  if (found instanceof WafInputTooLarge) {
    if (cfg.oversize === 'allow') return undefined;
    return new WardenError('ERR_WAF_BLOCKED', {
      rule: `waf.limits.${found.what}`,
      detail:
        found.what === 'text'
          ? 'The request has more nested XML text than can be inspected.'
          : found.what === 'body'
            ? 'The body opens like JSON and is longer than the waf holds to inspect it (limits.body_memory_bytes).'
            : 'The request has more parameters or nesting than can be inspected.',
      event: 'warden.input.invalid',
    });
  }
  if (found === 'timeout') {
    if (cfg.on_timeout === 'allow') return undefined;
    return new WardenError('ERR_WAF_BLOCKED', {
      rule: 'waf.timeout',
      detail: 'The request could not be inspected in time.',
      event: 'warden.input.invalid',
    });
  }
  return new WardenError('ERR_WAF_BLOCKED', {
    rule: found.rule,
    event: `warden.input.${found.class}` as EventName,
    // The parameter's path, never its value.
    attributes: { 'warden.detail': redactedPath(found.path) },
  });
}

/** block: the refusal; detect: its event only, and the request goes on. */
function verdictOf(refusal: WardenError | undefined, o: WafStageOptions, ctx: RequestContext): Verdict {
  if (refusal === undefined || o.cfg.mode === 'block') return refusal;
  reportDetected(o.events, refusal, ctx);
  return undefined;
}

function fillTexts(fill: (texts: WafTexts) => void, withPaths: boolean): WafTexts | WafInputTooLarge | InputRefused {
  const texts = createWafTexts(withPaths);
  try {
    fill(texts);
  } catch (err) {
    if (stopsFilling(err)) return err;
    throw err;
  }
  return texts;
}

/**
 * Whether a parameter path falls under an excluded parameter: the parameter itself, anything inside
 * it (`/body/sql/0`), or its own suffixed entries (`/body/sql#name`, `#text`, `#pi`) — those exactly:
 * `/body/sql#x` (a name `sql~2x` now) was taken for one and its subtree went uninspected. Built once, with the stage.
 */
function skipperOf(skipped: readonly string[]): ((path: string) => boolean) | undefined {
  if (skipped.length === 0) return undefined;
  const exact = new Set(skipped.flatMap((s) => [s, ...SUFFIXES.map((suffix) => `${s}${suffix}`)]));
  const prefixes = skipped.map((s) => `${s}/`);
  return (path) => exact.has(path) || prefixes.some((p) => path.startsWith(p));
}

function inspect(
  o: WafStageOptions,
  skip: ((path: string) => boolean) | undefined,
  fill: (texts: WafTexts) => void,
): Finding | Promise<Finding> {
  // Paths are built only when exclusions need them, or below to name a match.
  const texts = fillTexts(fill, skip !== undefined);
  if (stopsFilling(texts)) return texts;
  if (skip && texts.paths) {
    const paths = texts.paths;
    for (let i = paths.length - 1; i >= 0; i--) {
      if (skip(paths[i] as string)) {
        paths.splice(i, 1);
        texts.texts.splice(i, 1);
      }
    }
  }
  const named = (found: WafFound): Finding => {
    if (found === undefined || found === 'timeout') return found;
    const paths = texts.paths ?? (fillTexts(fill, true) as WafTexts).paths;
    return { rule: found.rule, class: found.class, path: paths?.[found.index] ?? '/' };
  };
  const found = o.engine.inspectSoon(texts.texts);
  return found instanceof Promise ? found.then(named) : named(found);
}

/**
 * What each waf stage builds once, with the stage: its input limits, its exclusions, and `judge`,
 * the stage's verdict on a request's input (now, or once the batched inspection is done).
 */
function wafStageParts(o: WafStageOptions) {
  const limits: FlattenLimits = { maxEntries: o.cfg.max_entries, maxDepth: o.cfg.max_depth };
  const skip = skipperOf(o.skippedParameters);
  const judge = (ctx: RequestContext, fill: (texts: WafTexts) => void): Verdict | Promise<Verdict> => {
    const found = inspect(o, skip, fill);
    return found instanceof Promise
      ? found.then((f) => verdictOf(refusalOf(f, o.cfg), o, ctx))
      : verdictOf(refusalOf(found, o.cfg), o, ctx);
  };
  return { limits, skip, judge };
}

/**
 * A normalised path of plain segments (`/orders/42/items`) can match no rule except the system
 * files of `traversal-files`, so it is not handed to libddwaf — most requests' path is one.
 */
const PLAIN_PATH = /^[A-Za-z0-9_./-]{0,512}$/;
const SYSTEM_FILES = /etc\/|proc\/|\.ini|system32|\.\./i;

function addRequestParts(t: WafTexts, ctx: RequestContext, limits: FlattenLimits, headers: readonly string[]): void {
  if (!PLAIN_PATH.test(ctx.path) || SYSTEM_FILES.test(ctx.path)) addValue(t, '/path', decodedPath(ctx.path), limits);
  addValue(t, '/path_params', { ...ctx.params }, limits);
  if (ctx.search.length > 1) addValue(t, '/query', parametersOf(ctx.search.slice(1)), limits);
  for (const h of headers) {
    const v = ctx.headers[h];
    if (typeof v !== 'string') continue;
    addValue(t, `/header/${h}`, v, limits);
    if (HIGH_BYTE.test(v)) addValue(t, `/header/${h}`, utf8Of(v), limits);
  }
  const cookies = cookieEntries(ctx.headers.cookie);
  if (cookies.length > 0) addValue(t, '/cookie', formOf(cookies), limits);
}

/**
 * A request whose body the buffered waf stage parses has its path, query, headers and cookies
 * inspected there too, in the same libddwaf run: one run per request instead of two (each costs
 * ~14 µs of fixed overhead). Still before the backend sees a byte.
 */
function inspectedWithBody(ctx: RequestContext): boolean {
  return isWafBufferedBody(mediaTypeOf(ctx.headers['content-type']));
}

/** The path, query, selected headers and cookies (names and values). */
export function createWafRequestStage(o: WafStageOptions): Stage {
  const { limits, judge } = wafStageParts(o);
  return {
    id: 'waf',
    run(ctx) {
      if (inspectedWithBody(ctx)) return undefined;
      return judge(ctx, (t) => addRequestParts(t, ctx, limits, o.headers));
    },
  };
}

/** A body the waf would read as UTF-8 while the backend decodes another charset is not passed on uninspected. */
function charsetRefusal(charset: string): WardenError {
  return new WardenError('ERR_MEDIA_TYPE_UNSUPPORTED', {
    rule: 'waf.charset',
    detail: `The waf reads bodies as UTF-8; in ${charset.slice(0, 40)} the backend could read input the waf cannot see.`,
  });
}

/** A multipart body the waf cannot take apart is not passed on uninspected. */
function unreadable(reason: string, cfg: WafConfig): WardenError | undefined {
  if (reason === 'too many parts') return refusalOf(new WafInputTooLarge('entries'), cfg);
  return new WardenError('ERR_REQUEST_INVALID', {
    rule: 'waf.multipart',
    detail: `The multipart body could not be parsed: ${reason}.`,
  });
}

/** The bodies the buffered waf stage parses: what it inspects is what the backend will decode. */
export function isWafBufferedBody(mime: string): boolean {
  return isFieldBody(mime) || mime.startsWith('text/') || isXmlMediaType(mime) || isTextualApplication(mime);
}

/**
 * The bodies the waf reads only when they open like JSON (readsOpeningAsJson): any type it does not
 * otherwise read but multipart — octet-stream, images, archives. Mojolicious' `$c->req->json`,
 * Dancer2's JSON serializer and Go decode a body as JSON whatever its type.
 */
export function readsOpeningOf(mime: string): boolean {
  return !isWafBufferedBody(mime) && !isMultipartMediaType(mime);
}

/** The waf's verdict on a body of such a type that opens like JSON but is longer than is held: its oversize policy. */
export function createWafUnheldVerdict(o: WafStageOptions): (ctx: RequestContext) => Verdict {
  return (ctx) => verdictOf(refusalOf(new WafInputTooLarge('body'), o.cfg), o, ctx);
}

/**
 * An `application/*` type that names a text format (`x-json`, `x-ndjson`, `csp-report`, `graphql`,
 * `javascript`, `yaml`, `sql`…): read as text, and as JSON when it opens like JSON. They were not
 * read at all, and a backend decodes such a body as JSON anyway (Flask's get_json(force=True),
 * express.json({ type: '*\/*' }), Go): an SQL injection in one reached it uninspected (row 302).
 * Binary types (octet-stream, images, archives) are left to stream: in OpenAPI mode an operation
 * refuses a type it does not list (415).
 */
const TEXT_FORMAT = /(?:^|[./+-])(?:x-)?(?:json|ndjson|jsonl|yaml|csv|sql|graphql|javascript|ecmascript|csp-report)(?:$|[+;])/;

function isTextualApplication(mime: string): boolean {
  // Whole subtype tokens: `vnd.sqlite3` and `ubjson` are binary.
  return mime.startsWith('application/') && TEXT_FORMAT.test(mime.slice('application/'.length));
}

/** The body's strings read as JSON: parsed, or every literal unescaped when not interoperable JSON. */
function addJsonReading(t: WafTexts, request: BufferedBody, text: string, limits: FlattenLimits): void {
  const json = jsonBodyOf(request);
  addValue(t, '/body', json !== undefined ? json.value : jsonStringLiterals(text), limits);
}

/** XML whose document type declaration declares entities or names an external DTD (XXE, entity expansion). */
const xmlDoctypeRefused = () =>
  new WardenError('ERR_WAF_BLOCKED', {
    rule: 'waf.xml_doctype',
    detail: 'XML with a document type declaration that declares entities or names an external DTD is not accepted.',
    event: 'warden.input.xxe',
    attributes: { 'warden.detail': '/body' },
  });

/**
 * The most characters of nested XML text (an element's whole text, read again where it joins more
 * than one piece) read for one request: four times its XML, and 1 MiB more. Past it the request is
 * refused as too large to inspect (`waf.limits.text`), never passed on with that text unread.
 */
const nestedTextBudget = (xmlChars: number) => 4 * xmlChars + (1 << 20);

/** What a reading of XML calls for instead of inspecting its strings: thrown from a fill. */
function xmlRefusal(xml: XmlReading, what: 'body' | 'part'): InputRefused | WafInputTooLarge | undefined {
  if (xml.doctype !== undefined && isActiveDoctype(xml.doctype)) return new InputRefused(xmlDoctypeRefused());
  if (xml.tooLarge !== undefined) return new WafInputTooLarge(xml.tooLarge);
  if (xml.error !== undefined)
    return new InputRefused(
      new WardenError('ERR_REQUEST_INVALID', { rule: 'waf.xml', detail: `The XML ${what} could not be read: ${xml.error.slice(0, 120)}.` }),
    );
  return undefined;
}

/**
 * The request's body, if any; its JSON parse stays on the request for the other body stages.
 * `skip`: the route's excluded parameters, whose XML text its enclosing elements leave out.
 */
function addBody(t: WafTexts, mime: string, request: BufferedBody, limits: FlattenLimits, skip?: (path: string) => boolean): void {
  const body = request.body;
  if (!body || body.length === 0) return;
  if (isJsonMediaType(mime)) {
    const json = jsonBodyOf(request);
    if (json !== undefined) {
      addValue(t, '/body', json.value, limits);
      return addFormReading(t, body, undefined, limits);
    }
    // Not interoperable JSON (or none): the text as it is, and every string in it unescaped.
    const text = body.toString('utf8');
    addText(t, '/body', text, limits);
    addValue(t, '/body', jsonStringLiterals(text), limits);
    addFormReading(t, body, text, limits);
  } else if (isXmlMediaType(mime)) {
    const text = body.toString('utf8');
    addFormReading(t, body, text, limits);
    const xml = readXml(
      text,
      { maxDepth: limits.maxDepth, maxStrings: limits.maxEntries + 1, maxNestedText: nestedTextBudget(text.length) },
      skip && ((path) => skip(`/body${path}`)),
    );
    const refused = xmlRefusal(xml, 'body');
    if (refused !== undefined) throw refused;
    for (const [path, s] of xml.strings) addValue(t, `/body${path}`, s, limits);
  } else if (mime === FORM_MEDIA_TYPE || mime === '' || mime.startsWith('text/') || isTextualApplication(mime)) {
    // A form (untyped: Rack reads a POST body as one), or text as it is.
    const text = body.toString('utf8');
    const asJson = mime === '' || opensJsonDocument(body);
    // A ";" or a "%" that starts no escape, which backends read otherwise (form-body-problem.ts).
    const formProblem = mime === FORM_MEDIA_TYPE ? formBodyProblem(body) : undefined;
    if (formProblem) throw new InputRefused(formProblem);
    if (mime === FORM_MEDIA_TYPE || mime === '')
      addValue(t, '/body', withReferencesDecoded(parametersOf(text, formPairsOf(request)), text), limits);
    // Text whose strings are read below with their escapes undone, or else as a whole.
    else if (asJson || isTextualApplication(mime)) addText(t, '/body', text, limits);
    else addValue(t, '/body', text, limits);
    if (mime !== FORM_MEDIA_TYPE && mime !== '') addFormReading(t, body, text, limits);
    // And as JSON when it is JSON whatever the type says: a Go handler decodes the body whatever
    // its Content-Type (untyped bodies always, for the same reason).
    if (asJson) addJsonReading(t, request, text, limits);
    // Text formats with JSON's string escapes that need not open like JSON (NDJSON after a first
    // line, GraphQL's "…\u0027…", YAML's "…\U00000027…"): their quoted strings unescaped too.
    else if (isTextualApplication(mime)) addValue(t, '/body', jsonStringLiterals(text), limits);
  }
}

/**
 * A body the waf reads as text or JSON, also read as a form where decoding changes a field: Bottle
 * reads any body but multipart as one, so `{"x":"&q=1%27%20UNION…&"}` or a text body
 * `q=1'+UNION+…` is `q` = `1' UNION…` to `request.forms` (body-as-form.ts). Only a body holding an
 * `=` and a `%` or `+` is read again; the fields count against max_entries. Binary-typed bodies
 * are not read (threats.md).
 */
function addFormReading(t: WafTexts, body: Buffer, text: string | undefined, limits: FlattenLimits): void {
  if (!body.includes(0x3d /* = */) || (!body.includes(0x25 /* % */) && !body.includes(0x2b /* + */))) return;
  const fields = decodedFormFields(text ?? body.toString('utf8'), limits.maxEntries);
  if (fields === undefined) throw new WafInputTooLarge('entries');
  if (fields.length > 0) addValue(t, '/body', formOfFlat(fields), limits);
}

function formOf(pairs: Iterable<[string, string]>): Record<string, string[]> {
  const form: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const [k, v] of pairs) (form[k] ??= []).push(v);
  return form;
}

/** formOf for fields read flat (name, value, …: form-pairs.ts). */
function formOfFlat(pairs: FormPairs): Record<string, string[]> {
  const form: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (let i = 0; i < pairs.length; i += 2) (form[pairs[i] as string] ??= []).push(pairs[i + 1] as string);
  return form;
}

/**
 * A query's or form body's parameters (form-decoded), unless a `_charset_` among them names a
 * charset the waf cannot read them in. When the text holds a `%uXXXX` escape, a name or value
 * holding one is read again as System.Web reads it (`/query/q/0` as URLSearchParams decodes it,
 * `/query/q/1` with `%u0027` as `'`): an ASP.NET or classic ASP backend reads the quote.
 */
function parametersOf(text: string, params: FormPairs = formPairs(text)): Record<string, string[]> {
  const form = formOfFlat(params);
  for (const charset of form._charset_ ?? [])
    if (charset.trim() !== '' && !isAsciiCompatibleCharset(charset))
      throw new InputRefused(
        new WardenError('ERR_REQUEST_INVALID', {
          rule: 'waf.charset_parameter',
          detail: `The _charset_ parameter names ${charset.slice(0, 40)}; the waf reads parameters as UTF-8 only.`,
        }),
      );
  // One scan of the text; its pairs are looked at only when it holds the escape. URLSearchParams
  // keeps a `%uXXXX` as sent, so a pair System.Web decodes one in still holds it decoded here.
  if (!hasPercentU(text)) return form;
  for (let i = 0; i < params.length; i += 2) {
    const name = params[i] as string;
    const value = params[i + 1] as string;
    if (hasPercentU(name) || hasPercentU(value)) (form[percentUDecoded(name)] ??= []).push(percentUDecoded(value));
  }
  return form;
}

/**
 * A form body's parameters with, after each value that holds a numeric character reference, the
 * value with it decoded (`/body/bio/1`): Express 5's body-parser with interpretNumericEntities
 * reads `&#60;script&#62;` as `<script>` (numeric-references.ts). Not a query's: qs reads those without.
 */
function withReferencesDecoded(form: Record<string, string[]>, text: string): Record<string, string[]> {
  if (!mayHoldNumericReference(text)) return form;
  for (const values of Object.values(form)) {
    const sent = values.length;
    for (let i = 0; i < sent; i++) {
      const decoded = numericReferencesDecoded(values[i] as string);
      if (decoded !== undefined) values.push(decoded);
    }
  }
  return form;
}

/** JSON, form, text and XML bodies, buffered, as the backend will parse them — with the request's other parts. */
export function createWafBodyStage(o: WafStageOptions): Stage {
  const { limits, skip, judge } = wafStageParts(o);
  return {
    id: 'waf',
    run(ctx) {
      const contentType = ctx.headers['content-type'];
      // A Content-Type a backend reads as another type than the one the body is inspected as
      // (`application/x-www-form-urlencoded,x` is a form to PHP and Rack): detect mode reports it.
      const ambiguous = verdictOf(contentTypeRefusal(contentType), o, ctx);
      if (ambiguous) return ambiguous;
      const mime = mediaTypeOf(contentType);
      const body = ctx.body;
      // Any other type (not multipart) is read when it opens like JSON: its strings, as for JSON.
      if (!isWafBufferedBody(mime)) {
        if (body === undefined || !readsOpeningOf(mime) || !opensJsonValue(body)) return undefined;
        const charset = unreadableCharset(contentType);
        if (charset !== undefined) return verdictOf(charsetRefusal(charset), o, ctx);
        return judge(ctx, (t) => addBody(t, 'application/json', ctx, limits));
      }
      // A charset named, or UTF-16/32 by the first bytes (JSON readers detect it whatever the header says).
      const charset =
        body !== undefined && body.length > 0
          ? (unreadableCharset(contentType) ?? wideEncoding(body, mime === '') ?? xmlEncodingProblem(mime, body))
          : undefined;
      if (charset !== undefined) {
        // Detect mode reports it and still inspects the rest of the request.
        const refused = verdictOf(charsetRefusal(charset), o, ctx);
        return refused ?? judge(ctx, (t) => addRequestParts(t, ctx, limits, o.headers));
      }
      return judge(ctx, (t) => {
        addRequestParts(t, ctx, limits, o.headers);
        addBody(t, mime, ctx, limits, skip);
      });
    },
  };
}

/** A part's content as text, or undefined past `maxBytes`; called once the part has ended. */
function readAsField(content: Readable, maxBytes: number, done: (text: string | undefined) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  content.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= maxBytes) chunks.push(chunk);
  });
  content.once('end', () => done(size <= maxBytes ? Buffer.concat(chunks).toString('utf8') : undefined));
}

/**
 * Multipart bodies, parsed while they arrive: text fields and file names (file contents are
 * skipped), and in multipart types other than form-data the parts no form reader reads, as Rack reads them.
 */
export function createWafMultipartStage(o: WafStageOptions, maxFieldBytes: number): StreamingStage {
  const { limits, judge } = wafStageParts(o);
  return {
    id: 'waf',
    observe(ctx) {
      const contentType = ctx.headers['content-type'];
      if (!isMultipartMediaType(mediaTypeOf(contentType))) return undefined;
      const fields: [string, string][] = [];
      const files: [string, string][] = [];
      let unnamedTooLarge = false;
      // XML parts: read as the body is, within one budget of strings and nested text for them all.
      let xmlChars = 0;
      let xmlStrings = 0;
      let xmlNestedText = 0;
      // A JSON or XML part refused (its encoding, its XML); no XML part is read after one.
      let partRefused: InputRefused | WafInputTooLarge | undefined;
      const readXmlPart = (name: string, value: string, mimeType: string) => {
        // Empty, as an empty body is not read either.
        if (value === '') return;
        const encoding = xmlEncodingProblem(mimeType, Buffer.from(value));
        if (encoding !== undefined) return void (partRefused = new InputRefused(charsetRefusal(encoding)));
        xmlChars += value.length;
        const xml = readXml(value, {
          maxDepth: limits.maxDepth,
          maxStrings: limits.maxEntries + 1 - xmlStrings,
          maxNestedText: nestedTextBudget(xmlChars) - xmlNestedText,
        });
        partRefused = xmlRefusal(xml, 'part');
        xmlStrings += xml.strings.length;
        xmlNestedText += xml.nestedText;
        for (const [, s] of xml.strings) fields.push([name, s]);
      };
      /** A JSON or XML part in UTF-16 or UTF-32 by its first bytes (Jackson detects it): refused as such a body is. */
      const wideRefused = (value: string) => {
        const encoding = wideEncoding(value);
        if (encoding !== undefined) partRefused ??= new InputRefused(charsetRefusal(encoding));
        return encoding !== undefined;
      };
      const readField = (name: string, value: string, mimeType: string) => {
        fields.push([name, value]);
        // A JSON part (Spring's @RequestPart binds one): its strings unescaped too.
        if (isJsonMediaType(mimeType)) {
          if (!wideRefused(value)) for (const s of jsonStringLiterals(value)) fields.push([name, s]);
        }
        // An XML part (Spring binds one with its XML converter): its text as a parser reads it,
        // character references decoded, and its document type declaration refused, as a body's.
        else if (isXmlMediaType(mimeType) && partRefused === undefined && !wideRefused(value)) readXmlPart(name, value, mimeType);
      };
      // An XML file part is read for its strings when it parses, and left as a file when it does
      // not; but not one in UTF-16 or UTF-32, which Spring's converter decodes and binds.
      const readXmlFile = (name: string, value: string) => {
        if (wideRefused(value)) return;
        const xml = readXml(value, {
          maxDepth: limits.maxDepth,
          maxStrings: limits.maxEntries,
          maxNestedText: nestedTextBudget(value.length),
        });
        if (xmlRefusal(xml, 'part') === undefined) for (const [, s] of xml.strings) fields.push([name, s]);
      };
      const multipart = createMultipartStream(
        contentType as string,
        { maxParts: limits.maxEntries, maxFieldBytes },
        {
          onField: readField,
          onFile(name, filename, content, mimeType, _named, formidable) {
            files.push([name, filename]);
            // formidable hands `&#0060;script&#0062;` over as `<script>`: read as it reads it too.
            if (formidable?.fileName !== undefined) files.push([name, formidable.fileName]);
            // No file name: busboy takes an octet-stream part for a file, PHP and Spring read it as
            // a text field; its content is inspected as one. (formidable 3 reads a file part without
            // a Content-Type as a text field too, but that is every file Python's requests sends:
            // read as text, images and archives were refused; threats.md.)
            if (filename === '')
              readAsField(content, maxFieldBytes, (text) => (text === undefined ? (unnamedTooLarge = true) : fields.push([name, text])));
            // A JSON or XML part with a file name (a browser's FormData Blob: filename="blob"):
            // Spring's @RequestPart binds it as JSON or XML all the same, so it is read: JSON as a
            // field; XML for its strings when it parses (its markup is no input) — an uploaded XML
            // file that does not (a DOCTYPE, a Latin-1 document, a cut one) is a file, not refused.
            else if (isJsonMediaType(mimeType) || (isXmlMediaType(mimeType) && !mimeType.startsWith('image/')))
              readAsField(content, maxFieldBytes, (text) =>
                text === undefined
                  ? (unnamedTooLarge = true)
                  : isJsonMediaType(mimeType)
                    ? readField(name, text, mimeType)
                    : readXmlFile(name, text),
              );
            else content.resume();
          },
          // A part no form reader here reads is still a field to Rack (Rails, Sinatra), which
          // reads every multipart type as a form: its content is read as a field's value, by the
          // name Rack gives it (by its type where Rack names it after that or its file name).
          // An OData $batch's application/http parts are read so too, and pass unless they hold
          // an attack.
          readUnreadContent: true,
          onUnreadPart({ rackName, contentType: partType, content }) {
            if (content === 'too large') return void (unnamedTooLarge = true);
            const charset = unreadableCharset(partType);
            if (charset !== undefined) return void (partRefused ??= new InputRefused(charsetRefusal(charset)));
            if (content !== undefined) readField(rackName ?? (partType || 'text/plain'), content.toString('utf8'), mediaTypeOf(partType));
          },
        },
      );
      if (!multipart) {
        const refusal = unreadable('no boundary', o.cfg);
        return { write: () => undefined, end: () => Promise.resolve(verdictOf(refusal, o, ctx)), abort: () => undefined };
      }
      return {
        write: (chunk) => multipart.write(chunk),
        end: () =>
          multipart.end().then((found) => {
            const problem = found ?? (unnamedTooLarge ? 'a field is too large' : undefined);
            if (problem !== undefined) return verdictOf(unreadable(problem, o.cfg), o, ctx);
            return judge(ctx, (t) => {
              if (partRefused !== undefined) throw partRefused;
              if (fields.length > 0) addValue(t, '/body', formOf(fields), limits);
              if (files.length > 0) addValue(t, '/files', formOf(files), limits);
            });
          }),
        abort: () => multipart.abort(),
      };
    },
  };
}
