/**
 * What in an `application/x-www-form-urlencoded` body backends split or decode otherwise than
 * URLSearchParams, which every stage here reads forms with — refused by each stage that reads a
 * form's fields (validation, the waf, a POST's `_method` check, the malware scan of its values):
 * - an unencoded `;`: python-multipart (Starlette's `request.form()`, so every FastAPI `Form()`)
 *   splits fields at it as at `&`, so `name=eve;role=admin` was one field here and `role=admin`
 *   past the enum there (docs/adversarial.md 423); browsers, requests and httpx send it as `%3B`;
 * - a `%` that starts no escape, which Jetty reads as one (malformed-escape.ts, row 411).
 */
import { WardenError } from '../errors.js';
import { hasMalformedEscape } from './malformed-escape.js';

/** Read in the bytes, without a copy: up to four stages ask about one body (memchr speed, ~50 µs a MiB). */
export function formBodyProblem(body: Buffer): WardenError | undefined {
  if (body.includes(0x3b /* ; */))
    return new WardenError('ERR_REQUEST_INVALID', {
      rule: 'form.semicolon',
      detail: 'A ";" in the form body separates fields for some backends and not for others; send it as %3B.',
    });
  if (hasMalformedEscape(body))
    return new WardenError('ERR_REQUEST_INVALID', {
      rule: 'form.bad_escape',
      detail: 'A "%" in the form body is not followed by two hex digits; send a "%" as %25.',
    });
  return undefined;
}
