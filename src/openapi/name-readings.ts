/**
 * The query keys an operation owns (or the form fields its body schema declares), and the names a
 * backend would read as one of them. Validation checks `limit` as declared; a backend may read
 * other names as `limit` too:
 *
 * - another letter case: ASP.NET Core's model binding (`?LIMIT=1000`);
 * - bracket syntax: Express's default query parser (qs), PHP and Rails read `?limit[]=1000` and
 *   `?limit[0]=1000` as `limit` (an array, which `parseInt` and PHP's `(int)` read as 1000 and 1);
 * - PHP's names: leading spaces trimmed, ` ` and `.` read as `_` (`?page.size=` is `page_size`),
 *   a `[` never closed too, the key then being no array (`?page[size=` is `page_size`), and cut at
 *   the first NUL (`php_register_variable_ex` measures the name with strlen: `?limit%00=1000` is
 *   `limit`, `_method%00` is `_method`);
 * - System.Web's `%uXXXX` escape, which the standard decoding leaves as it is: ASP.NET on .NET
 *   Framework reads `?%u006cimit=1000` as `limit` (the waf reads values the same way, row 129).
 * - qs's `allowDots` (qs-dots.ts; co-body's default, so every Koa form): `.limit`, `limit.0` and
 *   `.limit]` are `limit`, `filter.color` is `filter[color]`, which is refused (a deepObject entry
 *   is sent with brackets); a declared dotted name's path alike (`page[size]` for `page.size`).
 *
 * - for form and multipart fields (`separators`), `_` and `-` ignored as well: pydantic's
 *   populate_by_name binds `is_admin` to a field listed as `isAdmin` (case-variants.ts).
 * - for multipart fields (`stripped`), ASCII white space taken off both ends: Django's
 *   MultiPartParser reads `name="role "` as `role` (`disposition['name'].strip()`, on the bytes);
 *   its QueryDict keeps a form field's `role%20` as it is, as Werkzeug keeps both.
 *
 * Such a key is refused, not ignored: the declared parameter's constraints would be skipped. Keys a
 * deepObject parameter owns (`filter[color]`) and the properties of an exploded object parameter
 * are the operation's own; the bare name of either (`filter=x`) is not, since validation never
 * reads it and qs reads it as the parameter.
 */
import { percentDecoded } from '../net/percent-decoded.js';
import { hasPercentU, percentUDecoded } from '../net/percent-u.js';
import { foldCase } from './case-variants.js';
import type { ParameterObject } from './operations.js';
import { qsDotsKey, qsDotsPath, qsDotsRoot, qsPath } from './qs-dots.js';
import { boundedReading } from './reading-length.js';
import { separatorsRemoved } from './separators-removed.js';
import { underscored } from './underscored.js';
import { isObjectSchema, objectPropertiesOf } from './schema-types.js';

export interface NameReadings {
  /** Whether the key is one the operation declares (a parameter, a deepObject entry, an exploded property). */
  owns(key: string): boolean;
  /** For a key the operation does not own: the declared name a backend would read it as, and how. */
  readAs(key: string): NameReading | undefined;
}

export interface NameReading {
  readonly declared: string;
  /** Only letter case differs. */
  readonly caseOnly: boolean;
  /** Read so only once `_` and `-` are ignored too (compileNameReadings' `separators`). */
  readonly separators?: true;
  /** Read so by Django, which strips white space around a multipart field's name (compileNameReadings' `stripped`). */
  readonly stripped?: true;
  /** Read so only by qs with `allowDots` (qs-dots.ts). */
  readonly dots?: true;
}

/** Brackets before a name, then the name up to the next bracket: `[limit]`, `]limit`, `limit]`, `limit[]` are `limit`. */
const BRACKETED_NAME = /^[[\]]*([^[\]]*)/;

/** A key's name as PHP takes it before any bracket syntax: `%u` escapes decoded, up to a NUL, leading spaces trimmed. */
function phpName(raw: string): string {
  const key = hasPercentU(raw) ? percentUDecoded(raw) : raw;
  const nul = key.indexOf('\0');
  return (nul === -1 ? key : key.slice(0, nul)).trimStart();
}

