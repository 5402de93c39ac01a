/**
 * A multipart part as the Perl form readers read it: Mojolicious 9 (Mojo::Message::_parse_formdata,
 * Mojo::Content::Single's upgrade), HTTP::Body 1.22 (Catalyst; HTTP::Body::MultiPart::handler) and
 * CGI.pm 4.55 (read_multipart, _mp_value_parse). Each reads the name and file name with one
 * unanchored regex over the Content-Disposition value, not from its parameters:
 *
 * - the file name: Mojo `/[; ]filename="((?:\\"|[^"])*)"/` (quoted only: `filename=a.txt` is no
 *   file name), HTTP::Body `/ filename="?([^"]*)"?/` and CGI.pm
 *   `/ filename=(("[^"]*")|([a-z\d!#'*+,.^_`{}|~]*))/i` (after a space only: `;filename="a.txt"` and
 *   `;\tfilename="a.txt"` are none). A part without one is a text field to them, and busboy, which
 *   reads the `filename` parameter, reads it as a file, whose content the waf does not read;
 * - the name: Mojo `/[; ]name="((?:\\"|[^;"])*)"/`, HTTP::Body `/ name="?([^";]+)"?/` (`name="role;x"`
 *   is `role`, `;name="x"; a=" name=role"` is `role`) and CGI.pm `[\s;]name="((?:\\"|[^"])*)"`, or
 *   the token form when no `[\s;]name="` is anywhere;
 * - Mojo reads a part as multipart whenever its Content-Type matches
 *   `/multipart.*boundary\s*=\s*(?:"[^"]+"|[\w'(),.:?\-+/]+)/i` (Mojo::Content::boundary), and
 *   hands over its sub-parts' fields as top-level ones, a file part's too: `image/png;
 *   a=multipart; boundary=AA`.
 *
 * Each function finds what its regex finds in one pass (the header block is at most 16 KiB).
 * The Content-Disposition is one line (a folded one is refused before), so Perl's `.`, `\s` and
 * a line break do not come into it; its white space is space and tab (busboy's grammar).
 */

/**
 * Where `(?:\\"|[^"])*"` (`[^;"]` with `semicolon`) tried at `from` ends its value: the first `"`
 * not after a `\\` taken as an escape, else, backtracking from a `;` or the end, the quote of the
 * last escape; -1 for none. One pass, where the regex's backtracking stack grows with the value.
 */
function quotedEnd(text: string, from: number, semicolon: boolean): number {
  let lastEscape = -1;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && text[i + 1] === '"') {
      lastEscape = ++i;
      continue;
    }
    if (c === '"') return i;
    if (semicolon && c === ';') break;
  }
  return lastEscape;
}

/** Whether Mojolicious reads a part of this Content-Type as multipart (a superset of its regex: the boundary's value not read). */
export function mojoMultipart(contentType: string): boolean {
  const multipart = /multipart/gi;
  if (!multipart.test(contentType)) return false;
  // `.*` in Mojo's regex: a `boundary\s*=` anywhere after the first `multipart`.
  const boundary = /boundary\s*=/gi;
  boundary.lastIndex = multipart.lastIndex;
  return boundary.test(contentType);
}

/**
 * Whether Mojolicious reads a file name in the disposition: a `filename="` after `;` or a space,
 * then any characters and a `"` (the escapes `\"` decide where the value ends, not whether it
 * does), so a `"` anywhere after the first such start.
 */
export function mojoReadsFileName(disposition: string): boolean {
  const start = /[; ]filename="/.exec(disposition);
  return start !== null && disposition.indexOf('"', start.index + start[0].length) !== -1;
}

