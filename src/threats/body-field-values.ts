/**
 * The values a backend reads out of a form or JSON body, decoded as it decodes them — what it may
 * store as a file of its own, and what the malware scan therefore scans one by one besides the
 * body as sent: a form's values with `+` and `%XX` undone (Go's r.FormValue, PHP, Rack; `%uXXXX`
 * too, as System.Web reads it), a JSON document's string values with their escapes undone
 * (encoding/json, JSON.parse). Read as JSON whenever the waf reads the body as JSON: a JSON type,
 * an untyped body, and a form or text body that opens a JSON object or array (a Go handler decodes
 * the body whatever its Content-Type says).
 *
 * A form's values are decoded to bytes, as Go, PHP and Rack keep them (`%FF` is the byte 0xFF, not
 * U+FFFD): a binary sent percent-encoded is scanned as the file the backend would write. A JSON
 * string is scanned as the UTF-8 a backend writes of it.
 *
 * Each distinct value once, empty ones left out: the same bytes get the same verdict, and an empty
 * file holds nothing to find.
 */
import querystring from 'node:querystring';
import { jsonStringLiterals, parseJsonBody, type BufferedBody } from '../net/json-body.js';
import { FORM_MEDIA_TYPE, isJsonMediaType, opensJsonDocument } from '../net/media-type.js';
import { hasPercentU, percentUDecoded } from '../net/percent-u.js';

/** Node's own (documented, public) form decoder to bytes, which @types/node does not declare (as in percent-decoded.ts). */
const { unescapeBuffer } = querystring as unknown as { unescapeBuffer: (this: void, s: string, decodeSpaces: boolean) => Buffer };

/**
 * [where, value] pairs, lazily (the caller stops at its file limit). `request`: the body's JSON
 * parse is left on it for the stages after (jsonBodyOf), which read the same bytes.
 */
export function* bodyFieldValues(mime: string, body: Buffer, request: BufferedBody): Generator<[string, Buffer]> {
  const seen = new Set<string>();
  const fresh = (value: Buffer) => {
    if (value.length === 0) return false;
    const key = value.toString('latin1');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  };
  if (mime === FORM_MEDIA_TYPE || mime === '') {
    // Byte for byte: latin1 maps each byte to one character and unescapeBuffer back.
    for (const pair of body.toString('latin1').split('&')) {
      const equals = pair.indexOf('=');
      const name = unescapeBuffer(equals === -1 ? pair : pair.slice(0, equals), true).toString('utf8');
      const value = unescapeBuffer(equals === -1 ? '' : pair.slice(equals + 1), true);
      if (fresh(value)) yield [name, value];
      const read = value.toString('utf8');
      if (hasPercentU(read)) {
        const decoded = Buffer.from(percentUDecoded(read), 'utf8');
        if (fresh(decoded)) yield [name, decoded];
      }
    }
  }
  if (!(isJsonMediaType(mime) || mime === '' || opensJsonDocument(body))) return;
  let json = request.bodyJson;
  if (json === undefined) request.bodyJson = json = parseJsonBody(body) ?? false;
  const utf8 = (s: string) => Buffer.from(s, 'utf8');
  if (json === false) {
    // Not interoperable JSON (a name twice, a BOM, bytes not UTF-8, data after the document):
    // every string literal unescaped, names and values alike, whichever a backend keeps.
    for (const literal of jsonStringLiterals(body.toString('utf8'))) {
      const value = utf8(literal);
      if (fresh(value)) yield ['json string', value];
    }
    return;
  }
  // Without recursion: documents may nest deep.
  const pending: [string, unknown][] = [['', json.value]];
  while (pending.length > 0) {
    const [pointer, value] = pending.pop() as [string, unknown];
    if (typeof value === 'string') {
      const bytes = utf8(value);
      if (fresh(bytes)) yield [pointer || '/', bytes];
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) pending.push([`${pointer}/${i}`, value[i]]);
    } else if (typeof value === 'object' && value !== null) {
      const entries = Object.entries(value);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [name, item] = entries[i] as [string, unknown];
        pending.push([`${pointer}/${name}`, item]);
      }
    }
  }
}
