/**
 * `limits.max_form_fields`: a form body read for the stages holds at most this many fields (an
 * untyped one, which may be any bytes, one in 64 of its bytes if that is more), counted in its
 * bytes before any stage reads it. Every stage that reads a form walks each
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

/**
 * One field in this many bytes: the most an untyped body may hold past `limit`. Random and
 * compressed bytes hold one `&` in 256, so a 3 MiB upload sent without a Content-Type (Python
 * `requests.post(url, data=bytes)`, an untyped Blob, `curl -T`) had 12 000 "fields" (review rt27,
 * F1); a crafted untyped form at this density (164 k fields in 10 MiB) costs the stages ~0.1–0.3 s
 * (docs/proxy.md), where 5 M fields cost seconds.
 */
export const UNTYPED_BYTES_PER_FIELD = 64;

/**
 * 413 when the body holds more fields than `limit`; an untyped body (`untyped`), which may be any
 * bytes, more than `limit` or one in UNTYPED_BYTES_PER_FIELD of its bytes, whichever is more.
 */
export function formFieldsRefusal(body: Uint8Array, limit: number, untyped = false): WardenError | undefined {
  const bound = untyped ? Math.max(limit, Math.floor(body.length / UNTYPED_BYTES_PER_FIELD)) : limit;
  if (formFieldCount(body, bound) <= bound) return undefined;
  return new WardenError('ERR_BODY_TOO_LARGE', {
    rule: 'limits.max_form_fields',
    detail: untyped
      ? `A body without a Content-Type, read as a form, may hold at most ${bound} fields (max_form_fields, or one in ${UNTYPED_BYTES_PER_FIELD} bytes).`
      : `The form body may hold at most ${limit} fields.`,
  });
}
