/**
 * What the document's schemas say, made plain before they are dereferenced and compiled:
 *
 * - **`$ref` with sibling keywords.** The dereferencer merges `{$ref: NewPet, required: [tag]}`
 *   into one object in which the siblings win: NewPet's `required: [name, species]` was replaced
 *   by `[tag]`, and `{$ref: Limit, maximum: 500}` lifted Limit's `maximum: 100`. In 3.1 (JSON
 *   Schema 2020-12) both apply, so the schema becomes `{allOf: [{$ref}, {siblings}]}` —
 *   `unevaluatedProperties` and `unevaluatedItems` excepted, which stay on the node beside that
 *   `allOf` (`{allOf: [{$ref}], unevaluatedProperties: false}`): in a branch of their own they
 *   would see none of the properties the `$ref` evaluated. In 3.0 the
 *   siblings of a `$ref` "SHALL be ignored", so they are dropped, with a warning naming the
 *   pointer (authors often mean them) — except `readOnly: true`, which is kept (as an `allOf`
 *   branch): ignoring it would forward a property the author marked server-set; and `nullable:
 *   true`, kept as `anyOf: [{$ref}, {enum: [null]}]`: 3.0 tools honour it there. Annotations
 *   (`description`, `title`, `example`, …) are left where they are.
 * - **3.0's boolean `exclusiveMaximum`/`exclusiveMinimum`** (draft 4): `{maximum: 100,
 *   exclusiveMaximum: true}` becomes `{exclusiveMaximum: 100}`, the form the compiler's dialect
 *   reads (the document was refused: `exclusiveMaximum must be number`).
 * - **Formats Warden does not check** are annotations (JSON Schema's default): one warning per
 *   format, naming the first place it is used (formats.ts lists the ones checked).
 * - **Form field encodings Warden does not honour** (a request body's `encoding.<name>.style` other
 *   than exploded `form` and `deepObject`): one warning each (form-encoding.ts).
 *
 * The main document is walked by its structure, so a schema is told from a parameter or a
 * response (a Reference Object there may carry `summary` and `description`, which the dereferencer
 * keeps); every object is visited once, shared or recursive ones included. A file a `$ref` names
 * has no known structure: there a `$ref` beside other keywords is dropped with a warning (3.0,
 * where every Reference Object's siblings are ignored) or refused (3.1: write the `allOf`).
 */
import { OpenApiError } from './document-error.js';
import { unhonouredFormEncodings } from './form-encoding.js';
import { isKnownFormat } from './formats.js';
import { escapePointer, forEachSubschema, isSchema, type Schema } from './subschemas.js';
import { OPERATION_METHODS } from './operation-methods.js';

/** Something the document says that Warden reads differently than its author may have meant; logged at load. */
export class OpenApiWarning extends OpenApiError {
  override name = 'OpenApiWarning';
}

export type Dialect = '3.0' | '3.1';

/**
 * Keywords beside a `$ref` that change nothing Warden checks, and those that say where a schema's
 * identifiers and definitions are (`$defs`, `$id`): left where they are.
 */
const IN_PLACE = new Set([
  'description',
  'summary',
  'title',
  'example',
  'examples',
  'deprecated',
  '$comment',
  'externalDocs',
  'xml',
  '$defs',
  'definitions',
  '$id',
  '$anchor',
  '$dynamicAnchor',
  '$schema',
]);
/** Keywords that read what the schema's other keywords evaluated (JSON Schema 2020-12 §11): they stay beside the `allOf`. */
const UNEVALUATED = new Set(['unevaluatedProperties', 'unevaluatedItems']);
const siblingsOf = (node: Schema) => Object.keys(node).filter((k) => k !== '$ref' && !IN_PLACE.has(k) && !k.startsWith('x-'));

const isRef = (node: Schema): boolean => typeof node.$ref === 'string';

/**
 * Rewrites one Schema Object in place (shared objects must read the same wherever they are
 * used). Returns the keys ignored (3.0), for the warning.
 */
