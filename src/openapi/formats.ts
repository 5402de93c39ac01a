/**
 * The formats Warden checks beside ajv-formats': the OpenAPI 3.0 list and the integer and decimal
 * formats of the OpenAPI Format Registry (https://spec.openapis.org/registry/format/). With
 * `strict: false`, ajv passes a value whose format it does not know, so before these were added
 * `format: uint8` let 300 and -1 through and `int16` 70 000. Any other format is an annotation, as
 * JSON Schema says by default; the document's loading warns about each one (schema-rewrites.ts).
 */
import { fullFormats } from 'ajv-formats/dist/formats.js';
import { urlFormat } from './url-format.js';

export type FormatDefinition = { type: 'number' | 'string'; validate: (v: never) => boolean };

const intRange = (min: number, max: number): FormatDefinition => ({
  type: 'number',
  validate: (n: number) => Number.isInteger(n) && n >= min && n <= max,
});

/** A fixed-point decimal written out: digits, an optional fraction, an optional leading minus (no exponent, no `+`, no spaces). */
const DECIMAL = /^-?[0-9]+(?:\.[0-9]+)?$/;

export const OPENAPI_FORMATS: Record<string, FormatDefinition> = {
  int8: intRange(-128, 127),
  int16: intRange(-32768, 32767),
  int32: intRange(-2147483648, 2147483647),
  // ±2^63 as a double tells them: 2^63 - 1 reads as 2^63 (so does anything up to 1 024 past it);
  // `1e30` is an integer to JavaScript but overflows every backend's int64.
  int64: intRange(-(2 ** 63), 2 ** 63),
  uint8: intRange(0, 255),
  uint16: intRange(0, 65535),
  uint32: intRange(0, 4294967295),
  // 2^64 - 1 reads as 2^64, as int64's bound does.
  uint64: intRange(0, 2 ** 64),
  // An integer a double holds exactly.
  'double-int': intRange(-(2 ** 53 - 1), 2 ** 53 - 1),
  float: { type: 'number', validate: () => true },
  double: { type: 'number', validate: () => true },
  // On a string, the registry's "fixed point decimal number"; a JSON number passes (it is one).
  decimal: { type: 'string', validate: (s: string) => DECIMAL.test(s) },
  byte: { type: 'string', validate: (s: string) => /^[A-Za-z0-9+/]*={0,2}$/.test(s) },
  binary: { type: 'string', validate: () => true },
  password: { type: 'string', validate: () => true },
  // ajv-formats' own is quadratic (url-format.ts); its other formats are linear.
  url: urlFormat,
};

const KNOWN = new Set([...Object.keys(fullFormats), ...Object.keys(OPENAPI_FORMATS)]);

/** Whether `format` is one Warden checks (ajv-formats' or the ones above). */
export const isKnownFormat = (format: string): boolean => KNOWN.has(format);