/**
 * A key as PHP, qs, Rails and System.Web read it, case folded: `%u` escapes decoded, up to a NUL,
 * PHP's spaces and dots, then the name before any bracket, brackets before it skipped — qs reads
 * `[limit]=1000` as `limit` (an empty parent is dropped), Rack 2 strips leading `[` and `]`.
 */
export function readingOf(raw: string): string {
  const php = phpName(raw);
  // The name taken first: ` ` and `.` are no bracket, and a bracket stays one.
  const name = php.includes('[') || php.includes(']') ? (BRACKETED_NAME.exec(php)?.[1] ?? '') : php;
  return foldCase(underscored(name, /[ .]/g, (c) => c === 0x20 || c === 0x2e));
}

/**
 * The name qs reads a key as with `allowDots` (qs-dots.ts), case folded: `.role`, `role.0`,
 * `.role]`, `%2Erole` (once decoded) are `role`, `profile.role` is `profile`. qs decodes no `%u`
 * escape (`%u002erole` stays a name of its own). Undefined for a key without a `.`; null when
 * the root is too long to fold to `max` characters or fewer (a character folds to one or more,
 * but for U+0307 after an `i`: the root's half at least).
 */
function dotsReadingWithin(raw: string, max: number): string | null | undefined {
  const root = qsDotsRoot(raw);
  if (root === undefined) return undefined;
  return root.length > 2 * max ? null : foldCase(root);
}

/**
 * readingOf for a plain name — no `%`, `+`, `.`, `[`, `]`, NUL or character beyond ASCII, as most
 * cookie names and query keys are — computed without its regular expressions: leading white space
 * trimmed, ` ` read as `_`, lower case (ASCII case folds so). Such a name has no other reading
 * (the unclosed reading needs a `[`, qs's allowDots reading a `.`), and no decoded one (cookieNameSpellings
 * needs `%` or `+`). Undefined for any other name, which takes the full reading. Names are read on
 * every request (token sources: each cookie, each query key), where the full reading costs ~0.6 µs.
 */
export function plainReadingOf(name: string): string | undefined {
  if (!isPlainName(name)) return undefined;
  const php = name.trimStart();
  return (php.includes(' ') ? php.replaceAll(' ', '_') : php).toLowerCase();
}

/** Whether plainReadingOf reads `name`: no `%`, `+`, `.`, `[`, `]`, NUL or character beyond ASCII. */
export function isPlainName(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0 || c === 0x25 /* % */ || c === 0x2b /* + */ || c === 0x2e /* . */ || c === 0x5b /* [ */ || c === 0x5d /* ] */ || c > 0x7f)
      return false;
  }
  return true;
}

/**
 * A cookie's name as sent and as the backends that decode cookie names read it: PHP 8 keeps
 * `acc%65ss_token` as it is (since 7.4.11, bug #79699); ASP.NET Core 2 percent-decodes it (`+`
 * kept: Uri.UnescapeDataString); PHP before 7.4.11 decoded it with php_url_decode, where `+` is a
 * space, which it then reads as `_` (`access+token` was `$_COOKIE['access_token']`). querystring's
 * unescape keeps a malformed escape as it is, as PHP does.
 */
export function cookieNameSpellings(name: string): string[] {
  const spellings = [name];
  if (name.includes('%')) spellings.push(percentDecoded(name));
  if (name.includes('+')) spellings.push(percentDecoded(name.replaceAll('+', ' ')));
  return spellings;
}

// PHP's other reading of a key whose first `[` is never closed: no array, so the whole key is the
// name, with `[`, `.` and ` ` read as `_` (php_register_variable_ex, "not an index; un-terminate
// the var name"): `page[size` is `page_size`, where qs and Rack read `page`. Read by
// reading-length.ts boundedReading (`unclosed`), in the pass that bounds it.

const isAsciiSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);

/** ASCII white space as Python's `bytes.strip()` takes it off both ends (Django's multipart field names); a loop, linear on any name. */
function asciiStripped(name: string): string {
  let start = 0;
  let end = name.length;
  while (start < end && isAsciiSpace(name.charCodeAt(start))) start++;
  while (end > start && isAsciiSpace(name.charCodeAt(end - 1))) end--;
  return start === 0 && end === name.length ? name : name.slice(start, end);
}

