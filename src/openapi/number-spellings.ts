/**
 * How a number may be spelled in a parameter or a form field. These arrive as strings and ajv
 * (`coerceTypes`) turns a string into a number wherever a schema's `type` says integer or number
 * and not string, when `s == +s`: that is, JavaScript's own number grammar — `1000000e-4`,
 * ` 1000e-1 `, `0b1`, `0x10`, `+1`, `01`, a blank string (0), `Infinity`. Validation then checked
 * the number JavaScript reads while the backend, which gets the string as sent, read another:
 * `parseInt('1000000e-4')` is 1 000 000, past `maximum: 100`; `parseInt('0b1')` is 0, below
 * `minimum: 1` (docs/adversarial.md defect 89).
 *
 * So where a string is read as a number, it must be spelled as every reader reads it alike
 * (parseInt, parseFloat, Number, Java's `Integer.parseInt`, Python's `int()`, Go's `strconv.Atoi`,
 * Ruby's `to_i`): an integer `-?(0|[1-9][0-9]*)`, a number that with an optional `.` and digits.
 * No sign `+`, no leading zeros (C's `strtol` and PHP's `intval(s, 0)` read `010` as 8), no exponent,
 * no prefix, no whitespace. Other strings ajv would read as a number are refused; strings that are
 * no number at all are left to ajv (its own "must be integer", or another type the schema allows).
 *
 * A spelling with more digits than a double holds is read by validation as the nearest double,
 * and by a backend with 64-bit integers or decimals as written. The two disagree on a bound only
 * when the double is the bound itself (`maximum: 9007199254740992` and `…993`), or on `multipleOf`,
 * `enum` and `const`: such a spelling is refused there. Long ids (an int64 `minimum: 1`) pass;
 * `format: int64` is checked on the digits, exactly.
 *
 * The positions that read numbers are worked out once from the schema (the schema, its
 * allOf/anyOf/oneOf/not/if/then/else, the items of an array, the properties of an object): on the
 * request path a check is a regular expression per numeric value.
 */
import { isSchema, type Schema } from './subschemas.js';
import type { Violation } from './violation.js';

type Kind = 'integer' | 'number';

/** What reads a string at one position as a number. */
interface Leaf {
  readonly kind: Kind;
  /** minimum, maximum and the exclusive ones: a double that rounds onto one of them disagrees with the digits. */
  readonly bounds: readonly number[];
  /** multipleOf, enum or const: compared exactly, so a rounded double may pass where the digits do not. */
  readonly exactValues: boolean;
  readonly int64: boolean;
}

/** A string at a position, or an item of an array there (ajv's `coerceTypes: 'array'` wraps a string and unwraps a one-item array). */
interface Slot {
  readonly value: Leaf | undefined;
  readonly item: Leaf | undefined;
}

export interface NumberSpellings {
  /** The first number spelled otherwise than plainly, in a decoded parameter or form (`pointer` names it). */
  check(value: unknown, pointer: string): Violation | undefined;
}

/** The schemas that apply to the same value as `roots`: them and their allOf, anyOf, oneOf, not, if, then, else, at any depth. */
function sameValue(roots: readonly unknown[]): Schema[] {
  const out: Schema[] = [];
  const seen = new Set<Schema>();
  const stack = [...roots];
  while (stack.length > 0) {
    const s = stack.pop();
    if (!isSchema(s) || seen.has(s)) continue;
    seen.add(s);
    out.push(s);
    for (const k of ['allOf', 'anyOf', 'oneOf']) if (Array.isArray(s[k])) stack.push(...(s[k] as unknown[]));
    for (const k of ['not', 'if', 'then', 'else']) stack.push(s[k]);
  }
  return out;
}

