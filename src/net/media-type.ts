/** An HTML form's body type: what Rack, PHP, Express's urlencoded parser and validation read as fields. */
export const FORM_MEDIA_TYPE = 'application/x-www-form-urlencoded';

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

/**
 * The parameters of a header value of the form `token; name=value; name="quoted"` (Content-Type,
 * Content-Disposition), in order: names in lower case, quoted values unquoted. Quoted values may
 * hold `;` and `=`.
 */
export function headerParameters(value: string): [string, string][] {
  const params: [string, string][] = [];
  let i = value.indexOf(';');
  if (i === -1) return params;
  while (i < value.length) {
    // At a ";": the parameter's name runs to "=" (or the next ";").
    let j = i + 1;
    while (j < value.length && value[j] !== '=' && value[j] !== ';') j++;
    const name = value
      .slice(i + 1, j)
      .trim()
      .toLowerCase();
    let parameterValue = '';
    if (value[j] === '=') {
      j++;
      while (value[j] === ' ' || value[j] === '\t') j++;
      if (value[j] === '"') {
        for (j++; j < value.length && value[j] !== '"'; j++) {
          if (value[j] === '\\') j++;
          parameterValue += value[j] ?? '';
        }
        j++;
      }
      const rest = j;
      while (j < value.length && value[j] !== ';') j++;
      parameterValue += value.slice(rest, j).trim();
    }
    if (name !== '') params.push([name, parameterValue]);
    i = j;
  }
  return params;
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

const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)/i;
/**
 * Charsets in which every ASCII character is its own byte, and no other byte sequence reads as
 * one: what is inspected as UTF-8 holds the same ASCII text the backend decodes.
 */
const ASCII_COMPATIBLE = /^(?:utf-?8|(?:us-)?ascii|iso[-_]?8859[-_]?\d{1,2}|latin-?[1-9]|windows-125\d|cp125\d)$/;

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
export function unreadableCharset(contentType: string | string[] | undefined): string | undefined {
  const value = Array.isArray(contentType) ? contentType[0] : contentType;
  const charset = value === undefined ? undefined : CHARSET.exec(value)?.[1]?.toLowerCase();
  return charset === undefined || isAsciiCompatibleCharset(charset) ? undefined : charset;
}
