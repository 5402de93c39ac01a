import { WardenError } from '../errors.js';
import { FORM_MEDIA_TYPE, isMediaRange, mediaTypeOf } from './media-type.js';

/**
 * `url-encoded` in the media type: Werkzeug's (and python-multipart's) legacy `application/x-url-encoded`.
 * They read the media type only: in a parameter (`profile="…/url-encoded"`, a boundary) it was a
 * false refusal (review1 F4).
 */
const URL_DASH_ENCODED = /url-encoded/i;
/** `urlencoded` anywhere: formidable 3 (querystring plugin) reads such a body as a form. */
const URLENCODED = /urlencoded/i;
/** The form type, wherever it is: contentTypeRefusal decides on those (and on media ranges: `*\/x-www-form-urlencoded`). */
const THE_FORM_TYPE = /application\/x-www-form-urlencoded/i;

/**
 * Why a Content-Type is refused as a form type other than `application/x-www-form-urlencoded`, the
 * one form type the stages here read as fields (waf, `_method` check, malware scan of values,
 * validation), or undefined. Backends read others as forms too:
 *
 * - Werkzeug 2.2 (Flask) maps `application/x-url-encoded` to its form parser (formparser.py
 *   `parse_functions`), any case, any parameters, and takes the media type up to a "," or white
 *   space; so does python-multipart's `create_form_parser`. A body so typed was unknown binary here
 *   and `request.form` to Flask: SQLi past the waf, `_method=DELETE` past `overrides: refuse`, and
 *   `%57ARDEN-…` past the scan of values (red team 29, F1);
 * - formidable 3, used directly (`form.parse(req)`), reads any Content-Type holding `urlencoded`
 *   (`/urlencoded/i` over the header) as a form: `application/x-urlencoded`, `text/plain; x=urlencoded`.
 *
 * A header holding `application/x-www-form-urlencoded` is left to contentTypeRefusal, which refuses
 * it anywhere but as the media type (Fastify, Mojolicious), and so is a media range (Falcon). Django, Starlette, aiohttp, busboy, body-parser,
 * Rack, PHP and Go read only that form type. At most three linear regex tests; mediaTypeOf's slice
 * of the header is cached for the stages after.
 */
export function formAliasRefusal(contentType: string | undefined): WardenError | undefined {
  if (contentType === undefined) return undefined;
  if (!URL_DASH_ENCODED.test(mediaTypeOf(contentType))) {
    if (!URLENCODED.test(contentType)) return undefined;
    if (THE_FORM_TYPE.test(contentType) || isMediaRange(mediaTypeOf(contentType))) return undefined;
  }
  return new WardenError('ERR_MEDIA_TYPE_UNSUPPORTED', {
    rule: 'content_type.form_alias',
    detail: `A form is read here only as ${FORM_MEDIA_TYPE}: Werkzeug reads application/x-url-encoded as one, formidable any type holding "urlencoded", and their fields would pass unread. Send forms as ${FORM_MEDIA_TYPE}.`,
  });
}