/**
 * The property a deepObject key names (`filter[color]` → `color`), or undefined: only a key that
 * is exactly `name[property]` is one. `filter[color][]` or `filter[color][x]` is an array or an
 * object to qs and Rails, which the property's schema was never asked about.
 */
export function deepObjectProperty(key: string, name: string): string | undefined {
  if (key.length < name.length + 3 || !key.startsWith(name) || key.charCodeAt(name.length) !== 0x5b /* [ */ || !key.endsWith(']')) {
    return undefined;
  }
  const property = key.slice(name.length + 1, -1);
  return property.includes('[') || property.includes(']') ? undefined : property;
}

/**
 * The parameter names frameworks take a method override from: `_method` (Symfony, Laravel, Rack,
 * method-override, Mojolicious, koa-override), `x-tunneled-method` (the default of Perl's
 * Plack::Middleware::MethodOverride, and Catalyst's REST::ForBrowsers from the body too: a POST
 * ran as a denied DELETE), `x-http-method-override` (ASP.NET MVC's GetHttpMethodOverride reads the
 * header, then a form field, then a query parameter of that name).
 */
const OVERRIDE_PARAMETERS: ReadonlySet<string> = new Set(['_method', 'x-tunneled-method', 'x-http-method-override']);
const LONGEST_OVERRIDE = Math.max(...[...OVERRIDE_PARAMETERS].map((name) => name.length));

/**
 * Whether a query key or body field is a method override as those frameworks read it (a `_method`
 * as Symfony, Laravel, Rack and method-override read it), or koa-override after co-body's qs with
 * allowDots (`._method`): a request to run another method (src/proxy/overrides.ts, request-validator.ts).
 */
export const isMethodOverrideName = (key: string): boolean =>
  isOverrideReading(boundedReading(key, LONGEST_OVERRIDE, false)) || dottedMethod(key);

/** readingOf, read in a pass that stops once too long to be an override name (reading-length.ts). */
const isOverrideReading = (reading: string | null | undefined): boolean =>
  typeof reading === 'string' && OVERRIDE_PARAMETERS.has(foldCase(reading));

const METHOD = /method/i;

/** The allowDots reading is `_method`, looked for only when it may be: a `.` and `method` (in any case; nothing beyond ASCII folds to its letters). */
function dottedMethod(key: string): boolean {
  return key.includes('.') && METHOD.test(key) && OVERRIDE_PARAMETERS.has(dotsReadingWithin(key, LONGEST_OVERRIDE) ?? '');
}

/** Whether a multipart field is a `_method` to those readers, or to Django's, which strips its name (a middleware may read it). */
export const isMultipartMethodOverrideName = (key: string): boolean => isMethodOverrideName(key) || isStrippedOverride(asciiStripped(key));

// toLowerCase never shortens a name.
const isStrippedOverride = (name: string): boolean => name.length <= LONGEST_OVERRIDE && OVERRIDE_PARAMETERS.has(name.toLowerCase());

/**
 * @param separators also read names alike but for `_` and `-` (body fields: pydantic's populate_by_name).
 * @param stripped also read names with white space around them (multipart fields: Django).
 */