/** Mojolicious's part name as sent (it does not unescape), or undefined where it reads none (and skips the part). */
export function mojoPartName(disposition: string): string | undefined {
  // The first start whose value ends in a `"` before a `;`. A start inside a value that failed
  // would have ended it (its own `"` follows `=`, no escape): the tries do not overlap.
  for (const m of disposition.matchAll(/[; ]name="/g)) {
    const from = m.index + m[0].length;
    const end = quotedEnd(disposition, from, true);
    if (end !== -1) return disposition.slice(from, end);
  }
  return undefined;
}

/** HTTP::Body's file name: after the first ` filename=` and an optional `"`, up to a `"`; undefined for none. */
export function httpBodyFileName(disposition: string): string | undefined {
  const at = disposition.indexOf(' filename=');
  if (at === -1) return undefined;
  let from = at + ' filename='.length;
  if (disposition[from] === '"') from++;
  const end = disposition.indexOf('"', from);
  return disposition.slice(from, end === -1 ? undefined : end);
}

/** HTTP::Body's part name: after the first ` name=` followed (past an optional `"`) by a character not `"` nor `;`. */
export function httpBodyPartName(disposition: string): string | undefined {
  return / name="?([^";]+)/.exec(disposition)?.[1];
}

/** CGI.pm's file name (after its `||= ''`, the quotes taken off): '' for none, a text field then. */
export function cgiFileName(disposition: string): string {
  const m = / filename=/i.exec(disposition);
  if (m === null) return '';
  const from = m.index + m[0].length;
  if (disposition[from] === '"') {
    const end = disposition.indexOf('"', from + 1);
    if (end !== -1) return disposition.slice(from + 1, end);
  }
  const token = /[a-z\d!#'*+,.^_`{}|~]*/iy;
  token.lastIndex = from;
  token.test(disposition);
  const value = disposition.slice(from, token.lastIndex);
  // Perl's `||=`: `0` is false.
  return value === '0' ? '' : value;
}

/**
 * CGI.pm's part name (_mp_value_parse): quoted where a `[\s;]name="` is anywhere, and then read
 * at the first (a `"` after it ends the value, or none does at a later start either), else the
 * token after the first `[\s;]name=`. (`\s`: the disposition's white space is space and tab.)
 */
export function cgiPartName(disposition: string): string | undefined {
  const quoted = /[\t ;]name="/.exec(disposition);
  if (quoted !== null) {
    const from = quoted.index + quoted[0].length;
    const end = quotedEnd(disposition, from, false);
    return end === -1 ? undefined : disposition.slice(from, end);
  }
  return /[\t ;]name=([^()<>@,;:\\"/[\]?={} \t]*)/.exec(disposition)?.[1];
}

/**
 * How the Perl readers read a form-data part otherwise than busboy, if they do: a file to busboy
 * (`busboyFile`: a `filename` parameter not empty) that one of them reads as a text field, whose
 * content the waf would not have read; a name one of them reads where busboy reads another (or
 * none). A text field to busboy that one reads as a file is not refused: the waf read it, and
 * a browser's empty file input (`filename=""`) is a file to Mojolicious. What clients send,
 * `form-data; name="x"; filename="a.txt"`, all read as busboy does.
 */
export function perlProblem(disposition: string, busboyName: string | undefined, busboyFile: boolean): string | undefined {
  if (busboyFile) {
    const field = !mojoReadsFileName(disposition)
      ? 'Mojolicious'
      : (httpBodyFileName(disposition) ?? '') === ''
        ? 'HTTP::Body (Catalyst)'
        : cgiFileName(disposition) === ''
          ? 'CGI.pm'
          : undefined;
    if (field !== undefined) return `a file part ${field} reads as a text field (its file name not sent as \`; filename="…"\`)`;
  }
  for (const [reader, name] of [
    ['Mojolicious', mojoPartName(disposition)],
    ['HTTP::Body (Catalyst)', httpBodyPartName(disposition)],
    ['CGI.pm', cgiPartName(disposition)],
  ] as const)
    if (name !== undefined && name !== busboyName)
      return `a part ${reader} reads under another name (${JSON.stringify(name.slice(0, 40))}, not ${JSON.stringify((busboyName ?? '').slice(0, 40))})`;
  return undefined;
}
