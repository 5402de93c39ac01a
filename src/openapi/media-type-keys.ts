/**
 * The keys of an OpenAPI `content` map (a request body's or a response's) read as media types:
 * parameters dropped, lower case, as a message's Content-Type is looked up. A key written with
 * parameters (`application/json; charset=utf-8`, Spring's APPLICATION_JSON_UTF8_VALUE) matched
 * nothing: every request body got 415 (defect 173), and no response's schema was ever applied.
 */
import { mediaTypeOf } from '../net/media-type.js';
import { OpenApiError } from './document.js';
import { escapePointer } from './subschemas.js';

export interface ContentEntry<M> {
  /** The key as written, for pointers into the document. */
  readonly key: string;
  readonly media: M;
}

/**
 * `content` by media type. `pointer` is the content map's. Two keys of one media type are refused,
 * naming the second: a message is matched by its type alone, so only one of them could ever apply.
 */
export function contentByMediaType<M>(content: Readonly<Record<string, M>>, pointer: string): Map<string, ContentEntry<M>> {
  const byType = new Map<string, ContentEntry<M>>();
  for (const [key, media] of Object.entries(content)) {
    const mime = mediaTypeOf(key);
    const other = byType.get(mime);
    if (other !== undefined)
      throw new OpenApiError(
        `${pointer}/${escapePointer(key)}`,
        `is the media type of ${JSON.stringify(other.key)} too: a body is matched by its type alone, so give each type one entry`,
      );
    byType.set(mime, { key, media });
  }
  return byType;
}
