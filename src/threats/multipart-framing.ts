/**
 * The framing of a multipart/form-data body as parsers other than busboy may read it. busboy, which
 * every multipart reader of the sidecar uses (src/threats/multipart-stream.ts), is strict where
 * others are lenient, and silently drops what it does not read as a part, so a backend could read
 * a part that the waf, the malware scan, validation and the `_method` check never saw:
 *
 * - `--boundary` anywhere but on a delimiter line after a CRLF: after a bare LF (PHP ends a part
 *   there, whatever follows), after a bare CR (Werkzeug does), inside a line, or followed by other
 *   characters (busboy ends the part there and drops them, a backend keeps them);
 * - a boundary line with transport padding (`--b  \r\n`, which RFC 2046 allows and Go's
 *   mime/multipart reads) or ending in a bare LF: busboy drops the part that follows;
 * - anything but white space after the close delimiter: PHP reads on to any line `--boundary` and
 *   the part after it, busboy stops (or reads on, within a chunk);
 * - a part whose Content-Disposition is not `form-data` (busboy skips it; PHP reads its `name`), or
 *   that has none;
 * - a part giving Content-Disposition, Content-Type or Content-Transfer-Encoding twice, or a
 *   disposition parameter twice (busboy takes the first, others the last), or an extended
 *   parameter like `filename*=` (RFC 7578 §4.2 forbids it; busboy prefers it to `filename`, PHP
 *   ignores it);
 * - a form-data part whose own Content-Type is `multipart/*` (RFC 2388 §4.2's multipart/mixed of
 *   files): busboy reads it as one text field (or one file), commons-fileupload (Tomcat, Spring
 *   on Tomcat) reads each of its sub-parts as a file the scan never saw;
 * - a Content-Disposition busboy's strict grammar refuses (`filename="a";` with a trailing `;`,
 *   `filename= "a"`, an unquoted `filename=a/b`): busboy skips the whole part, PHP reads it;
 * - a header block of more lines than busboy keeps (it ignores those after its 1,999th);
 * - a folded header line (starting with a space or tab: obs-fold, obsolete since RFC 7230, unused by
 *   RFC 7578, never sent by a browser): busboy joins it to the header before, Django's
 *   parse_boundary_stream reads it as a header of its own (a Content-Transfer-Encoding or a second
 *   Content-Disposition hidden in an `X-Pad` header);
 * - a part Rack 2 names otherwise than busboy (src/threats/rack-part-name.ts: one regex over the
 *   whole header block, then Content-ID), and, in a multipart type other than form-data, a part
 *   without headers, whose content's first lines Rack reads as them;
 * - a part that is a file to busboy and a text field to Rack 2, or the reverse (Rack's file name:
 *   src/threats/rack-file-name.ts), and a `name` or `filename` parameter not in lower case
 *   (`FILENAME=`: a file to busboy, a field to Rack);
 * - a part formidable (koa-body, restify) names otherwise than busboy, finds another file name in,
 *   or reads as a text field where busboy reads a file (src/threats/formidable-readings.ts);
 * - the same for Mojolicious, HTTP::Body (Catalyst) and CGI.pm (src/threats/perl-readings.ts:
 *   `filename=a.txt`, `;filename="a.txt"` are text fields to them), and a part whose type
 *   Mojolicious reads as multipart (`image/png; a=multipart; boundary=AA`);
 * - a form part whose Content-Type names a charset that is not ASCII-compatible, or whose
 *   parameters are not RFC 9110 syntax (partTypeProblem): Jetty decodes the part in it where busboy
 *   read UTF-8; a file part's such charset (filePartTypeProblem): Falcon's `part.text` decodes it;
 *   and an RFC 2231 extended parameter in either (`charset*0=utf-; charset*1=7`);
 * - a Content-Disposition value holding an RFC 2047 encoded word (`name="=?UTF-8?Q?role?="`: `role`
 *   to Tomcat), or a `'` outside double quotes (Jetty reads a single-quoted span from it, PHP takes
 *   the quotes off);
 * - a preamble line starting with `--` (Jetty, under a boundary it cannot find, splits there).
 *
 * The checker reads the same bytes as busboy, beside it, and names the first such thing it finds.
 * It also counts the parts a form reader reads (`parts()`): the multipart reader refuses a body
 * where busboy gave fewer, whatever made busboy skip one (src/threats/multipart-stream.ts).
 */
