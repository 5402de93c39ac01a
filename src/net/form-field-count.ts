/**
 * `limits.max_form_fields`: a form (or untyped) body read for the stages holds at most this many
 * fields, counted in its bytes before any stage reads it. Every stage that reads a form walks each
 * field (validation, the waf, the `_method` check): 5 M fields (`a&` × 10 MiB) held the event loop
 * 1.2–2.6 s even read once, where a form a browser sends has tens. body-parser and qs stop at 1 000
 * (`parameterLimit`), PHP at 1 000 (`max_input_vars`); the default here, 10 000, is the waf's own
 * `max_entries`, which already refused every form with more (one entry a value).
 */
import { WardenError } from '../errors.js';

/**
 * The fields URLSearchParams reads in `body` (form-pairs.ts): its non-empty `&`-separated pieces,
 * after one leading `?`; counting stops past `limit`. A byte loop: `&` is one byte in UTF-8.
 */
export function formFieldCount(body: Uint8Array, limit: number): number {
  let count = 0;
  let start = body[0] === 0x3f /* ? */ ? 1 : 0;
  for (let i = start; i < body.length; i++) {
    if (body[i] !== 0x26 /* & */) continue;
    if (i > start && ++count > limit) return count;
    start = i + 1;
  }
  return start < body.length ? count + 1 : count;
}

/** 413 when the body holds more fields than `limit`. */
export function formFieldsRefusal(body: Uint8Array, limit: number): WardenError | undefined {
  if (formFieldCount(body, limit) <= limit) return undefined;
  return new WardenError('ERR_BODY_TOO_LARGE', {
    rule: 'limits.max_form_fields',
    detail: `The form body may hold at most ${limit} fields.`,
  });
}
