/**
 * A body under a declared type that is no JSON, form or multipart (`text/plain`,
 * `application/octet-stream`) that is a JSON document all the same: Symfony's `Request::toArray()`
 * and Laravel's `$request->json()` decode the body whatever its Content-Type, so on an operation
 * that also takes JSON, `{"role":"admin"}` sent as text/plain reached the app past the JSON schema
 * (red team 27f, F2). Only a body that parses completely is one: a note that merely opens like JSON
 * (`[1] first point`, `{not json`) is none to those readers either.
 */
import { jsonBodyOf, parseJsonBody, type BufferedBody, type ParsedJson } from '../net/json-body.js';
import { opensJsonValue } from '../net/json-opening.js';
import type { Violation } from './violation.js';

/** Invalid bytes replaced, a byte order mark dropped: what a lenient decoder (Go's, PHP's after iconv) still reads. */
const lenient = new TextDecoder('utf-8');

/**
 * The body as a JSON document (an object or an array): parsed as a JSON body is (a byte order mark
 * dropped first: Express's and Python's readers drop it); `not-interoperable` for one that parses
 * only leniently (a member named twice, which PHP reads as the last; a number beyond a double;
 * bytes that are not UTF-8), which the schema cannot be checked on; undefined for any other body.
 * The first bytes decide first (json-opening.ts), so a binary or a note is not parsed at all.
 */
export function jsonInOtherType(request: BufferedBody): ParsedJson | 'not-interoperable' | undefined {
  const body = request.body;
  if (body === undefined || !opensJsonValue(body)) return undefined;
  const bom = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf;
  const parsed = bom ? parseJsonBody(body.subarray(3)) : jsonBodyOf(request);
  if (parsed !== undefined) return parsed;
  try {
    JSON.parse(lenient.decode(body));
    return 'not-interoperable';
  } catch {
    return undefined;
  }
}

/**
 * JSON text sequences (NDJSON, JSON Lines, RFC 7464): a body of one line parses as one document, yet
 * the app reads records, not a document the operation's JSON schema describes (review rt27 F3).
 */
export function isJsonSequenceType(mime: string): boolean {
  return mime.endsWith('ndjson') || mime.endsWith('jsonl') || mime.endsWith('jsonlines') || mime.endsWith('json-seq');
}

export const JSON_AS_OTHER_RULE = 'body.json_as_other';

const READING =
  "the body is a JSON document, which Symfony's toArray() and Laravel's json() decode whatever its Content-Type: checked for values the operation's JSON schema forbids";

/** A violation of the JSON schema by such a body, saying why a body of another type was checked (rule body.json_as_other). */
export const jsonAsOther = (v: Violation): Violation => ({
  pointer: v.pointer,
  message: `${v.message} (${READING})`,
  rule: JSON_AS_OTHER_RULE,
});

export const UNINTEROPERABLE_JSON: Violation = Object.freeze({
  pointer: '/body',
  message: `is not interoperable JSON (a member named twice, a number beyond a double, or bytes that are not UTF-8) (${READING})`,
  rule: JSON_AS_OTHER_RULE,
});