function leafOf(schemas: readonly Schema[]): Leaf | undefined {
  let kind: Kind | undefined;
  for (const s of schemas) {
    const types = Array.isArray(s.type) ? (s.type as unknown[]) : [s.type];
    if (types.includes('string')) continue; // ajv leaves a string as it is where a string is allowed
    if (types.includes('number')) kind = 'number';
    else if (types.includes('integer')) kind ??= 'integer';
  }
  if (kind === undefined) return undefined;
  const bounds: number[] = [];
  let exactValues = false;
  let int64 = false;
  for (const s of schemas) {
    for (const k of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']) if (typeof s[k] === 'number') bounds.push(s[k]);
    if (s.multipleOf !== undefined || s.enum !== undefined || s.const !== undefined) exactValues = true;
    if (s.format === 'int64') int64 = true;
  }
  return { kind, bounds, exactValues, int64 };
}

function slotOf(roots: readonly unknown[]): Slot | undefined {
  const schemas = sameValue(roots);
  const items = schemas.flatMap((s) => [
    ...(Array.isArray(s.items) ? (s.items as unknown[]) : [s.items]),
    ...(Array.isArray(s.prefixItems) ? (s.prefixItems as unknown[]) : []),
    s.additionalItems,
    s.contains,
    s.unevaluatedItems,
  ]);
  const value = leafOf(schemas);
  const item = leafOf(sameValue(items));
  return value || item ? { value, item } : undefined;
}

const isDigit = (c: number) => c >= 48 && c <= 57;

/**
 * `-?(0|[1-9][0-9]*)`, and with `fraction` an optional `.` and digits after it. A loop: about a
 * third of the time the regular expression takes on a short string.
 */
function plain(s: string, fraction: boolean): boolean {
  const n = s.length;
  let i = s.charCodeAt(0) === 45 /* - */ ? 1 : 0;
  if (i >= n) return false;
  if (s.charCodeAt(i) === 48 /* 0 */) i++;
  else {
    const start = i;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
    if (i === start) return false;
  }
  if (i === n) return true;
  if (!fraction || s.charCodeAt(i) !== 46 /* . */ || i + 1 === n) return false;
  for (i++; i < n; i++) if (!isDigit(s.charCodeAt(i))) return false;
  return true;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Whether `s` is the shortest spelling of the double it reads as (trailing zeros of a fraction aside). */
function spelledAsRead(s: string, d: number): boolean {
  return (s.includes('.') ? s.replace(/\.?0+$/, '') : s) === String(d);
}

/** A plain spelling with more digits than a double holds, where rounding changes a verdict. */
function precision(s: string, leaf: Leaf, pointer: string): Violation | undefined {
  if (leaf.int64 && !s.includes('.')) {
    const exact = BigInt(s);
    if (exact < INT64_MIN || exact > INT64_MAX) return { pointer, message: 'must match format "int64"' };
  }
  const d = Number(s);
  if (spelledAsRead(s, d) || !(leaf.exactValues || leaf.bounds.includes(d))) return undefined;
  return { pointer, message: `has more digits than a double holds: validation reads ${d}, a backend reading every digit another number` };
}

function checkString(s: string, leaf: Leaf | undefined, pointer: string): Violation | undefined {
  if (!leaf) return undefined;
  if (plain(s, leaf.kind === 'number')) return s.length > 15 ? precision(s, leaf, pointer) : undefined;
  // What ajv does not read as a number (`s && s == +s`) it judges by its own rules.
  if (s === '' || Number.isNaN(+s)) return undefined;
  return { pointer, message: `is not a plain decimal ${leaf.kind}${leaf.kind === 'integer' ? ' (digits, "-" at most)' : ''}` };
}

function checkSlot(v: unknown, slot: Slot, pointer: string): Violation | undefined {
  if (typeof v === 'string') return checkString(v, slot.value, pointer) ?? checkString(v, slot.item, pointer);
  if (!Array.isArray(v)) return undefined;
  for (let i = 0; i < v.length; i++) {
    const e: unknown = v[i];
    if (typeof e !== 'string') continue;
    const violation = checkString(e, slot.item, `${pointer}/${i}`) ?? (v.length === 1 ? checkString(e, slot.value, pointer) : undefined);
    if (violation) return violation;
  }
  return undefined;
}

/**
 * The plan for one parameter's value (or a form body's fields): undefined when nothing in its
 * schema reads a string as a number, so that such a parameter costs nothing.
 */
export function compileNumberSpellings(schema: Record<string, unknown> | undefined): NumberSpellings | undefined {
  if (!schema) return undefined;
  const top = slotOf([schema]);
  const schemas = sameValue([schema]);
  const names = new Set(schemas.flatMap((s) => (isSchema(s.properties) ? Object.keys(s.properties) : [])));
  const patterned = schemas.flatMap((s) => (isSchema(s.patternProperties) ? Object.values(s.patternProperties) : []));
  // A property is read by the schemas declaring it, and by the additionalProperties of those that do not.
  const otherOf = (name: string | undefined) =>
    schemas.flatMap((s) =>
      name !== undefined && isSchema(s.properties) && Object.hasOwn(s.properties, name)
        ? []
        : [s.additionalProperties, s.unevaluatedProperties],
    );
  // Declared names map to their slot, undefined when nothing reads them as a number.
  const properties = new Map<string, Slot | undefined>();
  for (const name of names)
    properties.set(
      name,
      slotOf([...schemas.map((s) => (isSchema(s.properties) ? s.properties[name] : undefined)), ...otherOf(name), ...patterned]),
    );
  const other = slotOf([...otherOf(undefined), ...patterned]);
  if (!top && ![...properties.values()].some(Boolean) && !other) return undefined;
  return {
    check(value, pointer) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return top && checkSlot(value, top, pointer);
      for (const [k, v] of Object.entries(value)) {
        const slot = properties.has(k) ? properties.get(k) : other;
        const violation = slot && checkSlot(v, slot, `${pointer}/${k}`);
        if (violation) return violation;
      }
      return undefined;
    },
  };
}