export function compileNameReadings(params: readonly ParameterObject[], { separators = false, stripped = false } = {}): NameReadings {
  const exact = new Set<string>();
  const deepNames: string[] = [];
  // Names a backend may read as a declared one, by their reading: also a deepObject or exploded
  // object parameter's own name, which it is never sent as (qs reads `filter=x` as filter).
  const read = new Map<string, string>();
  const spelled = new Map<string, string>();
  // Declared names qs with allowDots reads as a path (`page.size`: page, size), case folded: a key
  // read as that path or under it (`page[size]`, `.page.size`) is refused, a sibling (`page[x]`) not.
  const paths: { path: string[]; declared: string }[] = [];
  // The names as qs reads them (case folded), and as readingOf does (PHP reads `tags[]` as `tags`).
  const dotsRead = new Map<string, string>();
  const readable = (name: string) => {
    const reading = readingOf(name);
    if (!read.has(reading)) read.set(reading, name);
    for (const spelling of [foldCase(name), reading]) if (!dotsRead.has(spelling)) dotsRead.set(spelling, name);
    if (separators && !spelled.has(separatorsRemoved(reading))) spelled.set(separatorsRemoved(reading), name);
    const dotted = qsDotsKey(name);
    const path = dotted === undefined ? [] : qsPath(dotted, Infinity);
    if (path.length > 1) paths.push({ path: path.map(foldCase), declared: name });
  };
  for (const p of params) {
    readable(p.name);
    const style = p.style ?? 'form';
    if (style === 'deepObject') deepNames.push(p.name);
    else if (style === 'form' && p.explode !== false && isObjectSchema(p.schema)) {
      // Its properties wherever its schema declares them (allOf, oneOf, anyOf: schema-types.ts).
      for (const property of objectPropertiesOf(p.schema).keys()) {
        exact.add(property);
        readable(property);
      }
    } else exact.add(p.name);
  }
  // The longest name a reading is compared with: a longer reading is none of them (reading-length.ts).
  const compared = [...read.keys(), ...spelled.keys(), ...dotsRead.keys(), ...paths.flatMap(({ path }) => path)];
  const longest = Math.max(0, ...compared.map((name) => name.length));
  const depth = Math.max(0, ...paths.map(({ path }) => path.length));
  const owns = (key: string) => exact.has(key) || deepNames.some((name) => deepObjectProperty(key, name) !== undefined);
  const reading = (key: string, declared: string, spelling: boolean): NameReading => {
    const caseOnly = key !== declared && foldCase(key) === foldCase(declared);
    return spelling && !caseOnly ? { declared, caseOnly, separators: true } : { declared, caseOnly };
  };
  /** The declared dotted name a key with a `.` or a bracket is read as, or under, by qs with allowDots. */
  const pathDeclared = (key: string): string | undefined => {
    // The deepest path's segments, read once (a shallower path's are their first ones); a segment
    // folds to half its length at least (dotsReadingWithin).
    const read = qsDotsPath(key, depth, 2 * longest);
    for (const { path, declared } of paths) {
      if (read.length < path.length) continue;
      if (path.every((segment, i) => typeof read[i] === 'string' && foldCase(read[i]) === segment)) return declared;
    }
    return undefined;
  };
  const dotsReading = (key: string): NameReading | undefined => {
    const reading = dotsReadingWithin(key, longest);
    let declared = reading === undefined || reading === null ? undefined : dotsRead.get(reading);
    // A declared dotted name's path (`page[size]` has no `.`), rarer.
    if (declared === undefined && paths.length > 0 && (reading !== undefined || key.includes('['))) declared = pathDeclared(key);
    return declared === undefined ? undefined : { declared, caseOnly: false, dots: true };
  };
  /**
   * readingOf and unclosedReadingOf, read in one pass that stops once too long to be any name
   * compared (undefined then; reading-length.ts), separator runs that long cut.
   */
  const phpReadings = (key: string): [string, string | undefined] | undefined => {
    const first = boundedReading(key, longest, separators);
    if (first === null || first === undefined) return undefined;
    const unclosed = boundedReading(key, longest, separators, true);
    return [foldCase(first), typeof unclosed === 'string' ? foldCase(unclosed) : undefined];
  };
  const readings: NameReadings = {
    owns,
    readAs(key) {
      const php = phpReadings(key);
      if (php !== undefined) {
        const declared = read.get(php[0]) ?? (php[1] === undefined ? undefined : read.get(php[1]));
        if (declared !== undefined) return reading(key, declared, false);
      }
      const dots = dotsReading(key);
      if (dots !== undefined) return dots;
      if (!separators || php === undefined) return undefined;
      const [first, unclosed] = php;
      const spelling =
        spelled.get(separatorsRemoved(first)) ?? (unclosed === undefined ? undefined : spelled.get(separatorsRemoved(unclosed)));
      return spelling === undefined ? undefined : reading(key, spelling, true);
    },
  };
  if (!stripped) return readings;
  // Django reads the stripped name as it is: only a declared name itself.
  const strippedReading = (key: string): NameReading | undefined => {
    const name = asciiStripped(key);
    return name !== key && owns(name) ? { declared: name, caseOnly: false, stripped: true } : undefined;
  };
  return { owns, readAs: (key) => readings.readAs(key) ?? strippedReading(key) };
}
