/**
 * The `x-warden-*` keys of a document that Warden does not read. Warden reads one extension,
 * `x-warden-rate-limit`, on an operation under `paths`; the same name misspelt (`x-warden-ratelimit`)
 * or put on the path item or at the document root limited nothing, and the document loaded without a
 * word (red team 28 §2). Such a key is refused with its pointer. Other tools' extensions (`x-…`) are
 * none of Warden's business and are left alone.
 *
 * Looked at: the document root, `info`, `components`, each path item and each of its operations —
 * the objects where an operator puts an operation's settings. Not inside schemas or maps, where a key
 * is a name (a property, a header) rather than an extension.
 */
import { closest } from '../config/closest-name.js';
import { OpenApiError } from './document-error.js';
import { escapePointer, isSchema } from './subschemas.js';
import { isOperationKey } from './operation-methods.js';

export const RATE_LIMIT_EXTENSION = 'x-warden-rate-limit';

const isWardenKey = (key: string) => /^x[-_]?warden/i.test(key);

function refuseIn(node: unknown, pointer: string, onOperation: boolean): void {
  if (!isSchema(node)) return;
  for (const key of Object.keys(node)) {
    if (!isWardenKey(key) || (onOperation && key === RATE_LIMIT_EXTENSION)) continue;
    const at = `${pointer}/${escapePointer(key)}`;
    if (key === RATE_LIMIT_EXTENSION)
      throw new OpenApiError(
        at,
        'applies only on an operation (#/paths/<path>/<method>/x-warden-rate-limit); here it limits nothing: move it onto each operation',
      );
    const hint = closest(key, [RATE_LIMIT_EXTENSION]);
    throw new OpenApiError(
      at,
      `unknown Warden extension${hint ? `; did you mean "${hint}"?` : ''} (Warden reads only x-warden-rate-limit, on an operation)`,
    );
  }
}

export function refuseUnreadWardenExtensions(doc: object): void {
  if (!isSchema(doc)) return;
  refuseIn(doc, '#', false);
  refuseIn(doc.info, '#/info', false);
  refuseIn(doc.components, '#/components', false);
  const paths = doc.paths;
  if (!isSchema(paths)) return;
  for (const [template, item] of Object.entries(paths)) {
    const at = `#/paths/${escapePointer(template)}`;
    refuseIn(item, at, false);
    if (!isSchema(item)) continue;
    for (const [method, op] of Object.entries(item)) if (isOperationKey(method)) refuseIn(op, `${at}/${method}`, true);
  }
}
