/**
 * A multipart part's name and file name as formidable reads them from its Content-Disposition
 * (formidable 3.5.4, behind koa-body and many Express apps: src/plugins/multipart.js and
 * Formidable.js _getFileName; 1.2.6, bundled by restify's bodyParser: lib/incoming_form.js). It
 * reads both with unanchored regexes over the header's value (decoded as UTF-8), not from its
 * parameters:
 *
 * - the name is the first `\bname=` anywhere (`/\bname=("([^"]*)"|(TOKEN+))/i`, both versions):
 *   `\b` holds after `-`, `.` or `"`, so `x-name="role"; name="x"` and `a="b name=role"; name="x"`
 *   are `role` to formidable, `x` to busboy;
 * - the file name is the first `\bfilename=` whose value is followed by the end or `;` and white
 *   space (`/\bfilename=("(.*?)"|(TOKEN+))($|;\s)/i`; the token classes differ: 3 allows `\`).
 *   formidable 1.2.6 reads a part without one as a text field, so `filename="a.txt";x=1` is a
 *   field there. The lazy quoted value ends at the first `"` so followed: `filename="a";x=" b"` is
 *   `a";x=" b`.
 * - and the file name it hands over is the part after the last `\`, `%22` made `"` and `&#dddd;`
 *   decoded: `&#0060;script&#0062;` is `<script>`.
 *
 * (formidable 3 reads a part with no Content-Type, or an empty one, as a text field, file name or
 * not; that is decided where the header block is read, src/threats/multipart-framing.ts.)
 */

/** formidable's name regex, both versions (3.5.4 src/plugins/multipart.js:79, 1.2.6 lib/incoming_form.js:370). */
const NAME = /\bname=("([^"]*)"|([^()<>@,;:\\"/[\]?={}\s\t/]+))/i;
/** Where a `filename=` starts, as `\bfilename=` finds it. */
const FILENAME_START = /\bfilename=/gi;
/** formidable 3's token (Formidable.js:554): `\` allowed. */
const TOKEN_3 = /[^()<>{}[\]@,;:"?=\s/\t]+/y;
/** formidable 1.2.6's token (incoming_form.js:440): `\` not allowed. */
const TOKEN_1 = /[^()<>@,;:\\"/[\]?={}\s\t/]+/y;
/** A `"` that may end formidable's lazy quoted value: followed by the end, or by `;` and white space. */
const CLOSING_QUOTE = /"(?=$|;\s)/g;
/** What `.` does not match: a quoted value does not run over one. */
const LINE_TERMINATOR = /[\n\r\u2028\u2029]/g;
/** What follows a token value: the end, or `;` and white space. */
const AFTER_TOKEN = /$|;\s/y;

/** The Content-Disposition value (as sent, latin1 bytes) as formidable reads it: UTF-8. */
export function formidableText(latin1: string): string {
  return Buffer.from(latin1, 'latin1').toString('utf8');
}

/** The part's name as formidable reads it from its Content-Disposition value, or undefined for none. */
export function formidablePartName(disposition: string): string | undefined {
  const m = NAME.exec(disposition);
  return m === null ? undefined : (m[2] ?? m[3]);
}

/** Positions of the matches of a global regex, in order. */
function positions(text: string, re: RegExp): number[] {
  return [...text.matchAll(re)].map((m) => m.index);
}

/**
 * The file name as sent (before formidable's decoding) that formidable 3 (`version` 3) or 1.2.6
 * reads from a Content-Disposition value, or undefined where it reads none. The regex's own lazy
 * `(.*?)"` tried from every `filename="` is quadratic on a value of many; this finds the same
 * match in one pass: each start's value ends at the first closing quote after it, unless a line
 * terminator comes first.
 */
export function formidableRawFileName(disposition: string, version: 1 | 3): string | undefined {
  const token = version === 3 ? TOKEN_3 : TOKEN_1;
  const quotes = positions(disposition, CLOSING_QUOTE);
  const breaks = positions(disposition, LINE_TERMINATOR);
  let q = 0;
  let b = 0;
  for (const start of disposition.matchAll(FILENAME_START)) {
    const at = start.index + start[0].length;
    if (disposition[at] === '"') {
      while (q < quotes.length && (quotes[q] as number) <= at) q++;
      while (b < breaks.length && (breaks[b] as number) <= at) b++;
      const close = quotes[q];
      if (close !== undefined && (breaks[b] === undefined || close < (breaks[b] as number))) return disposition.slice(at + 1, close);
      continue;
    }
    token.lastIndex = at;
    // Greedy, and backtracking within the run cannot help: a token character is no `;` nor the end.
    if (!token.test(disposition)) continue;
    AFTER_TOKEN.lastIndex = token.lastIndex;
    if (AFTER_TOKEN.test(disposition)) return disposition.slice(at, token.lastIndex);
  }
  return undefined;
}

/** What formidable hands over for a file name read as sent: after the last `\`, `%22` and `&#dddd;` decoded. */
export function formidableFileName(raw: string): string {
  return raw
    .slice(raw.lastIndexOf('\\') + 1)
    .replace(/%22/g, '"')
    .replace(/&#(\d{4});/g, (_, code: string) => String.fromCharCode(Number(code)));
}
