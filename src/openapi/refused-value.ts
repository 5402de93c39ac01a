/**
 * A value's validation that a pattern could not finish: the caller's string too long for the
 * linear-time engine (400 at its pointer), or the engine broken (503); or that overflowed the stack
 * (a value nested too deep: 400). ajv calls a pattern with
 * the string alone, so the pointer is found here, by walking the value for it (only on refusal).
 */
import type { ValidateFunction } from 'ajv';
import { WardenError } from '../errors.js';
import { PatternInputRefused } from './pattern-engine.js';
import { PatternEngineBroken } from './re2-runtime.js';
import { escapePointer } from './subschemas.js';
import { firstViolation, tooDeep, type Violation } from './violation.js';

/** The pointer of `wanted` in `value`, a member's value or its name; undefined when it is not there. */
function pointerOf(value: unknown, wanted: string, at: string): string | undefined {
  if (value === wanted) return at;
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, member] of Object.entries(value)) {
    if (key === wanted) return `${at}/${escapePointer(key)}`;
    const found = pointerOf(member, wanted, `${at}/${escapePointer(key)}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The violation for `err` when a pattern threw it, under `prefix`; throws anything else (PatternEngineBroken as a 503). */
export function refusedValue(err: unknown, value: unknown, prefix: string): Violation {
  // A value nested past what the stack holds (below MAX_JSON_DEPTH too, with a schema of many
  // $refs a level) is the document's depth, never an internal error.
  if (err instanceof RangeError) return tooDeep(prefix);
  if (err instanceof PatternInputRefused) return { pointer: pointerOf(value, err.value, prefix) ?? (prefix || '/'), message: err.why };
  if (err instanceof PatternEngineBroken)
    throw new WardenError('ERR_PATTERN_ENGINE_UNAVAILABLE', {
      detail: 'The request could not be validated: the pattern engine is unavailable',
      cause: err,
    });
  throw err;
}

/** `validate(value)` as a violation under `prefix`, or undefined when the value is valid. */
export function violationOf(validate: ValidateFunction, value: unknown, prefix: string): Violation | undefined {
  try {
    return validate(value) ? undefined : firstViolation(validate.errors, prefix);
  } catch (err) {
    return refusedValue(err, value, prefix);
  }
}
