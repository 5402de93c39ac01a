import { WardenError } from '../errors.js';
import { unreadableFileCharset } from './media-type.js';

/**
 * Why a request with a query string is refused for its Content-Type's charset, or undefined.
 * Django's WSGIRequest.GET decodes the query string in the charset the request's Content-Type
 * names (`HttpRequest._set_content_type_params`: any codec Python knows), on every method, with a
 * body or without: a GET typed `text/plain; charset=utf-7` with `?q=%2BADw-script%2BAD4-` was
 * `<script>` to `request.GET` while the waf and validation read the query as UTF-8 (red team 29,
 * F2). The charsets refused are those refused for JSON and form bodies (ASCII not its own bytes:
 * UTF-7, UTF-16/32, EBCDIC…), found the same ways; libmagic's `binary` and `unknown-8bit`, which
 * name no codec (Django then keeps UTF-8), pass, as on file parts. Without a query nothing is
 * decoded in it, so an upload typed `text/plain; charset=utf-16` passes as before; a bare "?" is
 * no query. No ordinary client names a charset on a request with a query and no text body.
 */
export function queryCharsetRefusal(contentType: string | undefined, search: string): WardenError | undefined {
  if (contentType === undefined || search.length <= 1) return undefined;
  const charset = unreadableFileCharset(contentType);
  if (charset === undefined) return undefined;
  return new WardenError('ERR_MEDIA_TYPE_UNSUPPORTED', {
    rule: 'content_type.query_charset',
    detail: `The query is read as UTF-8 here; a backend may decode it in the Content-Type's charset (Django's request.GET), and in ${charset.slice(0, 40) || 'an empty charset'} it could read other parameters. Send no charset, or an ASCII-compatible one, with a query.`,
  });
}
