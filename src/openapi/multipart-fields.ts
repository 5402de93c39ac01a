/**
 * A multipart/form-data body as the object its schema is checked against, each part read as
 * backends read it:
 * - a part without a file name is a text field (Werkzeug, PHP, Spring, Go), whatever its type —
 *   busboy takes an application/octet-stream one for a file, and validation used to check a
 *   placeholder in its place: `caption` with `maxLength: 10` took `<script>…` so;
 * - a file on a property whose schema is no binary string is read as its text
 *   (cgi.FieldStorage.getfirst gives a file's content): only a binary property's bytes are left to
 *   the malware scan, a placeholder standing for them;
 * - a JSON part (its Content-Type, or `encoding.<name>.contentType`) for an object or array
 *   property is parsed as a JSON body is (Spring's @RequestPart binds it so): before, a text field
 *   was always a string, and such a request was refused (`must be object`).
 */
import type { Readable } from 'node:stream';
import { createMultipartStream } from '../threats/multipart-stream.js';
import { isJsonMediaType, mediaTypeOf } from '../net/media-type.js';
import { parseJsonBody } from '../net/json-body.js';
import type { RequestBodyObject } from './operations.js';
import { objectPropertiesOf, sameValue, shapeOf } from './schema-types.js';
import { escapePointer, isSchema } from './subschemas.js';
import { tooDeep, type Violation } from './violation.js';

type MediaTypeObject = NonNullable<RequestBodyObject['content']>[string];

/** How one multipart media type's properties are read, worked out at load. */
export interface MultipartReading {
  /** The properties the schema declares (a file on another name stays a file). */
  readonly declared: ReadonlySet<string>;
  /** Declared properties a file's bytes are left to the malware scan on: binary strings, or any value (`{}`). */
  readonly fileProperties: ReadonlySet<string>;
  /** Object and array properties: a JSON part for one is parsed. */
  readonly structured: ReadonlySet<string>;
  /** Properties whose `encoding.<name>.contentType` is JSON: their parts are JSON whatever their own type. */
  readonly jsonEncoded: ReadonlySet<string>;
}

/** Keywords that do not constrain a value: a schema of these alone is `{}`. */
const ANNOTATIONS = new Set([
  'description',
  'title',
  'example',
  'examples',
  'default',
  'deprecated',
  'readOnly',
  'writeOnly',
  '$comment',
  'externalDocs',
  'xml',
]);

const saysNothing = (s: Record<string, unknown>) => Object.keys(s).every((k) => ANNOTATIONS.has(k) || k.startsWith('x-'));

/** A string of bytes: `format: binary` or `byte` (3.0), `contentMediaType` or `contentEncoding` (3.1). */
const isBinaryString = (s: Record<string, unknown>) =>
  s.format === 'binary' || s.format === 'byte' || s.contentMediaType !== undefined || s.contentEncoding !== undefined;

/** Whether a file's bytes are what the property's schemas describe (directly, or as an array's items). */
function takesFiles(schemas: readonly Record<string, unknown>[]): boolean {
  if (schemas.every(saysNothing)) return true;
  return schemas
    .flatMap((s) => sameValue(s))
    .some(
      (s) =>
        isBinaryString(s) || s.items === true || (isSchema(s.items) && (saysNothing(s.items) || sameValue(s.items).some(isBinaryString))),
    );
}

export function compileMultipartReading(media: MediaTypeObject): MultipartReading {
  const fileProperties = new Set<string>();
  const structured = new Set<string>();
  const properties = objectPropertiesOf(media.schema);
  for (const [name, schemas] of properties) {
    if (takesFiles(schemas)) fileProperties.add(name);
    if (schemas.some((s) => shapeOf(s) === 'object' || shapeOf(s) === 'array')) structured.add(name);
  }
  const jsonEncoded = new Set<string>();
  for (const [name, enc] of Object.entries(media.encoding ?? {})) {
    const types = typeof enc?.contentType === 'string' ? enc.contentType.split(',') : [];
    if (types.length > 0 && types.every((t) => isJsonMediaType(mediaTypeOf(t.trim())))) jsonEncoded.add(name);
  }
  return { declared: new Set(properties.keys()), fileProperties, structured, jsonEncoded };
}

export type MultipartFields = { readonly fields: Record<string, unknown> } | { readonly violation: Violation };

/**
 * `fields`: an object without a prototype (clientKeyed) to fill. Rejects when the body is not
 * multipart this reader reads. `maxParts`: more are refused (busboy used to drop them silently).
 */
export function multipartFields(
  contentType: string,
  body: Buffer,
  reading: MultipartReading,
  fields: Record<string, unknown>,
  maxParts: number,
): Promise<MultipartFields> {
  /** Parts in their order (a file's content arrives after the fields that follow it are read). */
  const parts: [name: string, value: string | Promise<Buffer>, mimeType: string][] = [];
  const bytesOf = (content: Readable) => {
    const chunks: Buffer[] = [];
    content.on('data', (chunk: Buffer) => chunks.push(chunk));
    return new Promise<Buffer>((resolve) => content.on('end', () => resolve(Buffer.concat(chunks))));
  };
  // The shared reader: a part it cannot read (too many, or in base64) is refused here as by the
  // waf and the scan, not skipped; no field is cut short (the whole body is at hand).
  const stream = createMultipartStream(
    contentType,
    { maxParts, maxFieldBytes: body.length },
    {
      onField: (name, value, mimeType) => parts.push([name, value, mimeType]),
      // A structured field's bytes as sent (right after its onField): busboy's text has bad UTF-8
      // replaced, which the strict JSON reader would then pass, while Jackson reads `C0 BC` as `<`.
      // Asked for only when some property is structured: the framing check then keeps the bytes.
      onFieldFile:
        reading.structured.size === 0
          ? undefined
          : (name, content) => {
              const last = parts[parts.length - 1];
              if (last !== undefined && last[0] === name && reading.structured.has(name)) last[1] = bytesOf(content);
              else content.resume();
            },
      onFile(name, filename, content, mimeType, named) {
        if (named && (reading.fileProperties.has(name) || !reading.declared.has(name))) {
          content.resume();
          parts.push([name, `(file ${filename})`, '']);
          return;
        }
        // The body is in memory already: a part's content is no larger.
        parts.push([name, bytesOf(content), mimeType]);
      },
    },
  );
  if (!stream) return Promise.reject(new Error('no boundary'));
  stream.write(body);
  return stream.end().then(async (problem) => {
    if (problem !== undefined) throw new Error(problem);
    // Every copy of a name, then one value or (given again) an array of them: values may be arrays.
    const copies = new Map<string, unknown[]>();
    for (const [name, pending, mimeType] of parts) {
      const value = typeof pending === 'string' ? pending : await pending;
      let read: unknown;
      if (reading.structured.has(name) && (reading.jsonEncoded.has(name) || isJsonMediaType(mediaTypeOf(mimeType)))) {
        // Bytes as sent (a file, or a field's from onFieldFile); an empty field has none to give.
        const json = parseJsonBody(typeof value === 'string' ? Buffer.from(value, 'utf8') : value);
        if (json === undefined) return { violation: { pointer: `/body/${escapePointer(name)}`, message: 'is not valid JSON' } };
        if (json.tooDeep) return { violation: tooDeep(`/body/${escapePointer(name)}`) };
        read = json.value;
      } else read = typeof value === 'string' ? value : value.toString('utf8');
      const list = copies.get(name);
      if (list) list.push(read);
      else copies.set(name, [read]);
    }
    for (const [name, list] of copies) fields[name] = list.length === 1 ? list[0] : list;
    return { fields };
  });
}
