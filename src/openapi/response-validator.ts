/**
 * Response validation (report mode only): the backend's JSON responses against the operation's
 * declared responses — the status (exact, then `2XX`, then `default`), the media type, the schema.
 * Run after the response has been streamed to the client, on a bounded copy; a mismatch is a
 * finding about the backend, reported, never a reason to change what the client got. Answers with
 * no body to read are checked for their status and media type only: HEAD (not inspected at all:
 * handler.ts), 204, 304 (not checked), and bodies in a Content-Encoding. A body nested deeper than
 * MAX_JSON_DEPTH (net/json-body.ts) is not checked either: a skipped check, reason `too_deep`.
 */
import { refusedValue } from './refused-value.js';
import { PatternEngineBroken } from './re2-runtime.js';
import type { IncomingHttpHeaders } from 'node:http';
import type { ValidateFunction } from 'ajv';
import type { Operation } from './operations.js';
import { isJsonMediaType, mediaTypeOf } from '../net/media-type.js';
import { nestsTooDeep } from '../net/json-body.js';
import type { Violation } from './request-validator.js';
import { contentByMediaType } from './media-type-keys.js';
import { createSchemaCompiler, type SchemaCompiler } from './schema-compiler.js';
import { escapePointer } from './subschemas.js';

/**
 * A violation, or `too_deep`: the body nests deeper than MAX_JSON_DEPTH and goes unchecked (ajv
 * recurses with the data and would overflow the stack), counted as a skipped check.
 */
export interface ResponseCheck {
  /**
   * Whether `check` reads this response's body: a JSON media type with a schema, in no coding, not
   * a 204 or 304. Only such a body is copied (from the budget request bodies share): an event
   * stream's copy, never read, held its budget for as long as the stream ran, and a few dozen SSE
   * clients left every other caller's buffered body refused 503 (red team 29).
   */
  readonly readsBody: (status: number, headers: IncomingHttpHeaders) => boolean;
  readonly check: (status: number, headers: IncomingHttpHeaders, body: Buffer) => Violation | 'too_deep' | undefined;
}

const identity = (coding: string | undefined) => coding === undefined || coding.trim().toLowerCase() === 'identity' || coding === '';

/** `compiler`: the generation's, as for compileRequestValidator. */
export function compileResponseCheck(op: Operation, compiler: SchemaCompiler = createSchemaCompiler()): ResponseCheck {
  const byStatus = new Map<string, Map<string, ValidateFunction | null>>();
  for (const [status, response] of Object.entries(op.responses)) {
    const media = new Map<string, ValidateFunction | null>();
    // Keyed by the media type alone, as the response's Content-Type is looked up: a key written with
    // parameters (`application/json; charset=utf-8`) matched no response, and no schema was applied.
    const pointer = `${op.pointer}/responses/${escapePointer(status)}/content`;
    for (const [mime, { key: type, media: m }] of contentByMediaType(response.content ?? {}, pointer))
      media.set(
        mime,
        m.schema
          ? compiler.compile(
              op.dialect,
              m.schema,
              { coerce: false },
              {
                pointer: `${pointer}/${escapePointer(type)}/schema`,
              },
              op.components,
            )
          : null,
      );
    byStatus.set(status.toUpperCase(), media);
  }
  /** The status's and media type's violation, the schema the body is checked against, or undefined: nothing to check. */
  const resolve = (status: number, headers: IncomingHttpHeaders): Violation | ValidateFunction | undefined => {
    // Not modified: the answer to a conditional request stands for the cached one, with no body.
    if (status === 304) return undefined;
    const code = String(status);
    const media = byStatus.get(code) ?? byStatus.get(`${code[0]}XX`) ?? byStatus.get('DEFAULT');
    if (!media) return { pointer: '/status', message: `${code} is not a declared response` };
    if (media.size === 0) return undefined;
    const mime = mediaTypeOf(headers['content-type']);
    const validate = media.get(mime) ?? media.get(`${mime.split('/', 1)[0]}/*`) ?? media.get('*/*');
    if (validate === undefined) return { pointer: '/content-type', message: `${mime || '(none)'} is not declared for ${code}` };
    if (validate === null || !isJsonMediaType(mime)) return undefined;
    // No body to read: a 204, or a body in a Content-Encoding (the copy is as sent, not decoded).
    if (status === 204 || !identity(headers['content-encoding'])) return undefined;
    return validate;
  };
  return { readsBody: (status, headers) => typeof resolve(status, headers) === 'function', check };

  function check(status: number, headers: IncomingHttpHeaders, body: Buffer): Violation | 'too_deep' | undefined {
    const validate = resolve(status, headers);
    if (typeof validate !== 'function') return validate;
    const text = body.toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return { pointer: '/body', message: 'is not valid JSON' };
    }
    if (nestsTooDeep(text)) return 'too_deep';
    let valid: boolean;
    try {
      valid = validate(value);
    } catch (err) {
      // Deep enough to overflow the stack below MAX_JSON_DEPTH (a schema of many $refs a level).
      if (err instanceof RangeError) return 'too_deep';
      // Reported, never thrown: the response has been sent.
      if (err instanceof PatternEngineBroken) return { pointer: '/body', message: `was not checked: ${err.message}` };
      return refusedValue(err, value, '/body');
    }
    if (valid) return undefined;
    const e = validate.errors?.[0];
    return { pointer: `/body${e?.instancePath ?? ''}`, message: (e?.message ?? 'is invalid').slice(0, 200) };
  }
}
