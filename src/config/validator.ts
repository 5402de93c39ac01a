/**
 * ajv set up for configuration files: defaults applied, scalar coercion (values substituted from
 * ${ENV} arrive as strings), every error reported at once, and the project's annotation keywords:
 *  - `x-expect`   phrase for error messages ("must be <x-expect>, got …")
 *  - `x-duration` / `x-size`  turn "10s" / "16KiB" into milliseconds / bytes in place (a number
 *    given instead of `true` bounds a duration from above, a size from below)
 *  - `x-path`     resolves a file path relative to the configuration file's folder
 *  - `x-path-or-url` the same, leaving http(s) URLs as they are
 *  - `x-cidr`     an IP address or CIDR
 *  - `x-secret`   a secret: an error about it, or about a value holding it, never shows the value
 */
import { resolve } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { AJV_CODE_OPTIONS } from './ajv-codegen.js';
import { parseDuration, parseSize } from './units.js';
import { parseCidr } from '../net/ip-set.js';

export interface ValidationContext {
  /** Folder that relative paths in the file are resolved against. */
  baseDir: string;
}

export type ContextValidator = ValidateFunction & ((this: ValidationContext, data: unknown) => boolean);

/** Where the value sits in its parent, so a keyword can replace it (ajv's DataValidationCxt). */
interface DataCxt {
  parentData?: unknown;
  parentDataProperty?: string | number;
}

/** `schema` is the keyword's value in the schema (`true`, or a bound such as a duration's maximum). */
type Convert = (value: unknown, ctx: ValidationContext, schema: boolean | number) => unknown;

function convertingKeyword(ajv: Ajv, keyword: string, convert: Convert): void {
  ajv.addKeyword({
    keyword,
    schemaType: ['boolean', 'number'],
    modifying: true,
    errors: true,
    validate: function check(
      this: ValidationContext,
      schema: boolean | number,
      data: unknown,
      parentSchema?: object,
      cxt?: DataCxt,
    ): boolean {
      const converted = convert(data, this, schema);
      if (converted === undefined) {
        // parentSchema and data let the loader phrase the error with the field's `x-expect`.
        (check as { errors?: Partial<ErrorObject>[] }).errors = [{ keyword, message: 'invalid value', params: {}, parentSchema, data }];
        return false;
      }
      if (cxt?.parentData !== undefined && cxt.parentDataProperty !== undefined) {
        (cxt.parentData as Record<string | number, unknown>)[cxt.parentDataProperty] = converted;
      }
      return true;
    },
  });
}

export function createConfigAjv(): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    useDefaults: true,
    coerceTypes: true,
    verbose: true,
    passContext: true,
    strict: true,
    code: AJV_CODE_OPTIONS,
  });
  ajv.addKeyword({ keyword: 'x-expect', schemaType: 'string' });
  ajv.addKeyword({ keyword: 'x-secret', schemaType: 'boolean' });
  // `'x-duration': <ms>` also bounds it: the sidecar's durations become timers (below MAX_TIMER_MS).
  convertingKeyword(ajv, 'x-duration', (v, _ctx, max) => {
    const ms = parseDuration(v);
    return ms !== undefined && (typeof max !== 'number' || ms <= max) ? ms : undefined;
  });
  // `'x-size': <bytes>` also bounds it from below.
  convertingKeyword(ajv, 'x-size', (v, _ctx, min) => {
    const bytes = parseSize(v);
    return bytes !== undefined && (typeof min !== 'number' || bytes >= min) ? bytes : undefined;
  });
  convertingKeyword(ajv, 'x-path', (v, ctx) => (typeof v === 'string' ? resolve(ctx.baseDir, v) : undefined));
  convertingKeyword(ajv, 'x-path-or-url', (v, ctx) =>
    typeof v !== 'string' ? undefined : /^https?:\/\//.test(v) ? v : resolve(ctx.baseDir, v),
  );
  convertingKeyword(ajv, 'x-cidr', (v) => (typeof v === 'string' && parseCidr(v) ? v.trim() : undefined));
  return ajv;
}