import StreamSearch from 'streamsearch';
import { extendedParameter, hasParameterSyntax, headerParameters, unreadableCharset, unreadableFileCharset } from '../net/media-type.js';
import { formidableFileName, formidablePartName, formidableRawFileName, formidableText } from './formidable-readings.js';
import { mojoMultipart, perlProblem } from './perl-readings.js';
import { rackFileName } from './rack-file-name.js';
import { rackPartName } from './rack-part-name.js';

export interface MultipartFramingCheck {
  push(chunk: Buffer): void;
  /** Why the body is ambiguous, or undefined; final once every chunk has been pushed. */
  problem(): string | undefined;
  /**
   * The parts delimited so far that a form reader reads (in a multipart/form-data body, all of
   * them; in another multipart type, those whose disposition starts `form-data`): busboy must
   * give as many fields and files, or it skipped one.
   */
  parts(): number;
  /**
   * The content of part `index` (1-based, as `parts()` counts), as sent, when busboy reads it as a
   * text field (`textField`), and forgets it; else undefined. Kept only until
   * busboy reads the part, which is in the same chunk: the checker reads each chunk first.
   */
  takeFieldFile(index: number): Buffer[] | undefined;
  /**
   * How formidable reads file part `index` (1-based, as `parts()` counts) otherwise than busboy,
   * and forgets it; else undefined (src/threats/formidable-readings.ts).
   */
  takeFileReading(index: number): FormidableFileReading | undefined;
}

/** A file part as formidable reads it, where that is not as busboy reads it. */
export interface FormidableFileReading {
  /** The file name formidable hands over (after its last `\`, `&#dddd;` and `%22` decoded). */
  readonly fileName?: string;
}

/**
 * A part no form reader here reads (in a multipart type other than form-data, one whose disposition
 * is not form-data), as Rack 2 reads it: Rack reads every part of every multipart type as a form
 * field, named by its Content-Disposition's `name` whatever the disposition type, else by its
 * Content-ID (src/threats/rack-part-name.ts), else after its file name or Content-Type.
 */
export interface UnreadPart {
  /** The name Rack reads it by, or undefined where Rack names it after its file name or type. */
  readonly rackName: string | undefined;
  /** Its Content-Type header (lower case; '' for none). */
  readonly contentType: string;
  /** Its content as sent, when the reader asked for it; 'too large' past the bytes it asked for. */
  readonly content?: Buffer | 'too large';
}

export interface UnreadPartReader {
  /** Told of each such part once its content has ended. */
  onPart(part: UnreadPart): void;
  /** Each part's content is kept for onPart, up to this many bytes; none is kept without it. */
  readonly maxContentBytes?: number;
}

/** busboy's own limit on a part's header block (Node's header limit). */
const MAX_HEADER_BYTES = 16 * 1024;
/** How much of a line after a boundary is looked at: a padded boundary line is short. */
const MAX_BOUNDARY_LINE_TAIL = 256;
const CR = 0x0d;
const LF = 0x0a;
/** No byte yet (content that has just begun): not the line break a delimiter needs before it. */
const NONE = -1;
const TRANSPORT_PADDING = /^[ \t]*$/;
/** What may follow the close delimiter: white space and line breaks, which every reader skips. */
const EPILOGUE = /^[ \t\r\n]*$/;
const EPILOGUE_BYTES = new Set([0x20, 0x09, CR, LF]);
const SINGLE_HEADERS = new Set(['content-disposition', 'content-type', 'content-transfer-encoding']);
/** A header line that starts with a space or tab (the block's first, or one after a CRLF). */
const FOLDED_LINE = /(?:^|\r\n)[ \t]/;
/** busboy keeps a part's first 1,999 header lines and ignores the rest (Node's limit of 2,000 pairs). */
const MAX_HEADER_LINES = 1999;
/**
 * A Content-Disposition as busboy's parseDisposition reads it (busboy/lib/utils.js): a type, then
 * `; name=value` parameters, a value a token or a quoted string, white space only around the `;`.
 * busboy skips the part of any other. Tokens and quoted text are RFC 7230's, bytes over 0x7f
 * allowed in quoted text. (Extended `name*=` values have a grammar of their own; they are refused
 * before this is asked.)
 */