function rewriteSchema(node: Schema, dialect: Dialect): string[] {
  let ignored: string[] = [];
  const siblings = isRef(node) ? siblingsOf(node) : [];
  if (siblings.length > 0) {
    const ref = node.$ref;
    if (dialect === '3.1') {
      // `unevaluatedProperties`/`unevaluatedItems` stay on the node: they see what its `allOf`
      // branches evaluated, the `$ref`'s properties included. Moved into a branch of their own they
      // saw none, and `{$ref: Pet, unevaluatedProperties: false}` refused every Pet.
      const kept: Schema = {};
      for (const k of siblings) if (!UNEVALUATED.has(k)) kept[k] = node[k];
      for (const k of siblings) if (!UNEVALUATED.has(k)) delete node[k];
      delete node.$ref;
      node.allOf = Object.keys(kept).length > 0 ? [{ $ref: ref }, kept] : [{ $ref: ref }];
    } else {
      const readOnly = node.readOnly === true;
      // Kept as 3.0 tools read it (code generators, validators): dropped, every null the API
      // accepts for such a property would be refused.
      const nullable = node.nullable === true;
      ignored = siblings.filter((k) => !(k === 'readOnly' && readOnly) && !(k === 'nullable' && nullable));
      for (const k of siblings) delete node[k];
      if (readOnly || nullable) {
        delete node.$ref;
        const target: Schema = nullable ? { anyOf: [{ $ref: ref }, { enum: [null] }] } : { $ref: ref };
        node.allOf = readOnly ? [target, { readOnly: true }] : [target];
      }
    }
  }
  if (dialect === '3.0') {
    for (const [flag, bound] of [
      ['exclusiveMaximum', 'maximum'],
      ['exclusiveMinimum', 'minimum'],
    ] as const) {
      if (typeof node[flag] !== 'boolean') continue;
      if (node[flag] === true && typeof node[bound] === 'number') {
        node[flag] = node[bound];
        delete node[bound];
      } else delete node[flag];
    }
  }
  return ignored;
}

function ignoredMessage(keys: string[]): string {
  const list = keys.map((k) => JSON.stringify(k)).join(', ');
  return `${list} beside $ref ${keys.length === 1 ? 'is' : 'are'} ignored (OpenAPI 3.0: a $ref's siblings SHALL be ignored); to apply ${keys.length === 1 ? 'it' : 'them'}, write allOf: [{$ref: …}, {${keys.join(', ')}: …}]`;
}

