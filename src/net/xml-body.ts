/**
 * An XML body as an XML parser reads it (saxes, strict XML 1.0): the character data and attribute
 * values, with character references and the predefined entities decoded, each under its element
 * path (`/order/note`, `/order/@id`), and the document type declaration if there is one. Read as
 * raw text, `&#39;` would hide a quote, and the markup itself looks like XSS to libinjection.
 */
import { SaxesParser } from 'saxes';
import { contentStart, isAsciiCompatibleCharset, isXmlMediaType } from './media-type.js';

export interface XmlReading {
  /** [path, text] in document order: element text, CDATA, attribute names and values. */
  readonly strings: [string, string][];
  /** The DOCTYPE's contents (`r [<!ENTITY …>]`), when the document has one. */
  readonly doctype: string | undefined;
  /** Why a strict parser refuses the document, or undefined. */
  readonly error: string | undefined;
  /** Reading stopped at a limit: elements nested deeper than `maxDepth`, or more than `maxStrings` strings. */
  readonly tooLarge: 'depth' | 'entries' | undefined;
}

export interface XmlLimits {
  readonly maxDepth: number;
  readonly maxStrings: number;
}

class LimitReached extends Error {
  constructor(readonly what: 'depth' | 'entries') {
    super(what);
  }
}

/**
 * The document read as a parser reads it; parsing stops at the first error or limit. Each open
 * element's path is kept (not joined again per tag), so deep nesting costs linear time.
 */
export function readXml(text: string, limits: XmlLimits): XmlReading {
  const strings: [string, string][] = [];
  const paths: string[] = [''];
  let doctype: string | undefined;
  let error: string | undefined;
  let tooLarge: 'depth' | 'entries' | undefined;
  const add = (path: string, value: string) => {
    if (strings.length >= limits.maxStrings) throw new LimitReached('entries');
    strings.push([path, value]);
  };
  const parser = new SaxesParser({ xmlns: false, position: false });
  parser.on('doctype', (d) => (doctype = d));
  parser.on('opentag', (tag) => {
    if (paths.length > limits.maxDepth) throw new LimitReached('depth');
    const path = `${paths.at(-1) as string}/${tag.name}`;
    paths.push(path);
    for (const [name, value] of Object.entries(tag.attributes)) {
      add(`${path}/@${name}#name`, name);
      add(`${path}/@${name}`, value);
    }
  });
  parser.on('closetag', () => paths.pop());
  const onText = (t: string) => {
    if (t.trim() !== '') add(paths.at(-1) as string, t);
  };
  parser.on('text', onText);
  parser.on('cdata', onText);
  parser.on('processinginstruction', (pi) => add(`${paths.at(-1) as string}#pi`, `${pi.target} ${pi.body}`));
  parser.on('error', (err) => {
    error ??= err.message;
  });
  try {
    parser.write(text).close();
  } catch (err) {
    if (err instanceof LimitReached) tooLarge = err.what;
    else error ??= (err as Error).message;
  }
  return { strings, doctype, error, tooLarge };
}

/**
 * Whether a document type declaration can make a parser fetch or expand anything: an internal
 * subset (`[<!ENTITY …>]`: XXE, entity expansion) or an external identifier (`SYSTEM "…"`,
 * `PUBLIC "…" "…"`: an external DTD). `<!DOCTYPE order>` alone cannot.
 */
export function isActiveDoctype(doctype: string): boolean {
  return doctype.includes('[') || /\b(?:SYSTEM|PUBLIC)\b/.test(doctype);
}

const DECLARED_ENCODING = /^<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']/;

/**
 * Why an XML body may read differently from its bytes read as UTF-8, or undefined: it does not
 * start (after a UTF-8 byte order mark and white space) with `<`, so it is in UTF-16, UTF-32 or
 * EBCDIC by its first bytes; or its declaration names an encoding that is not ASCII-compatible.
 * Checked whatever charset the Content-Type names: a parser handed the bytes (Java's
 * DocumentBuilder on a stream) reads the declaration, not the header.
 */
export function xmlEncodingProblem(mime: string, body: Buffer): string | undefined {
  if (!isXmlMediaType(mime)) return undefined;
  const i = contentStart(body);
  if (i >= body.length) return undefined;
  if (body[i] !== 0x3c) return 'UTF-16, UTF-32 or EBCDIC (by its first bytes)';
  const declared = DECLARED_ENCODING.exec(body.subarray(i, i + 200).toString('latin1'))?.[1];
  return declared === undefined || isAsciiCompatibleCharset(declared) ? undefined : declared;
}