const TOKEN = "[-!#$%&'*+.^_`|~0-9A-Za-z]";
const QDTEXT = '[\\t !#-\\[\\]-~\\x80-\\xff]';
const VALUE = `(?:${TOKEN}+|"(?:${QDTEXT}|\\\\[\\t !-~\\x80-\\xff])*")`;
const STRICT_DISPOSITION = new RegExp(`^${TOKEN}*(?:[ \\t]*;[ \\t]*${TOKEN}*=${VALUE})*[ \\t]*$`);
/** The parameters of a disposition STRICT_DISPOSITION accepts: names, and values as sent. */
const DISPOSITION_PARAMETERS = new RegExp(`;[ \\t]*(${TOKEN}*)=(${VALUE})`, 'g');
/** Disposition parameters no client writes in another case (`filename*` is refused as extended). */
const LOWER_CASE_PARAMETERS = new Set(['name', 'filename']);
/** busboy's unescaping of a quoted value: `\\` and `\"` only, any other `\` kept (Rack drops it). */
const BUSBOY_ESCAPE = /\\([\\"])/g;

/** Where an RFC 2047 encoded word may start: `=?charset?B?` or `=?charset?Q?` (linear: `[^?]*` stops at the next `?`). */
const ENCODED_WORD_START = /=\?[^?]*\?[bq]\?/i;

/**
 * Whether a value holds an RFC 2047 encoded word (`=?charset?Q?text?=`), as Tomcat's MimeUtility
 * reads one: its start, then a `?=` after it (the text may be empty; the `?=` may share the
 * start's last `?`, which a laxer decoder may take). `a=?b.txt` is none. Two searches: if any
 * start has a `?=` after it, the first start has.
 */
function hasEncodedWord(value: string): boolean {
  if (!value.includes('=?')) return false;
  const start = ENCODED_WORD_START.exec(value);
  return start !== null && value.lastIndexOf('?=') >= start.index + start[0].length - 1;
}

/** The `name` among a disposition's parameters (as sent), as busboy reads it: the first, names in any case. */
function busboyPartName(parameters: readonly (readonly [string, string])[]): string | undefined {
  for (const [name, value] of parameters)
    if (name.toLowerCase() === 'name') return value.startsWith('"') ? value.slice(1, -1).replace(BUSBOY_ESCAPE, '$1') : value;
  return undefined;
}

/**
 * The problem with one part's header block (CRLF-separated lines), if any. In a body that is not
 * multipart/form-data (`formData` false: multipart/mixed, which Spring reads as a form), a part
 * that is not `form-data` is one every reader skips, not a problem.
 */
export function partHeaderProblem(block: string, formData = true): string | undefined {
  return readPartHeaders(block, formData).problem;
}

/**
 * Whether busboy reads a part as a text field: a `filename` only when it is not empty, or the type
 * application/octet-stream, makes a file to busboy. Its bytes as sent are kept for the malware scan:
 * other readers read such a part as a file (Werkzeug, Spring and commons-fileupload any part with a
 * `filename` parameter, `filename=""` too; Spring binds a part of any type to `@RequestPart byte[]`),
 * and a backend may store any text field as a file.
 */
function textField(disposition: readonly [string, string][], contentType: string): boolean {
  const mediaType = contentType.split(';', 1)[0]?.trim() ?? '';
  const filename = disposition.find(([name]) => name === 'filename');
  return !(mediaType === 'application/octet-stream' || (filename !== undefined && filename[1] !== ''));
}

/**
 * The problem with a form part's Content-Type, if any. Jetty 9.4 decodes a part without a file name
 * in the charset its Content-Type names (MimeTypes.getCharsetFromContentType: a scan for `;`,
 * spaces, `charset`, spaces, `=`, that reads past what it does not understand). busboy gives no
 * value for a charset it cannot decode (which the stream refuses), but decodes a part whose type it
 * cannot parse (`text/plain;; charset=ibm037`, `text/plain; charset= ibm037`) as UTF-8 and gives
 * the waf a value: `' OR 1=1 --` in EBCDIC reached Jetty. The part's type is read as the body's is
 * (src/net/media-type.ts): a charset either reading finds must be ASCII-compatible, and the
 * parameters RFC 9110 syntax, in which Jetty's scan and a parser read the same `charset`.
 */
function partTypeProblem(contentType: string): string | undefined {
  const extended = extendedTypeProblem(contentType);
  if (extended !== undefined) return extended;
  const charset = unreadableCharset(contentType);
  if (charset !== undefined) return `a part in charset ${charset.slice(0, 40) || '""'} that cannot be inspected`;
  if (!hasParameterSyntax(contentType))
    return `a part Content-Type whose parameters are not name=value pairs (RFC 9110), from which a backend may read a charset (${JSON.stringify(contentType.slice(0, 60))})`;
  return undefined;
}

/**
 * The problem with a file part's Content-Type, if any. Falcon's `part.text` decodes a file part
 * (one with a file name) in the charset its type names as it does a field: `text/plain;
 * charset=utf-7` or Python's `unicode_escape` made `+ADw-script+AD4-` a `<script>` there, while
 * validation read the part on a text property as UTF-8. The same charsets are refused as for a
 * field, libmagic's `binary` and `unknown-8bit` aside; the parameter syntax is not asked of a file
 * (every `charset=` anywhere is read all the same). Browsers and Python's requests send no
 * charset on a file part, curl and .NET an ASCII-compatible one when one is given.
 */
function filePartTypeProblem(contentType: string): string | undefined {
  const extended = extendedTypeProblem(contentType);
  if (extended !== undefined) return extended;
  const charset = unreadableFileCharset(contentType);
  return charset === undefined ? undefined : `a file part in charset ${charset.slice(0, 40) || '""'} that cannot be inspected`;
}

/** An RFC 2231 `charset*0=utf-; charset*1=7` in a part's type: Python's email parser joins it (media-type.ts). */
function extendedTypeProblem(contentType: string): string | undefined {
  const name = extendedParameter(contentType);
  return name === undefined ? undefined : `a part Content-Type with an extended parameter (${JSON.stringify(name.slice(0, 40))})`;
}

/**
 * The problem with a part's header block, if any, whether a form reader reads the part, whether
 * busboy reads it as a textField, and, for a part no form reader here reads, what Rack reads it as
 * (`unread`: Rack reads every part of every multipart type as a form field).
 */
function readPartHeaders(
  block: string,
  formData: boolean,
): { problem?: string; read: boolean; textField?: boolean; unread?: Omit<UnreadPart, 'content'>; formidable?: FormidableFileReading } {
  // busboy's own limit, which a block that arrived in one piece with its blank line has not met.
  if (block.length > MAX_HEADER_BYTES) return { problem: 'a part header block over 16 KiB', read: true };
  if (FOLDED_LINE.test(block)) return { problem: 'a folded part header line (Django reads it as a header of its own)', read: true };
  const lines = block.split('\r\n').filter((line) => line !== '');
  if (lines.length > MAX_HEADER_LINES) return { problem: `a part of over ${MAX_HEADER_LINES} header lines`, read: true };
  const seen = new Set<string>();
  let disposition: [string, string][] | undefined;
  let dispositionValue = '';
  let dispositionType = '';
  let contentType = '';
  /** The Content-Type as sent (`contentType` is in lower case). */
  let contentTypeValue = '';
  const problem = (why: string) => ({ problem: why, read: true });
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon === -1) continue; // busboy refuses the part itself ("Malformed part header")
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!SINGLE_HEADERS.has(name)) continue;
    if (seen.has(name)) return problem(`a part gives ${name} twice`);
    seen.add(name);
    const value = line.slice(colon + 1).trim();
    const params = headerParameters(value);
    const names = new Set<string>();
    for (const [param] of params) {
      if (names.has(param)) return problem(`a part's ${name} gives ${param.slice(0, 40)} twice`);
      names.add(param);
    }
    if (name === 'content-disposition') {
      disposition = params;
      // As busboy reads it: white space before it skipped, none other (trim() takes U+00A0 too).
      dispositionValue = line.slice(colon + 1).replace(/^[ \t]+/, '');
      dispositionType = value.split(';', 1)[0]?.trim().toLowerCase() ?? '';
    }
    if (name === 'content-type') {
      contentTypeValue = value;
      contentType = value.toLowerCase();
    }
  }
  // In another multipart type, commons-fileupload reads a part whose disposition starts `form-data`.
  if (disposition === undefined || (!formData && !dispositionValue.toLowerCase().startsWith('form-data'))) {
    if (formData) return problem('a part without a Content-Disposition');
    // Rack takes a head from the content up to its first blank line, a name from it too.
    if (block === '') return problem('a part without headers (Rack reads the first lines of its content as its headers)');
    return { read: false, unread: { rackName: rackPartName(block), contentType } };
  }
  if (dispositionType !== 'form-data' && formData)
    return problem(`a part whose Content-Disposition is ${dispositionType.slice(0, 40) || 'empty'}, not form-data`);
  // `filename*=`, `name*0=`: an RFC 2231 / RFC 5987 extended or continued value.
  if (disposition.some(([name]) => name.endsWith('*') || /\*\d+$/.test(name)))
    return problem('a part with an extended Content-Disposition parameter (RFC 7578 forbids them)');
  if (!STRICT_DISPOSITION.test(dispositionValue))
    return problem(`a part whose Content-Disposition the parser cannot read (${JSON.stringify(dispositionValue.slice(0, 60))})`);
  // Its parameters as sent, names and values (`disposition` has the names lower-cased, values unquoted).
  const sent = [...dispositionValue.matchAll(DISPOSITION_PARAMETERS)].map(([, param, value]) => [param ?? '', value ?? ''] as const);
  // `name='_method'`: a token to busboy, quotes and all; PHP takes the quotes off. And Jetty's
  // QuotedStringTokenizer opens a single-quoted span at a `'` anywhere outside double quotes:
  // `name="note"; x=a'; filename="b.txt"; y=b'` has no file name to it (a text field the waf
  // skipped as busboy's file). Inside double quotes (`filename="John's.txt"`) every reader agrees.
  if (
    dispositionType.includes("'") ||
    sent.some(([param, value]) => param.includes("'") || (!value.startsWith('"') && value.includes("'")))
  )
    return problem(
      'a single-quoted Content-Disposition value, or a single quote outside double quotes (PHP takes the quotes off, Jetty reads a quoted span)',
    );
  // Tomcat (commons-fileupload's ParameterParser, MimeUtility.decodeText) decodes RFC 2047 encoded
  // words in every value: `name="=?UTF-8?Q?role?="` is `role` to it, a file name in B encoding
  // `../../../etc/passwd`. No client encodes a field's name so (RFC 7578 §4.2 forbids it); Spring's
  // FormHttpMessageConverter with a multipartCharset encodes non-ASCII file names so, refused too
  // (threats.md says what to do: review rt28, F4).
  const encoded = sent.find(([, value]) => hasEncodedWord(value));
  if (encoded !== undefined)
    return problem(`an RFC 2047 encoded word in the Content-Disposition ${JSON.stringify(encoded[0].slice(0, 40))} (Tomcat decodes it)`);
  // Rack reads the name with one regex over the whole block (src/threats/rack-part-name.ts).
  const name = busboyPartName(sent);
  const rack = rackPartName(block);
  if (rack !== name)
    return problem(
      `a part Rack reads under another name (${JSON.stringify((rack ?? 'its file name or type').slice(0, 40))}, not ${JSON.stringify((name ?? '').slice(0, 40))})`,
    );
  // Rack looks its file name up case-sensitively, from parameters scanned over the whole block
  // (src/threats/rack-file-name.ts): a part with a file name is a file to busboy, which the waf
  // does not read, and may be a text field to Rack, or the reverse. No client writes these
  // parameter names in another case.
  for (const [param] of sent)
    if (LOWER_CASE_PARAMETERS.has(param.toLowerCase()) && param !== param.toLowerCase())
      return problem(
        `a Content-Disposition parameter ${JSON.stringify(param)} not in lower case (Rack reads a file name in lower case only)`,
      );
  const rackFile = rackFileName(block);
  const busboyFile = disposition.some(([param, value]) => param === 'filename' && value !== '');
  // An empty file name: Rack drops the part (a browser's empty file input), whatever busboy reads.
  if (rackFile !== '' && (rackFile !== undefined) !== busboyFile)
    return problem(busboyFile ? 'a file part Rack reads as a text field' : 'a text field Rack reads as a file');
  // commons-fileupload takes any form-data part whose type starts `multipart/mixed` apart, and
  // Mojolicious any whose type says `multipart` and, after it, `boundary=` (`image/png;
  // a=multipart; boundary=AA`), a file part's too: it hands over the form-data parts inside.
  if (dispositionType === 'form-data' && (contentType.startsWith('multipart/') || mojoMultipart(contentType)))
    return problem(`a nested multipart part (${contentType.split(';', 1)[0]?.trim().slice(0, 40)})`);
  // Only a part without a file name is a field to Jetty (`filename=""` too is a file there), whose
  // type is read as a body's; a file's charset Falcon's `part.text` still decodes it in.
  const typeProblem = disposition.some(([name]) => name === 'filename')
    ? filePartTypeProblem(contentTypeValue)
    : partTypeProblem(contentTypeValue);
  if (typeProblem !== undefined) return problem(typeProblem);
  const formidable = formidableProblem(dispositionValue, name, sent);
  if (typeof formidable === 'string') return problem(formidable);
  // Mojolicious, HTTP::Body (Catalyst) and CGI.pm read both with regexes too (src/threats/perl-readings.ts).
  const perl = perlProblem(dispositionValue, name, busboyFile);
  if (perl !== undefined) return problem(perl);
  return { read: true, textField: textField(disposition, contentType), formidable };
}