/** The object a local `$ref` (`#/components/schemas/Pet`) names in `root`, if any. */
function localTarget(root: unknown, ref: string): Schema | undefined {
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    let key: string;
    try {
      key = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
    } catch {
      return undefined;
    }
    if (!isSchema(node) && !Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return isSchema(node) ? node : undefined;
}

/**
 * Rewrites the main document's schemas in place (see above). `warn` gets each warning; a problem
 * Warden cannot read around is thrown as an OpenApiError.
 */
export function rewriteDocumentSchemas(doc: Schema, dialect: Dialect, warn: (w: OpenApiWarning) => void): void {
  const visited = new Set<object>();
  const schemas: [Schema, string][] = [];
  const formats = new Set<string>();
  const once = (node: unknown): node is Schema => {
    if (!isSchema(node) || visited.has(node)) return false;
    visited.add(node);
    return true;
  };
  const schema = (node: unknown, at: string) => {
    if (isSchema(node)) schemas.push([node, at]);
  };
  const each = (map: unknown, at: string, visit: (node: unknown, at: string) => void) => {
    if (isSchema(map)) for (const [k, v] of Object.entries(map)) visit(v, `${at}/${escapePointer(k)}`);
  };
  const content = (map: unknown, at: string) =>
    each(map, at, (media, mat) => {
      if (!once(media)) return;
      schema(media.schema, `${mat}/schema`);
      each(media.encoding, `${mat}/encoding`, (enc, eat) => {
        if (once(enc)) each(enc.headers, `${eat}/headers`, parameter);
      });
    });
  // Parameters and headers: a $ref'd one is walked where it is defined.
  const parameter = (node: unknown, at: string) => {
    if (!once(node) || isRef(node)) return;
    schema(node.schema, `${at}/schema`);
    content(node.content, `${at}/content`);
  };
  const requestBody = (node: unknown, at: string) => {
    if (!once(node) || isRef(node)) return;
    content(node.content, `${at}/content`);
    for (const [pointer, message] of unhonouredFormEncodings(node.content, `${at}/content`)) warn(new OpenApiWarning(pointer, message));
  };
  const response = (node: unknown, at: string) => {
    if (!once(node) || isRef(node)) return;
    each(node.headers, `${at}/headers`, parameter);
    content(node.content, `${at}/content`);
  };
  const callback = (node: unknown, at: string) => {
    if (once(node) && !isRef(node)) each(node, at, pathItem);
  };
  const operation = (node: unknown, at: string) => {
    if (!once(node)) return;
    if (Array.isArray(node.parameters)) node.parameters.forEach((p, i) => parameter(p, `${at}/parameters/${i}`));
    requestBody(node.requestBody, `${at}/requestBody`);
    each(node.responses, `${at}/responses`, response);
    each(node.callbacks, `${at}/callbacks`, callback);
  };
  function pathItem(node: unknown, at: string): void {
    if (!once(node) || isRef(node)) return;
    if (Array.isArray(node.parameters)) node.parameters.forEach((p, i) => parameter(p, `${at}/parameters/${i}`));
    for (const m of OPERATION_METHODS) operation(node[m], `${at}/${m}`);
  }

  each(doc.paths, '#/paths', pathItem);
  each(doc.webhooks, '#/webhooks', pathItem);
  const components = isSchema(doc.components) ? doc.components : {};
  each(components.schemas, '#/components/schemas', schema);
  each(components.parameters, '#/components/parameters', parameter);
  each(components.headers, '#/components/headers', parameter);
  each(components.requestBodies, '#/components/requestBodies', requestBody);
  each(components.responses, '#/components/responses', response);
  each(components.callbacks, '#/components/callbacks', callback);
  each(components.pathItems, '#/components/pathItems', pathItem);

  // The schemas, each once, in the document's order (iterative: a schema may nest deep or contain
  // itself), following local $refs to schemas kept outside components (`#/x-defs/Pet`).
  const seenSchemas = new Set<Schema>();
  for (let next = 0; next < schemas.length; next++) {
    const [node, at] = schemas[next] as [Schema, string];
    if (seenSchemas.has(node)) continue;
    seenSchemas.add(node);
    const ignored = rewriteSchema(node, dialect);
    if (ignored.length > 0) warn(new OpenApiWarning(at, ignoredMessage(ignored)));
    if (typeof node.format === 'string' && !isKnownFormat(node.format) && !formats.has(node.format)) {
      formats.add(node.format);
      warn(new OpenApiWarning(`${at}/format`, unknownFormatMessage(node.format)));
    }
    if (isRef(node)) {
      const target = localTarget(doc, node.$ref as string);
      if (target) schemas.push([target, node.$ref as string]);
    }
    forEachSubschema(node, (child, path) => schemas.push([child, `${at}/${path}`]));
  }
}

function unknownFormatMessage(format: string): string {
  return `format ${JSON.stringify(format)} is not checked (an annotation): values are not held to it; use pattern, minimum/maximum or enum to constrain them`;
}

/**
 * The same for a file a `$ref` names, whose structure is not known: every object is looked at.
 * `file`: its path, for the messages.
 */
export function rewriteReferencedFile(doc: unknown, dialect: Dialect, file: string, warn: (w: OpenApiWarning) => void): void {
  const seen = new Set<object>();
  const stack: [unknown, string][] = [[doc, '']];
  while (stack.length > 0) {
    const [node, at] = stack.pop() as [unknown, string];
    if (typeof node !== 'object' || node === null || seen.has(node)) continue;
    seen.add(node);
    if (Array.isArray(node)) {
      node.forEach((v, i) => stack.push([v, `${at}/${i}`]));
      continue;
    }
    const obj = node as Schema;
    if (isRef(obj)) {
      const siblings = siblingsOf(obj);
      if (siblings.length > 0 && dialect === '3.1')
        throw new OpenApiError(
          '#',
          `${file}#${at}: a $ref beside ${siblings.map((k) => JSON.stringify(k)).join(', ')} in a referenced file is not supported (the keywords would replace the referenced ones); write allOf: [{$ref: …}, {${siblings.join(', ')}: …}]`,
        );
      if (siblings.length > 0) {
        const ignored = rewriteSchema(obj, dialect);
        if (ignored.length > 0) warn(new OpenApiWarning('#', `${file}#${at}: ${ignoredMessage(ignored)}`));
      }
    } else if (dialect === '3.0' && (typeof obj.exclusiveMaximum === 'boolean' || typeof obj.exclusiveMinimum === 'boolean'))
      rewriteSchema(obj, dialect);
    for (const [k, v] of Object.entries(obj)) stack.push([v, `${at}/${escapePointer(k)}`]);
  }
}
