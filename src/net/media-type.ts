import { WardenError } from '../errors.js';

/** An HTML form's body type: what Rack, PHP, Express's urlencoded parser and validation read as fields. */
export const FORM_MEDIA_TYPE = 'application/x-www-form-urlencoded';
export const MULTIPART_MEDIA_TYPE = 'multipart/form-data';

/**
 * A media type (from mediaTypeOf) backends read as JSON: `application/json`, any `+json`, and any
 * other `/json` (`text/json`: ASP.NET Core's JSON input formatter takes it; Laravel reads every type
 * holding `/json` or `+json` as JSON). Read as text instead, `\u0027` would hide a quote.
 */
export function isJsonMediaType(mime: string): boolean {
  return mime.includes('/json') || mime.includes('+json');
}

/** Any `multipart/*`: Spring (by default) and Tomcat read a multipart/mixed body's form-data parts as a form. */
export function isMultipartMediaType(mime: string): boolean {
  return mime.startsWith('multipart/');
}

/**
 * Where a body's content starts: the index of its first byte after a UTF-8 byte order mark and
 * white space (the body's length when there is none). What it opens with tells a JSON document
 * (`{`, `[`) or an XML one (`<`) apart, whatever the Content-Type says.
 */
export function contentStart(body: Buffer): number {
  let i = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x09 || body[i] === 0x0a || body[i] === 0x0d)) i++;
  return i;
}

/**
 * A body whose content opens a JSON object or array (after a byte order mark and white space),
 * whatever its Content-Type: a Go handler decodes the body as JSON whatever the type says
 * (`json.NewDecoder(r.Body).Decode`), and no browser sends a form whose first field name starts
 * with `{` or `[`.
 */
export function opensJsonDocument(body: Buffer): boolean {
  const first = body[contentStart(body)];
  return first === 0x7b || first === 0x5b;
}

/** XML: `application/xml`, `text/xml` and any `+xml` (SOAP, Atom, SAML). */
export function isXmlMediaType(mime: string): boolean {
  return mime.endsWith('/xml') || mime.endsWith('+xml');
}

/**
 * The bodies backends parse into named fields, multipart aside: a form, a body without a
 * Content-Type (Rack reads a POST's as a form; a Go handler decodes JSON whatever the type says),
 * and JSON. The `_method` check and the waf read these.
 */
export function isFieldBody(mime: string): boolean {
  return mime === FORM_MEDIA_TYPE || mime === '' || isJsonMediaType(mime);
}

/** The last Content-Type read, and its media type: clients of a service send the same few, and several stages ask per request. */
let lastContentType = '';
let lastMediaType = '';

/** The media type of a Content-Type header: lower case, without parameters ("" when absent). */
export function mediaTypeOf(contentType: string | string[] | number | undefined): string {
  if (typeof contentType === 'string') {
    if (contentType === lastContentType) return lastMediaType;
    lastMediaType = mediaTypeOfValue(contentType);
    lastContentType = contentType;
    return lastMediaType;
  }
  return mediaTypeOfValue(Array.isArray(contentType) ? (contentType[0] ?? '') : String(contentType ?? ''));
}

function mediaTypeOfValue(value: string): string {
  const semicolon = value.indexOf(';');
  return (semicolon === -1 ? value : value.slice(0, semicolon)).trim().toLowerCase();
}

/** A parameter of a header value: `start` is where its name begins, `end` the `;` after it (or the end). */
interface ParameterSpan {
  readonly name: string;
  readonly value: string;
  readonly start: number;
  readonly end: number;
}

function parameterSpans(value: string): ParameterSpan[] {
  const params: ParameterSpan[] = [];
  let i = value.indexOf(';');
  if (i === -1) return params;
  while (i < value.length) {
    // At a ";": the parameter's name runs to "=" (or the next ";").
    let j = i + 1;
    while (j < value.length && value[j] !== '=' && value[j] !== ';') j++;
    const rawName = value.slice(i + 1, j);
    const start = i + 1 + (rawName.length - rawName.trimStart().length);
    const name = rawName.trim().toLowerCase();
    let parameterValue = '';
    if (value[j] === '=') {
      j++;
      while (value[j] === ' ' || value[j] === '\t') j++;
      if (value[j] === '"') {
        // Copied in slices between escapes, not a character at a time (1 MiB values are timed).
        let from = ++j;
        for (; j < value.length && value[j] !== '"'; j++) {
          if (value[j] === '\\') {
            parameterValue += value.slice(from, j);
            from = ++j;
          }
        }
        parameterValue += value.slice(from, j);
        j++;
      }
      const rest = j;
      while (j < value.length && value[j] !== ';') j++;
      parameterValue += value.slice(rest, j).trim();
    }
    if (name !== '') params.push({ name, value: parameterValue, start, end: j });
    i = j;
  }
  return params;
}