/**
 * How formidable (src/threats/formidable-readings.ts) reads a part otherwise than busboy, if it
 * does; else the file name it hands over where that is another than busboy's, for the waf. Its
 * name must be busboy's, and its file name as sent too (formidable 3's and 1.2.6's), or none where
 * busboy has none: it reads the first `\bname=` and `\bfilename=` anywhere in the value.
 * A part with a file name and no Content-Type, or an empty one, is a file to busboy and a text
 * field to formidable 3: not refused nor read as text, for Python's requests sends every file so
 * (threats.md).
 */
function formidableProblem(
  dispositionValue: string,
  busboyName: string | undefined,
  sent: readonly (readonly [string, string])[],
): string | FormidableFileReading | undefined {
  const value = formidableText(dispositionValue);
  const name = formidablePartName(value);
  const busboy = busboyName === undefined ? undefined : formidableText(busboyName);
  if (name !== busboy)
    return `a part formidable reads under another name (${JSON.stringify((name ?? 'none').slice(0, 40))}, not ${JSON.stringify((busboy ?? '').slice(0, 40))})`;
  const filename = sent.find(([param]) => param === 'filename')?.[1];
  const quoted = filename?.startsWith('"') === true;
  // As sent: the quotes off, not unescaped (formidable does not unescape).
  const raw = filename === undefined ? undefined : formidableText(quoted ? filename.slice(1, -1) : filename);
  const [three, one] = [formidableRawFileName(value, 3), formidableRawFileName(value, 1)];
  if (one === undefined && raw !== undefined && raw !== '')
    return 'a file part formidable 1 reads as a text field (its file name not followed by the end or "; ")';
  if (three !== raw || one !== raw)
    return `a part formidable finds another file name in (${JSON.stringify((three ?? one ?? '').slice(0, 40))})`;
  if (filename === undefined || raw === '') return undefined;
  const handedOver = formidableFileName(raw as string);
  const busboyFileName = formidableText(quoted ? filename.slice(1, -1).replace(BUSBOY_ESCAPE, '$1') : filename);
  return handedOver === busboyFileName ? undefined : { fileName: handedOver };
}

