/**
 * The `style` and `explode` of a form body's fields (OpenAPI 3 Encoding Object, for an
 * application/x-www-form-urlencoded request body). Warden reads each field as sent — style `form`,
 * exploded (`tags=a&tags=b`), the default — and honours `style: deepObject`:
 * `address[city]=Paris&address[zip]=75001` is the object `address`, as qs.stringify sends it (axios
 * with qs, superagent, jQuery's $.param) and qs, PHP and Rails read it, decoded as a deepObject query
 * parameter is (request-validator.ts foldDeepObjects), one level deep as OpenAPI defines it.
 * Other styles (`form` with `explode: false`, spaceDelimited, pipeDelimited) are not honoured:
 * a warning at load; such a body is refused where the joined value does not pass the schema.
 */
import { FORM_MEDIA_TYPE, mediaTypeOf } from '../net/media-type.js';
import { OpenApiError } from './document-error.js';
import { compileNumberSpellings, type NumberSpellings } from './number-spellings.js';
import { arrayPropertiesOf, objectPropertiesOf, shapeOf } from './schema-types.js';
import { escapePointer, isSchema } from './subschemas.js';

/** What Warden reads of an Encoding Object: a multipart part's `contentType`, a form field's `style` and `explode`. */
export interface EncodingObject {
  contentType?: unknown;
  style?: unknown;
  explode?: unknown;
}

/** A form property declared `style: deepObject`. */
export interface DeepObjectField {
  /** Its object's properties whose schema is an array: copies of them are items. */
  readonly listed: ReadonlySet<string>;
  /** `/body/address`: where its violations point. */
  readonly pointer: string;
  /** Where its schema reads a string as a number, which spellings it takes (as a deepObject parameter's). */
  readonly numbers: NumberSpellings | undefined;
}

/**
 * The form body's deepObject properties by name, or undefined when it has none. Throws
 * OpenApiError (naming the operation, the media type and the property) for one Warden cannot read
 * as an object: not a property of the schema, or a schema that does not say it is an object.
 */
export function compileDeepObjectFields(
  media: { schema?: Record<string, unknown>; encoding?: Record<string, EncodingObject> },
  pointer: string,
  type: string,
): ReadonlyMap<string, DeepObjectField> | undefined {
  let fields: Map<string, DeepObjectField> | undefined;
  const properties = objectPropertiesOf(media.schema);
  for (const [name, encoding] of Object.entries(media.encoding ?? {})) {
    if (!isSchema(encoding) || encoding.style !== 'deepObject') continue;
    const label = `requestBody ${type}: encoding "${name}"`;
    const schemas = properties.get(name);
    if (schemas === undefined)
      throw new OpenApiError(
        pointer,
        `${label}: style deepObject names no property of the body's schema: declare "${name}" in its properties`,
      );
    // Every schema of the property applies to its value (allOf, or the property in several members).
    const schema = schemas.length === 1 ? (schemas[0] as Record<string, unknown>) : { allOf: schemas };
    if (shapeOf(schema) !== 'object')
      throw new OpenApiError(
        pointer,
        `${label}: style deepObject needs an object schema, and Warden cannot tell this one is: give the property type: object`,
      );
    (fields ??= new Map()).set(name, {
      listed: arrayPropertiesOf(objectPropertiesOf(schema)),
      pointer: `/body/${name}`,
      numbers: compileNumberSpellings(schema),
    });
  }
  return fields;
}

/**
 * The form encodings of a request body's `content` that Warden does not honour, each as
 * [pointer, message] for a load warning: any `style` but `form` (exploded) and `deepObject`.
 */
export function unhonouredFormEncodings(content: unknown, at: string): [string, string][] {
  const out: [string, string][] = [];
  if (!isSchema(content)) return out;
  for (const [type, media] of Object.entries(content)) {
    if (mediaTypeOf(type) !== FORM_MEDIA_TYPE || !isSchema(media) || !isSchema(media.encoding)) continue;
    for (const [name, encoding] of Object.entries(media.encoding)) {
      if (!isSchema(encoding)) continue;
      const style = encoding.style ?? 'form';
      if (style === 'deepObject' || (style === 'form' && encoding.explode !== false)) continue;
      const how = style === 'form' ? 'style form with explode: false' : `style ${JSON.stringify(style)}`;
      out.push([
        `${at}/${escapePointer(type)}/encoding/${escapePointer(name)}`,
        `${how} is not honoured for form bodies: Warden reads each field as sent (style form, exploded: ${name}=a&${name}=b), so a joined value is checked as one string against the property's schema (an array's item, most often refused); send the exploded form, or use style deepObject for an object`,
      ]);
    }
  }
  return out;
}
