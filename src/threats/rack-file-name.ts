/**
 * The file name Rack 2 (Rails, Sinatra) reads from a multipart part's header block, as
 * Rack::Multipart::Parser#get_filename does: it decides whether Rack reads the part as a file or as
 * a text field. Like its part name (src/threats/rack-part-name.ts), Rack reads it with regexes over
 * the whole block, not from the parsed Content-Disposition:
 *
 * - where any line of the block is a Content-Disposition in RFC 2183's shape (RFC2183, the header
 *   name in any case), the parameters are every `; attribute=value` anywhere in the block (DISPPARM
 *   scanned over it: `Content-Type: text/plain; filename=x` is a file name too; a quoted value runs
 *   on over `;` and lines, greedily), the last one of a name counts, and the name is looked up
 *   case-sensitively: `filename`, then `filename*` — `FILENAME="a.txt"` is no file name;
 * - else the last `; filename=` of a line that starts with Content-Disposition (BROKEN), in any case.
 *
 * busboy, behind every reader here, reads the Content-Disposition's own `filename`, its name in any
 * case. A part with a file name (not empty) is a file to busboy, which the waf does not read as
 * text, and can be a text field to Rack. Rack drops a part whose file name is empty.
 *
 * Ruby's `^` and `$` are line anchors, its `.` any character but LF, its `\s` ASCII white space;
 * the `i` flag of RFC2183 and BROKEN reaches only their own letters (Content-Disposition, and
 * BROKEN's `filename`): the other letters are in classes of both cases. The block is latin1 text,
 * as the framing check holds it.
 */
import { RUBY_SPACE, TOKEN, VALUE } from './rack-grammar.js';

const LINE_START = '(?:^|(?<=\\n))';
const LINE_END = '(?=\\n|$)';
/**
 * Its white space and token taken whole, as a possessive group (a lookahead's capture, matched
 * again): BROKEN's `[^\n]*` after it can take the same characters, and trying every split of a
 * 16 KiB run between them held the event loop 370 ms a part. The splits find nothing more: what
 * follows the run on its line is all `[^\n]*` may take either way. (One capture group first.)
 */
const CONDISP = `Content-Disposition:(?=(${RUBY_SPACE}*${TOKEN}${RUBY_SPACE}*))\\1`;
/** RFC 2231's attribute-char, as Rack writes it: no control character, space, tspecial, `'`, `*` or `%`. */
const ATTRIBUTE_CHAR = '[^ \\x00-\\x1f\\x7f)(><@,;:\\\\"/\\[\\]?=\'*%]';
const ATTRIBUTE = `${ATTRIBUTE_CHAR}+`;
const REGULAR_PARAMETER = `(${ATTRIBUTE}(?:\\*[0-9]+)?)=(${VALUE})`;
const EXTENDED_OTHER_VALUE = `(?:%[0-9a-fA-F]{2}|${ATTRIBUTE_CHAR})`;
const EXTENDED_INITIAL_PARAMETER = `(${ATTRIBUTE}(?:\\*0)?\\*)=([a-zA-Z0-9\\-]*'[a-zA-Z0-9\\-]*'${EXTENDED_OTHER_VALUE}*)`;
const EXTENDED_OTHER_PARAMETER = `(${ATTRIBUTE}\\*[1-9][0-9]*\\*)=(${EXTENDED_OTHER_VALUE}*)`;
const DISPPARM = `;${RUBY_SPACE}*(?:${REGULAR_PARAMETER}|(?:${EXTENDED_INITIAL_PARAMETER}|${EXTENDED_OTHER_PARAMETER}))${RUBY_SPACE}*`;
const RFC2183 = new RegExp(`${LINE_START}${CONDISP}(?:${DISPPARM})+${LINE_END}`, 'i');
const PARAMETERS = new RegExp(DISPPARM, 'g');
const BROKEN = new RegExp(`${LINE_START}${CONDISP}[^\\n]*;${RUBY_SPACE}*filename=(${VALUE})`, 'i');
/** `/^"(.*)"$/`: the quotes off a value, on the first line that is one quoted text. */
const QUOTED = /(?:^|(?<=\n))"([^\n]*)"(?=\n|$)/;

/**
 * The file name Rack reads from a part's header block (without the blank line that ends it), as
 * sent (before Rack's unescaping, which keeps a name empty or not), or undefined where Rack reads
 * none and so reads the part as a text field. An empty one: Rack drops the part.
 */
export function rackFileName(block: string): string | undefined {
  const head = `${block}\r\n`; // Rack's head keeps the last header's line break
  let filename: string | undefined;
  if (RFC2183.test(head)) {
    const params = new Map<string, string>();
    for (const match of head.matchAll(PARAMETERS)) {
      const [name, value] = match.slice(1).filter((group) => group !== undefined);
      if (name !== undefined && value !== undefined) params.set(name, value);
    }
    filename = params.get('filename');
    if (filename === undefined) {
      // `charset'language'value`: the extended value always holds both quotes.
      const extended = params.get('filename*');
      return extended?.split("'").slice(2).join("'");
    }
  } else filename = BROKEN.exec(head)?.[2]; // [1] is CONDISP's possessive group
  return filename === undefined ? undefined : (QUOTED.exec(filename)?.[1] ?? filename);
}