const DASH = 0x2d;
const LF_DASHES = Buffer.from('\n--');

/**
 * Whether `data[start, end)`, after the bytes `before2` and `before1`, holds a line starting with
 * `--`. busboy skips the preamble unread; a parser reading another boundary finds parts in it:
 * Jetty 9.4 under `Boundary=AA` (no lower-case `boundary=` for its indexOf) splits at bare `--`
 * lines, a boundary that is a prefix of the one sent. No client writes a preamble (RFC 7578 §4.1).
 */
function preambleDashLine(data: Buffer, start: number, end: number, before2: number, before1: number): boolean {
  const first = data[start];
  const second = start + 1 < end ? data[start + 1] : NONE;
  if (before2 === LF && before1 === DASH && first === DASH) return true;
  if (before1 === LF && first === DASH && second === DASH) return true;
  return data.subarray(start, end).indexOf(LF_DASHES) !== -1;
}

/** `chunks` without their last `count` bytes (the delimiter's CRLF, which busboy does not hand over). */
function withoutLast(chunks: Buffer[], count: number): Buffer[] {
  let left = count;
  while (left > 0 && chunks.length > 0) {
    const last = chunks[chunks.length - 1] as Buffer;
    if (last.length > left) {
      chunks[chunks.length - 1] = last.subarray(0, last.length - left);
      return chunks;
    }
    chunks.pop();
    left -= last.length;
  }
  return chunks;
}

