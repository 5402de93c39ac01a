/**
 * openapi.document as messages and logs show it: a URL without its user name and password and
 * without its query (where a token is passed, `?access_token=${DOC_TOKEN}`), as request targets are
 * logged (loggedTarget); a file path as written. Before, both reached `config check`'s output and
 * warden.config.reload_failed whole (red team 28 §3).
 */
import { loggedTarget } from '../net/url-credentials.js';

export const shownDocument = (source: string): string => (/^https?:\/\//i.test(source) ? loggedTarget(source) : source);

/** A message naming the document: each spelling of `source` in it as shownDocument shows it. */
export function withDocumentShown(message: string, source: string): string {
  const shown = shownDocument(source);
  return shown === source ? message : message.replaceAll(source, shown);
}
