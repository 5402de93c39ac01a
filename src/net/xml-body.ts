/**
 * An XML body as an XML parser reads it (saxes, strict XML 1.0): the character data and attribute
 * values, with character references and the predefined entities decoded, each under its element
 * path (`/order/note`, `/order/@id`), and the document type declaration if there is one. Read as
 * raw text, `&#39;` would hide a quote, and the markup itself looks like XSS to libinjection.
 *
 * An element's text is read as parsers hand it to the application, never piece by piece: its own
 * text and CDATA sections joined (`UNI<!---->ON`, `UNI<![CDATA[ON]]>`, `UNI<?x?>ON` and `UNI<b/>ON`
 * are `UNION` to ElementTree's `.text`, DOM's `textContent` and .NET's `InnerText`), and, when
 * it has child elements with text, all the text inside it joined as well (`textContent`,
 * `itertext()`: `UNI<b>ON</b>` is `UNION`). Comments are not text to any of them.
 */
import { SaxesParser } from 'saxes';
import { contentStart, isAsciiCompatibleCharset, isXmlMediaType } from './media-type.js';

export interface XmlReading {
  /**
   * [path, text] in document order of the elements' ends (attributes at their starts): an element's
   * own text (`/order/note`), all the text inside it (`/order#text`, only when that differs from
   * what its own text and a single child already gave), attribute names and values, instructions.
   */
  readonly strings: [string, string][];
  /** The DOCTYPE's contents (`r [<!ENTITY …>]`), when the document has one. */
  readonly doctype: string | undefined;
  /** Why a strict parser refuses the document, or undefined. */
  readonly error: string | undefined;
  /**
   * Reading stopped at a limit: elements nested deeper than `maxDepth`, more than `maxStrings`
   * strings, or more than `maxNestedText` characters of text read again inside enclosing elements.
   */
  readonly tooLarge: 'depth' | 'entries' | 'text' | undefined;
  /** The characters of `#text` strings read: what counts against `maxNestedText`. */
  readonly nestedText: number;
}

export interface XmlLimits {
  readonly maxDepth: number;
  readonly maxStrings: number;
  /**
   * The most characters of `#text` strings (all the text inside an element, read again at each
   * enclosing element that joins more than one piece): nested `<a>x<a>x<a>x…` would otherwise be
   * read depth × length times over.
   */
  readonly maxNestedText: number;
}

class LimitReached extends Error {
  constructor(readonly what: 'depth' | 'entries' | 'text') {
    super(what);
  }
}

/** An open element: its own text, and all the text inside it so far. */
interface Open {
  readonly path: string;
  /** Its text and CDATA sections, joined. */
  own: string;
  /** Whether own has anything but white space. */
  ownFilled: boolean;
  /** Its own text and its children's text, in document order (textContent). */
  all: string;
  /** Children whose text (all of it) has anything but white space. */
  filledChildren: number;
}

const FILLED = /\S/;

/**
 * The document read as a parser reads it; parsing stops at the first error or limit. Each open
 * element's path is kept (not joined again per tag), so deep nesting costs linear time; text is
 * joined with `+` (V8 keeps a concatenation as a rope, no copy), so text passed up a deep chain of
 * elements is not copied at each level, and only the `#text` strings read count against
 * `maxNestedText`. `omitted(path)`: an element whose text its ancestors leave out (a parameter the
 * route does not inspect: its text would be inspected anyway in theirs).
 */
export function readXml(text: string, limits: XmlLimits, omitted?: (path: string) => boolean): XmlReading {
  const strings: [string, string][] = [];
  const open: Open[] = [{ path: '', own: '', ownFilled: false, all: '', filledChildren: 0 }];
  let doctype: string | undefined;
  let error: string | undefined;
  let tooLarge: 'depth' | 'entries' | 'text' | undefined;
  let nestedText = 0;
  const add = (path: string, value: string) => {
    if (strings.length >= limits.maxStrings) throw new LimitReached('entries');
    strings.push([path, value]);
  };
  const current = () => open[open.length - 1] as Open;
  /** The element's strings, once it has ended; its text goes into its parent's. */
  const close = (el: Open) => {
    if (el.ownFilled) add(el.path, el.own);
    // Joined with a child's text, or with another child's: text no string read so far holds.
    if (el.filledChildren > 1 || (el.filledChildren === 1 && el.ownFilled)) {
      nestedText += el.all.length;
      if (nestedText > limits.maxNestedText) throw new LimitReached('text');
      add(`${el.path}#text`, el.all);
    }
  };
  const parser = new SaxesParser({ xmlns: false, position: false });
  parser.on('doctype', (d) => (doctype = d));
  parser.on('opentag', (tag) => {
    if (open.length > limits.maxDepth) throw new LimitReached('depth');
    const path = `${current().path}/${tag.name}`;
    open.push({ path, own: '', ownFilled: false, all: '', filledChildren: 0 });
    for (const [name, value] of Object.entries(tag.attributes)) {
      add(`${path}/@${name}#name`, name);
      add(`${path}/@${name}`, value);
    }
  });
  parser.on('closetag', () => {
    if (open.length === 1) return;
    const el = open.pop() as Open;
    close(el);
    if (omitted?.(el.path)) return;
    const parent = current();
    parent.all += el.all;
    if (el.ownFilled || el.filledChildren > 0) parent.filledChildren++;
  });
  const onText = (t: string) => {
    const el = current();
    el.own += t;
    el.all += t;
    if (!el.ownFilled && FILLED.test(t)) el.ownFilled = true;
  };
  parser.on('text', onText);
  parser.on('cdata', onText);
  parser.on('processinginstruction', (pi) => add(`${current().path}#pi`, `${pi.target} ${pi.body}`));
  parser.on('error', (err) => {
    error ??= err.message;
  });
  try {
    parser.write(text).close();
    // Text outside the root element, which a strict parser refuses anyway.
    if (open.length === 1) close(open[0] as Open);
  } catch (err) {
    if (err instanceof LimitReached) tooLarge = err.what;
    else error ??= (err as Error).message;
  }
  return { strings, doctype, error, tooLarge, nestedText };
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