/**
 * A checker for a body split at `boundary`. Every `--boundary` in the body must be a delimiter
 * line (RFC 2046 §5.1.1 keeps the delimiter out of the parts): after a CRLF (or at the body's
 * start), then CRLF, or `--` for the close delimiter. Elsewhere parsers disagree about it: busboy
 * ends a part only at `\r\n--boundary`, PHP at `\n--boundary` whatever follows, Werkzeug after a
 * bare CR too; Go reads a padded boundary line. After the close delimiter, busboy stops (or reads
 * on, within a chunk) while PHP reads on to any line `--boundary`: only white space and line breaks
 * may follow it. With `maxFieldBytes`, the checker also keeps the content of parts busboy reads as
 * a text field (textField), up to that many bytes, for takeFieldFile: busboy hands over only the
 * field's decoded value.
 */
export function createMultipartFramingCheck(
  boundary: string,
  formData = true,
  maxFieldBytes?: number,
  /** A part no form reader reads is a problem (see MultipartHandlers.refuseUnreadParts). */
  refuseUnread = false,
  /** Told of each part no form reader reads, as Rack reads it (see MultipartHandlers.onUnreadPart). */
  unreadParts?: UnreadPartReader,
): MultipartFramingCheck {
  let problem: string | undefined;
  /** 'data': in a part's content (or the preamble); 'line': the rest of a delimiter's line; 'headers': a part's header block; 'epilogue': after the close delimiter; 'done': a problem was found. */
  let state: 'data' | 'line' | 'headers' | 'epilogue' | 'done' = 'data';
  /** The last two bytes of content before the current position (NONE: none since the header block). */
  let before2 = NONE;
  let before1 = NONE;
  let line: number[] = [];
  /** The part's header block so far, as bytes (latin1): appended to, searched only where it grew. */
  let headerText = '';
  let parts = 0;
  /** The content of the textField part being read, then until busboy reads it (takeFieldFile); or of the unread part being read. */
  let capturing: Buffer[] | undefined;
  /** The most bytes of the part being read that are kept. */
  let captureLimit = 0;
  /** The part being read when no form reader reads it; `tooLarge`: past the bytes its reader asked for. */
  let unread: { part: Omit<UnreadPart, 'content'>; tooLarge: boolean } | undefined;
  const captured = new Map<number, Buffer[]>();
  let capturedBytes = 0;
  /** Before the first delimiter: what busboy skips as the preamble. */
  let inPreamble = true;
  /** File parts as formidable reads them, by part, where busboy reads them otherwise (takeFileReading). */
  const fileReadings = new Map<number, FormidableFileReading>();

  const fail = (why: string) => {
    problem ??= why;
    state = 'done';
  };

  /** A delimiter's line is complete (`tail` is what followed `--boundary`, without the LF). */
  const endLine = (tail: string, endedWithLf: boolean) => {
    if (tail.startsWith('--')) {
      // The close delimiter; PHP reads on after it, to a part behind any line `--boundary`.
      if (tail.length > MAX_BOUNDARY_LINE_TAIL || !EPILOGUE.test(tail.slice(2))) return fail('something after the close delimiter');
      state = 'epilogue';
      return;
    }
    const withoutCr = tail.endsWith('\r') ? tail.slice(0, -1) : tail;
    // `--boundaryX`: busboy ends the part there and drops the rest, a backend keeps it.
    if (!TRANSPORT_PADDING.test(withoutCr)) return fail('the boundary inside a part');
    if (!endedWithLf) return fail('a body that ends on a boundary line');
    if (withoutCr !== '') return fail('a boundary line with transport padding');
    if (!tail.endsWith('\r')) return fail('a boundary line ending in a bare line feed');
    state = 'headers';
    headerText = '';
  };

  const onData = (data: Buffer, start: number, end: number): void => {
    if (state === 'done' || start >= end) return;
    if (state === 'data') {
      if (inPreamble && preambleDashLine(data, start, end, before2, before1))
        return fail('a line starting with "--" in the preamble (Jetty, under a boundary it cannot find, reads parts there)');
      if (capturing !== undefined) {
        capturing.push(Buffer.from(data.subarray(start, end)));
        capturedBytes += end - start;
        // Past busboy's field limit the body is refused (a field is too large): nothing to scan.
        // (+ 2: the delimiter's CRLF, taken off at the delimiter.)
        if (capturedBytes > captureLimit + 2) {
          capturing = undefined;
          if (unread !== undefined) unread.tooLarge = true;
        }
      }
      before2 = end - start >= 2 ? (data[end - 2] as number) : before1;
      before1 = data[end - 1] as number;
      return;
    }
    if (state === 'epilogue') {
      for (let i = start; i < end; i++) if (!EPILOGUE_BYTES.has(data[i] as number)) return fail('something after the close delimiter');
      return;
    }
    if (state === 'line') {
      const lf = data.indexOf(LF, start);
      const stop = lf === -1 || lf >= end ? end : lf;
      for (let i = start; i < stop && line.length <= MAX_BOUNDARY_LINE_TAIL; i++) line.push(data[i] as number);
      if (stop === end) {
        // A long line is decided by its start, as a short one by the whole: split from its line
        // feed by a chunk boundary, it was taken for content while busboy dropped it.
        if (line.length > MAX_BOUNDARY_LINE_TAIL) endLine(Buffer.from(line).toString('latin1'), true);
        return;
      }
      endLine(Buffer.from(line).toString('latin1'), true);
      return onData(data, stop + 1, end);
    }
    // headers: up to the blank line
    const before = headerText.length;
    headerText += data.toString('latin1', start, end);
    // No headers at all, or the headers, then the blank line (which may straddle two pieces).
    const blank = headerText.startsWith('\r\n') ? 0 : headerText.indexOf('\r\n\r\n', Math.max(0, before - 3));
    if (blank === -1) {
      if (headerText.length > MAX_HEADER_BYTES) fail('a part header block over 16 KiB');
      return;
    }
    const {
      problem: why,
      read,
      textField: capture,
      unread: unreadPart,
      formidable: fileReading,
    } = readPartHeaders(headerText.slice(0, blank), formData);
    if (why !== undefined) return fail(why);
    if (!read && refuseUnread) return fail('a part that is not form-data, which is not inspected (send the parts as multipart/form-data)');
    if (read) parts++;
    if (read && fileReading !== undefined) fileReadings.set(parts, fileReading);
    if (read && capture && maxFieldBytes !== undefined) {
      capturing = [];
      captureLimit = maxFieldBytes;
    }
    if (unreadPart !== undefined && unreadParts !== undefined) {
      unread = { part: unreadPart, tooLarge: false };
      if (unreadParts.maxContentBytes !== undefined) {
        capturing = [];
        captureLimit = unreadParts.maxContentBytes;
      }
    }
    capturedBytes = 0;
    state = 'data';
    // The header block's own CRLF is not the line break a delimiter needs before it.
    before2 = NONE;
    before1 = NONE;
    // The part's content may start in this same piece.
    const headerEnd = blank === 0 ? 2 : blank + 4;
    onData(data, end - (headerText.length - headerEnd), end);
  };

  /** `--boundary` was found: a delimiter only after a CRLF in content; what it is, its line tells. */
  const onDelimiter = () => {
    if (state === 'done') return;
    if (state === 'headers') return fail('a part header block that holds a boundary');
    if (state === 'epilogue') return fail('the boundary after the close delimiter (PHP reads a part there)');
    // Two on one line: the second is not after a line break.
    if (state === 'line') return fail('the boundary inside a part');
    if (before2 !== CR || before1 !== LF) {
      if (before1 === LF) return fail('the boundary after a bare line feed (PHP ends a part there)');
      if (before1 === CR) return fail('the boundary after a bare carriage return (Werkzeug ends a part there)');
      return fail(before1 === NONE ? 'a part header block that holds a boundary' : 'the boundary inside a line of content');
    }
    if (unread !== undefined) {
      const { part, tooLarge } = unread;
      const content = tooLarge ? 'too large' : capturing && Buffer.concat(withoutLast(capturing, 2));
      unread = undefined;
      capturing = undefined;
      unreadParts?.onPart(content === undefined ? part : { ...part, content });
    }
    // The captured part ends here as busboy sees it, which reads the field at this same match.
    if (capturing !== undefined) {
      captured.set(parts, withoutLast(capturing, 2));
      capturing = undefined;
    }
    inPreamble = false;
    state = 'line';
    line = [];
  };

  const search = new StreamSearch(Buffer.from(`--${boundary}`, 'latin1'), (isMatch, data, start, end) => {
    if (data !== undefined) onData(data, start, end);
    if (isMatch) onDelimiter();
  });

  // The first delimiter needs no line break before it (busboy starts the same way).
  search.push(Buffer.from('\r\n'));
  let ended = false;
  return {
    push(chunk) {
      if (state !== 'done') search.push(chunk);
    },
    problem() {
      // The body's last bytes, held back while they might begin `--boundary` (`--` after `--boundary`).
      if (!ended) search.destroy();
      ended = true;
      if (state === 'line' && problem === undefined) endLine(Buffer.from(line).toString('latin1'), false);
      return problem;
    },
    parts: () => parts,
    takeFieldFile(index) {
      const content = captured.get(index);
      captured.delete(index);
      // Parts busboy skipped (the body is refused for it) are not kept either.
      for (const key of captured.keys()) if (key < index) captured.delete(key);
      return content;
    },
    takeFileReading(index) {
      const reading = fileReadings.get(index);
      for (const key of fileReadings.keys()) if (key <= index) fileReadings.delete(key);
      return reading;
    },
  };
}