/**
 * The parameters of a header value of the form `token; name=value; name="quoted"` (Content-Type,
 * Content-Disposition), in order: names in lower case, quoted values unquoted. Quoted values may
 * hold `;` and `=`.
 */
export function headerParameters(value: string): [string, string][] {
  return parameterSpans(value).map((p) => [p.name, p.value]);
}

/**
 * The name of a parameter a Content-Type header gives twice (`multipart/form-data; boundary=a;
 * boundary=b`), or undefined. MIME does not allow it, and parsers disagree on which one counts: a
 * multipart body split at one boundary by the sidecar (validation, the malware scan) and at the
 * other by the backend would hide parts from the scan.
 */
export function repeatedParameter(contentType: string): string | undefined {
  const first = contentType.indexOf(';');
  if (first === -1 || contentType.indexOf(';', first + 1) === -1) return undefined;
  const seen = new Set<string>();
  for (const [name] of headerParameters(contentType)) {
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}

/**
 * Whether PHP may take another boundary from a multipart Content-Type than busboy (every multipart
 * reader here), which takes the parameter named `boundary`. PHP takes the first "boundary" anywhere
 * in the header (rfc1867.c: strstr, lower case first, then any case) and the value after the next
 * "=", so `xboundary=AAA; boundary=BBB` is AAA to PHP, which then reads parts no reader here saw.
 * "boundary" is allowed only as that one parameter's name, and in its value (browsers send
 * `----WebKitFormBoundary…`) unless the value's lower-case "boundary" comes before a name spelled
 * otherwise. And PHP ends a quoted boundary at the next `"`, escapes unread: `"a\"b"` is `a\` to
 * PHP and `a"b` to busboy (RFC 2046 allows neither character in a boundary). Nor does PHP trim
 * the value: it is what follows the "=" up to the closing quote, or else up to the next "," or
 * ";", white space kept, so `boundary=BBB ;charset=utf-8` is `BBB ` to PHP and `BBB` to busboy
 * (phpBoundaryValue). Rack 2 (Rails, Sinatra) ends even a quoted boundary at a "," or ";"
 * (`\Amultipart/.*boundary="?([^";,]+)`): `boundary="AA,BB"` is `AA` to it, so it split the body at
 * `--AA` lines inside what busboy read as one part. Browsers never send either character in one.
 * Mojolicious ends an unquoted boundary at any character outside RFC 2046's (BOUNDARY_CHARACTERS).
 * Jetty 9.4 needs the name in lower case and takes single quotes off the value, and Tomcat decodes
 * an RFC 2047 encoded word (`=?…?=`) in it: the name must be `boundary`, the value neither start
 * nor end with `'`, and hold no `=?`.
 */
export function hasStrayBoundary(contentType: string): boolean {
  if (!/boundary/i.test(contentType)) return false; // no boundary at all: busboy refuses the body
  const own = parameterSpans(contentType).filter((p) => p.name === 'boundary');
  if (own.length !== 1) return true;
  const { start, end, value } = own[0] as ParameterSpan;
  // Jetty 9.4 looks the boundary up with a case-sensitive indexOf("boundary="): under `Boundary=AA`
  // it finds none and splits the body at bare `--` lines, so busboy's preamble was its form.
  // Every client writes the name in lower case.
  if (!contentType.startsWith('boundary', start)) return true;
  // Jetty takes single quotes off it (`'AA'` is AA to it, `'AA'` to busboy: QuotedStringTokenizer
  // unquotes only a value that starts and ends with one), and Tomcat (commons-fileupload's
  // ParameterParser) decodes an RFC 2047 encoded word in it (`"=?UTF-8?Q?AA?="` is AA): both then
  // split the body at `--AA` lines inside a busboy part. No client sends either (Python's email
  // package writes `===============…==`, which passes; http4s's quoted boundaries hold `'` inside,
  // which pass: review rt28, F3).
  if (value.startsWith("'") || value.endsWith("'") || value.includes('=?')) return true;
  if (/boundary/i.test(contentType.slice(0, start)) || /boundary/i.test(contentType.slice(end))) return true;
  if (contentType.slice(start, end).includes('\\')) return true;
  if (value.includes(',') || value.includes(';')) return true; // Rack's boundary ends there
  // Mojolicious reads an unquoted boundary as `[\w'(),.:?\-+/]+`: `boundary=AA!BB` is `AA` to it,
  // and what busboy takes for the preamble (before the first `--AA!BB`) holds its parts. RFC 2046
  // allows no other character (bcharsnospace), and no client sends one (curl, undici, requests,
  // Go, browsers: letters, digits, "-" and "_"). A quoted one it reads whole (`"([^"]+)"`).
  if (contentType[contentType.indexOf('=', start) + 1] !== '"' && !BOUNDARY_CHARACTERS.test(value)) return true;
  // PHP's "boundary" is this parameter's name (checked above): the value it takes must be this one's.
  const php = phpBoundaryValue(contentType, start);
  return php !== undefined && php !== value;
}

/** RFC 2046 §5.1.1 `bcharsnospace`; unquoted, only its token characters get past PARAMETERS. */
const BOUNDARY_CHARACTERS = /^[0-9A-Za-z'()+_,\-./:=?]+$/;

/**
 * The boundary PHP takes once it has found "boundary" at `at` (rfc1867.c): what follows the next
 * "=", up to the closing quote when it opens with one, else up to the next "," or ";", untrimmed.
 * Undefined where PHP finds none (no "=", a quote never closed): PHP then reads no parts at all.
 */
function phpBoundaryValue(contentType: string, at: number): string | undefined {
  const eq = contentType.indexOf('=', at);
  if (eq === -1) return undefined;
  const rest = contentType.slice(eq + 1);
  if (rest.startsWith('"')) {
    const close = rest.indexOf('"', 1);
    return close === -1 ? undefined : rest.slice(1, close);
  }
  const stop = rest.search(/[,;]/);
  return stop === -1 ? rest : rest.slice(0, stop);
}

/** RFC 9110 §8.3.1: `type "/" subtype`, both tokens (§5.6.2). */
const MEDIA_TYPE = /^[!#$%&'*+.^_\x60|~0-9a-z-]+\/[!#$%&'*+.^_\x60|~0-9a-z-]+$/i; // \x60: a backtick
const JSON_IN_PARAMETERS = /[/+]json/i;
/**
 * Body types a backend may find inside a longer media type: Fastify (4) picks a parser by substring
 * (`contentType.indexOf(parserType) !== -1`), so `xapplication/x-www-form-urlencoded`,
 * `application/x-www-form-urlencodedx` and `application/x-www-form-urlencoded+json` are forms to
 * @fastify/formbody, and `text/plain+json` is text to Fastify. `application/json` is not listed:
 * every type holding it is JSON here too (isJsonMediaType), and `application/json-patch+json`
 * (RFC 6902) is one.
 */
const EMBEDDED_TYPE = /application\/x-www-form-urlencoded|multipart\/form-data|text\/plain/g;

/**
 * A body type the whole Content-Type value names other than its media type, or undefined.
 * Mojolicious reads a form whenever `application/x-www-form-urlencoded` appears anywhere in the
 * header, and `multipart/form-data` parts whenever that does, parameters and quoted strings
 * included: under `text/plain; x="application/x-www-form-urlencoded"` the waf read raw text and
 * Mojolicious decoded `note=1%27%20UNION…`. It reads a multipart body under any type matching
 * `/multipart.*boundary\s*=/i` (`image/png; a=multipart; boundary=AA`): "multipart" then
 * "boundary" in a type that is not multipart is refused, "=" or not. Two searches, each linear.
 */
function embeddedType(value: string, mime: string): string | undefined {
  const lower = value.toLowerCase();
  EMBEDDED_TYPE.lastIndex = 0;
  for (let m = EMBEDDED_TYPE.exec(lower); m !== null; m = EMBEDDED_TYPE.exec(lower)) if (m[0] !== mime) return m[0];
  if (isMultipartMediaType(mime)) return undefined;
  const multipart = lower.indexOf('multipart');
  return multipart !== -1 && lower.includes('boundary', multipart + 9) ? 'multipart' : undefined;
}

/**
 * RFC 9110 §5.6.6: what follows the media type, `*( OWS ";" OWS [ token "=" ( token /
 * quoted-string ) ] )`, white space at its end allowed. Empty parameters (`;;`, a trailing `;`)
 * are in the grammar; white space around "=" is not. The white space after a `;` belongs to its
 * parameter only: written as the grammar is, it could also be the next `;`'s, and `; ; ; …`
 * followed by a stray `"` was tried every way (exponential: one Content-Type held the process).
 */
const PARAMETERS =
  /^(?:[\t ]*;(?:[\t ]*[!#$%&'*+.^_\x60|~0-9a-z-]+=(?:[!#$%&'*+.^_\x60|~0-9a-z-]+|"(?:[\t !\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?)*[\t ]*$/i;

/**
 * Whether what follows a header value's media type (from its first ";") is RFC 9110 parameter
 * syntax (PARAMETERS; linear on any input); true without parameters. A parser that cannot read
 * them gives up on them where another reads on: busboy then decodes a multipart part as UTF-8
 * while Jetty still finds a `charset=` in `text/plain;; charset=ibm037`.
 */
export function hasParameterSyntax(value: string): boolean {
  const semicolon = value.indexOf(';');
  return semicolon === -1 || PARAMETERS.test(value.slice(semicolon));
}

let lastChecked: string | undefined;

/**
 * Why a Content-Type may be read as another body type by a backend than by the stages here, or
 * undefined: 400 `ERR_REQUEST_MALFORMED`. The stages choose how to read a body by `mediaTypeOf`
 * (the text before the first ";"); backends cut elsewhere or look further:
 *
 * - a media type that is not `type/subtype`: PHP ends it at ";", "," or a space, Rack at ";" or
 *   ",", so `application/x-www-form-urlencoded,x` is a form to them and no form here;
 * - `/json` or `+json` in the parameters of a type that is not JSON: Laravel reads any Content-Type
 *   holding either as JSON (`text/plain; x=/json`);
 * - a form, multipart or text type inside a longer one or in the parameters (embeddedType):
 *   Fastify reads `application/x-www-form-urlencoded+json` as a form, the stages here as JSON, and
 *   Mojolicious `text/plain; x="application/x-www-form-urlencoded"`;
 * - a multipart boundary PHP would take from elsewhere, or Rack or Mojolicious would end early
 *   (hasStrayBoundary);
 * - a media range (`application/*`, `*\/*; q=1`, `*\/form-data`): Falcon reads it as an Accept
 *   range and picks its form or multipart handler (isMediaRange);
 * - parameters that are not RFC 9110 syntax (PARAMETERS): Express 4's type-is cannot parse
 *   `application/json;charset="utf-8` (a quote never closed) or `; charset` (no "="), and
 *   body-parser then leaves the body unread, where the checks here read it as JSON;
 * - an RFC 2231 extended or continued parameter (`charset*0=utf-; charset*1=7`): aiohttp joins it
 *   into a charset the checks here never read (extendedParameter);
 * - a JSON or form body in a charset not read as UTF-8 reads it, named anywhere in the header
 *   (415, `content_type.charset`):
 *   validation and the `_method` check read those bodies as UTF-8, and Express's body-parser
 *   decodes the charset named (iconv-lite), so `{"bio":"x+ACIALAAiAHIAbwBsAGUAIgA6ACIAYQBkAG0AaQBu-"}`
 *   in UTF-7 is one string here and `"role":"admin"` there.
 *
 * A Content-Type that is absent or empty is an untyped body, read as such.
 */
export function contentTypeRefusal(contentType: string | string[] | undefined): WardenError | undefined {
  const value = Array.isArray(contentType) ? contentType[0] : contentType;
  if (value === undefined) return undefined;
  // A refusal is an error object of its own each time; only "no problem" is worth remembering.
  if (value === lastChecked) return undefined;
  const problem = contentTypeProblem(value);
  if (problem === undefined) lastChecked = value;
  return problem;
}

function contentTypeProblem(value: string): WardenError | undefined {
  const semicolon = value.indexOf(';');
  const mime = (semicolon === -1 ? value : value.slice(0, semicolon)).trim();
  if (mime === '' && semicolon === -1) return undefined;
  if (!MEDIA_TYPE.test(mime))
    return malformed(
      'content_type.media_type',
      'The Content-Type must start with a media type "type/subtype" (RFC 9110 §8.3.1), parameters after ";": backends that end the type at "," or a space would read another one.',
    );
  const lower = mime.toLowerCase();
  if (isMediaRange(lower))
    return malformed(
      'content_type.media_range',
      'The Content-Type is a media range ("*" as its type or subtype), which is never the type of a body: Falcon matches it as an Accept range and reads application/* or */*; q=1 as a form, */form-data as multipart, where the checks here read it as neither. Send the body\'s own type.',
    );
  const embedded = embeddedType(value, lower);
  if (embedded !== undefined)
    return malformed(
      'content_type.embedded_type',
      `The Content-Type holds "${embedded}" without being it: Fastify (in the media type) or Mojolicious (anywhere) would read the body as ${embedded}, the checks here as the media type it is.`,
    );
  if (semicolon !== -1 && !isJsonMediaType(lower) && JSON_IN_PARAMETERS.test(value.slice(semicolon)))
    return malformed(
      'content_type.json_parameter',
      'The Content-Type names JSON ("/json" or "+json") in its parameters but not as its media type: Laravel would read the body as JSON, the checks here do not.',
    );
  if (isMultipartMediaType(lower) && hasStrayBoundary(value))
    return malformed(
      'content_type.boundary',
      'The multipart Content-Type has "boundary" elsewhere than as its one boundary parameter\'s name, that name not in lower case, a "\\" in that parameter, a "," ";" or "=?" in its value, a "\'" at its start or end, an unquoted value with a character outside RFC 2046\'s (letters, digits, \'()+_,-./:=?), or a value PHP reads otherwise (white space or "," after it): PHP, Rack, Mojolicious, Jetty or Tomcat would split the body at another boundary than the one checked here.',
    );
  if (!hasParameterSyntax(value))
    return malformed(
      'content_type.parameters',
      'The Content-Type parameters must be name=value pairs after ";", each value a token or a closed quoted string (RFC 9110 §5.6.6): backends that cannot parse them read the body otherwise.',
    );
  const extended = semicolon === -1 ? undefined : extendedParameter(value);
  if (extended !== undefined)
    return malformed(
      'content_type.extended_parameter',
      `The Content-Type has an RFC 2231 extended or continued parameter (${JSON.stringify(extended.slice(0, 40))}): aiohttp joins charset*0=utf-; charset*1=7 into a charset the checks here never see. Send plain name=value parameters.`,
    );
  const charset = semicolon !== -1 && isFieldBody(lower) ? unreadableCharset(value) : undefined;
  if (charset !== undefined)
    return new WardenError('ERR_MEDIA_TYPE_UNSUPPORTED', {
      rule: 'content_type.charset',
      detail: `JSON and form bodies are read as UTF-8 here; in ${charset.slice(0, 40) || 'an empty charset'} a backend could read other fields. Send them in UTF-8.`,
    });
  return undefined;
}

/**
 * A media range (RFC 9110 §12.5.1: `*\/*`, `type/*`, and `*\/subtype`, which Falcon's mimeparse
 * reads as one too), from a lower-case `type/subtype`. Falcon picks its request media handler with
 * `mimeparse.best_match(handlers, content_type)`: `application/*` and `*\/*; q=1` are forms to it,
 * `*\/form-data; boundary=…` multipart. A `*` inside a token (`application/x-star*`) is no range.
 */
export function isMediaRange(mime: string): boolean {
  return mime.startsWith('*/') || mime.endsWith('/*');
}

/**
 * The first parameter of a header value named as an RFC 2231 / RFC 8187 extended or continued one
 * (`charset*`, `charset*0`, `charset*0*`: a name ending in `*` or `*` and digits), or undefined.
 * Python's email parser (aiohttp's request Content-Type, a part's headers) joins them:
 * `charset*0=utf-; charset*1=7` is `utf-7` to it, and no `charset` at all to a parser that does
 * not know them. No HTTP client sends one in a Content-Type. Linear: one pass over the value, and
 * each name read from its end.
 */
export function extendedParameter(value: string): string | undefined {
  if (!value.includes('*')) return undefined;
  for (const { name } of parameterSpans(value)) {
    let end = name.length;
    while (end > 0 && name.charCodeAt(end - 1) >= 0x30 && name.charCodeAt(end - 1) <= 0x39) end--;
    if (name[end - 1] === '*') return name;
  }
  return undefined;
}

function malformed(rule: string, detail: string): WardenError {
  return new WardenError('ERR_REQUEST_MALFORMED', { rule, detail });
}

/**
 * Every `charset=` in a header value, wherever it is (a longer name, a quoted value), and what
 * follows it as Mojolicious reads it (`/charset\s*=\s*"?([^"\s;]+)"?/i` over the whole header): it
 * decoded the form fields of `…urlencoded; xcharset=cp37` and `…; x="charset=utf-16le"` as EBCDIC
 * and UTF-16 while the checks here read UTF-8. \x85 is white space to Perl, not to JavaScript.
 * Linear: each `[\s\x85]*` runs over the white space up to the next character that is not.
 */
const ANY_CHARSET = /charset[\s\x85]*=[\s\x85]*"?([^"\s;]*)/gi;
/**
 * Charsets in which every ASCII character is its own byte, and no other byte sequence reads as
 * one: what is inspected as UTF-8 holds the same ASCII text the backend decodes. KOI8-R/U are 8-bit;
 * EUC-JP's lead and trail bytes are all over 0x7f in every decoder. Not Shift_JIS, GBK or Big5,
 * whose trail bytes include ASCII (`\x81\x5c` hides a `\`), nor the names decoders read as them:
 * gb2312 and euc-cn are GBK to browsers, Node and .NET (cp936), euc-kr is UHC (cp949, trail bytes
 * A-Z and a-z) to browsers, Go and .NET.
 */
const ASCII_COMPATIBLE = /^(?:utf-?8|(?:us-)?ascii|iso[-_]?8859[-_]?\d{1,2}|latin-?[1-9]|windows-125\d|cp125\d|koi8-[ru]|(?:x-)?euc-jp)$/;

/** Whether text in this charset (a name, any case) reads the same ASCII as its bytes read as UTF-8. */
export function isAsciiCompatibleCharset(charset: string): boolean {
  return ASCII_COMPATIBLE.test(charset.trim().toLowerCase());
}

/**
 * The charset a Content-Type names when text in it may read differently from the same bytes read
 * as UTF-8: UTF-16 and UTF-32 (`\0<\0s\0…`), EBCDIC (`ibm037`, which ASP.NET decodes form bodies
 * from), UTF-7 (`+ADw-script+AD4-`) and others a backend may decode. Undefined without a charset
 * or with an ASCII-compatible one.
 */
export function unreadableCharset(contentType: string | string[] | undefined, readable = isAsciiCompatibleCharset): string | undefined {
  const value = Array.isArray(contentType) ? contentType[0] : contentType;
  if (value === undefined) return undefined;
  // Two readings, and either one refuses: every `charset=` anywhere (a backend's regex takes the
  // first, `;` or not: Mojolicious), and the parameter as a quote-aware parser reads it
  // (body-parser's `content-type` module). Only the first after a `;` was read, so
  // `x="; charset=utf-8"; charset=utf-16le` was inspected as UTF-8 and decoded as UTF-16 by the
  // backend (docs/adversarial.md defect 96), and `xcharset=cp37` as EBCDIC by Mojolicious.
  ANY_CHARSET.lastIndex = 0;
  for (let m = ANY_CHARSET.exec(value); m !== null; m = ANY_CHARSET.exec(value)) {
    const named = m[1] ?? '';
    if (!readable(named)) return named.toLowerCase();
  }
  if (!value.includes(';')) return undefined;
  for (const { name, value: charset } of parameterSpans(value)) {
    if (name === 'charset' && !readable(charset)) return charset.toLowerCase();
  }
  return undefined;
}

/** libmagic's charsets for content that is not text (`file -bi`): no decoder knows either name. */
const NOT_TEXT = /^(?:binary|unknown-8bit)$/;

/**
 * unreadableCharset for a file part's Content-Type: Falcon's `part.text` decodes a file part in
 * the charset it names as it does a field, so the same charsets are refused, and libmagic's
 * `charset=binary` and `charset=unknown-8bit` (`application/octet-stream; charset=binary`, as a
 * script typing its uploads with `file -bi` sends them), which name no text encoding, pass.
 */
export function unreadableFileCharset(contentType: string): string | undefined {
  return unreadableCharset(contentType, fileCharsetReadable);
}

function fileCharsetReadable(charset: string): boolean {
  return isAsciiCompatibleCharset(charset) || NOT_TEXT.test(charset.trim().toLowerCase());
}
