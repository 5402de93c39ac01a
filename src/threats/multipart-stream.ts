/**
 * A multipart/form-data body taken apart while it arrives (busboy), for the stages that look
 * inside one: the waf (text fields, file names) and the malware scanner (each file on its own).
 * File names are kept as sent (`preservePath`), not reduced to busboy's basename.
 */
import busboy from 'busboy';
import { Readable } from 'node:stream';
import {
  extendedParameter,
  hasStrayBoundary,
  headerParameters,
  isAsciiCompatibleCharset,
  mediaTypeOf,
  MULTIPART_MEDIA_TYPE,
  unreadableCharset,
} from '../net/media-type.js';
import { createMultipartFramingCheck, type FormidableFileReading, type UnreadPart } from './multipart-framing.js';

export interface MultipartHandlers {
  /** A text field; `mimeType` is its part's Content-Type (`text/plain` when it has none). */
  onField?(name: string, value: string, mimeType: string): void;
  /**
   * A file part; its content must be consumed (or resumed) for parsing to go on. `named`: it has a
   * file name (`filename=""` too); busboy also takes an application/octet-stream part without one
   * for a file, which Werkzeug, PHP, Spring and Go read as a text field. `formidable`: how
   * formidable reads the part otherwise (its file name), if it does
   * (src/threats/formidable-readings.ts).
   */
  onFile(name: string, filename: string, content: Readable, mimeType: string, named: boolean, formidable?: FormidableFileReading): void;
  /**
   * After its onField, every part busboy reads as a text field, its bytes as sent (which the value
   * is not): other readers read some of them as files (`filename=""`, a type other than
   * text/plain), and a backend may store any of them as one.
   */
  onFieldFile?(name: string, content: Readable): void;
  /**
   * The body is refused when it holds a part no form reader reads (in a multipart type other than
   * form-data, a part whose disposition is not form-data): the malware scan, which would pass it on
   * unscanned — a multipart/related upload's file part reached the backend so. (The waf reads such
   * parts as Rack does, as fields: onUnreadPart; an OData $batch of application/http parts passes.)
   */
  readonly refuseUnreadParts?: boolean;
  /**
   * A part no form reader here reads (in a multipart type other than form-data, one whose
   * disposition is not form-data), as Rack 2 reads it, once its content has ended: Rack reads
   * every part of every multipart type as a form field, named by its Content-Disposition's `name`
   * whatever the disposition type, else by its Content-ID (src/threats/rack-part-name.ts).
   */
  onUnreadPart?(part: UnreadPart): void;
  /** onUnreadPart is given each such part's content too, within the field size limit (`maxFieldBytes`). */
  readonly readUnreadContent?: boolean;
}

export interface MultipartStream {
  write(chunk: Buffer): void;
  /** Resolves once every part has been parsed; undefined, or why the body is not valid multipart. */
  end(): Promise<string | undefined>;
  abort(): void;
}

/**
 * A part in base64 or quoted-printable (Content-Transfer-Encoding, which RFC 7578 §4.7 deprecates
 * for forms and browsers never send): busboy hands its bytes over as sent, while a backend whose
 * parser decodes it (Python's email package does) reads what the waf and the scan never saw.
 */
function transferEncodingProblem(encoding: string): string | undefined {
  const e = encoding.toLowerCase();
  return e === '7bit' || e === '8bit' || e === 'binary' ? undefined : `a part in ${e.slice(0, 40)} transfer encoding`;
}

/**
 * A charset the parts may be read in that the readers here would not read them in. busboy decodes a
 * text part in its own charset when it can (UTF-8, Latin-1, UTF-16LE) and otherwise gives no value
 * at all — an `ibm037` or `shift_jis` part whose bytes a backend decodes would reach it uninspected.
 * And parts without a charset of their own are read as UTF-8, while Jetty reads them in the
 * charset of the body's Content-Type, or of a `_charset_` part (the HTML form convention), a field
 * or a file to busboy.
 */
function charsetProblem(charset: string | undefined): string {
  return `a part in ${charset === undefined ? 'a charset' : `charset ${charset.slice(0, 40)}`} that cannot be inspected`;
}

/** The error is the parser's too, and reported once, as the body's problem. */
function ignoreStreamError(): void {}

/** A body not parsed at all, for a reason known from its Content-Type alone. */
function unparsed(problem: string): MultipartStream {
  return { write() {}, end: () => Promise.resolve(problem), abort() {} };
}

/**
 * A parser, or undefined when the Content-Type has no usable boundary. Any `multipart/*` body is
 * read as form data (busboy reads only multipart/form-data): Spring, by default, and Tomcat read
 * the form-data parts of a multipart/mixed body as a form; its other parts every reader skips.
 */
export function createMultipartStream(
  contentType: string,
  limits: { maxParts: number; maxFieldBytes: number },
  handlers: MultipartHandlers,
): MultipartStream | undefined {
  // PHP, Rack or Mojolicious would split the body at another boundary than busboy
  // (hasStrayBoundary): parts seen here would not be the parts the backend reads.
  if (hasStrayBoundary(contentType))
    return unparsed(
      '"boundary" elsewhere in its Content-Type than as its boundary parameter, or a boundary another reader takes otherwise ("\\", "," or ";" in it, or unquoted with a character outside RFC 2046\'s)',
    );
  // `charset*0=utf-; charset*1=7`: Python's email parser joins it into a charset unread here.
  if (extendedParameter(contentType) !== undefined) return unparsed('an RFC 2231 extended parameter in its Content-Type');
  const formData = mediaTypeOf(contentType) === MULTIPART_MEDIA_TYPE;
  const parameters = contentType.indexOf(';');
  let parser: ReturnType<typeof busboy>;
  try {
    parser = busboy({
      headers: { 'content-type': formData || parameters === -1 ? contentType : `multipart/form-data${contentType.slice(parameters)}` },
      preservePath: true,
      // Names and file names as browsers send them (UTF-8, RFC 7578 §5.1), so the waf reads them as
      // the backend does, full-width forms included; busboy's default reads their bytes as Latin-1.
      defParamCharset: 'utf8',
      // busboy reports its limit once the count reaches it, even with no part after: + 1, so that
      // `maxParts` parts are read and only one more is too many.
      limits: { parts: limits.maxParts + 1, fieldSize: limits.maxFieldBytes },
    });
  } catch {
    return undefined;
  }
  // What busboy reads as the boundary (it has refused a Content-Type without one above).
  const boundary = headerParameters(contentType).find(([name]) => name === 'boundary')?.[1];
  if (boundary === undefined) return undefined;
  const bodyCharset = unreadableCharset(contentType);
  let problem: string | undefined = bodyCharset === undefined ? undefined : charsetProblem(bodyCharset);
  /** Fields and files busboy gave: as many as the parts the framing check delimits, or busboy skipped one. */
  let read = 0;
  const done = new Promise<string | undefined>((resolve) => {
    parser.on('close', () => resolve(problem));
    parser.on('error', (err: Error) => resolve(problem ?? err.message));
  });
  parser.on('partsLimit', () => (problem ??= 'too many parts'));
  parser.on('fieldsLimit', () => (problem ??= 'too many parts'));
  parser.on('filesLimit', () => (problem ??= 'too many parts'));
  /**
   * A reader's own failure refuses the body rather than escaping: these run inside busboy's write,
   * outside every caller's try, so a throw there was an uncaught exception that ended the process.
   */
  const guarded = (read: () => void) => {
    try {
      read();
    } catch (err) {
      problem ??= `a part could not be read (${(err as Error).message})`;
    }
  };
  const onUnreadPart = handlers.onUnreadPart?.bind(handlers);
  // Only a reader that scans such parts has them kept (the waf and validation read the field).
  const framing = createMultipartFramingCheck(
    boundary,
    formData,
    handlers.onFieldFile ? limits.maxFieldBytes : undefined,
    handlers.refuseUnreadParts === true,
    onUnreadPart && {
      onPart: (part) => guarded(() => onUnreadPart(part)),
      maxContentBytes: handlers.readUnreadContent === true ? limits.maxFieldBytes : undefined,
    },
  );
  parser.on('field', (name, value, info) => {
    read++;
    // busboy gives a part without a `name` as one named undefined (the readers' name checks threw
    // on it); PHP skips such a part, and no form sends one.
    if (typeof name !== 'string') return void (problem ??= 'a part without a name');
    // A truncated field would hide its tail from the waf.
    if (info.valueTruncated || info.nameTruncated) problem ??= 'a field is too large';
    problem ??= transferEncodingProblem(info.encoding);
    // busboy gives no value for a part in a charset it cannot decode.
    if (typeof value !== 'string') return void (problem ??= charsetProblem(undefined));
    if (name === '_charset_' && value.trim() !== '' && !isAsciiCompatibleCharset(value)) problem ??= charsetProblem(value);
    guarded(() => handlers.onField?.(name, value, info.mimeType));
    const asFile = framing.takeFieldFile(read);
    // An empty field has nothing to scan.
    if (asFile !== undefined && asFile.some((b) => b.length > 0)) guarded(() => handlers.onFieldFile?.(name, Readable.from(asFile)));
  });
  parser.on('file', (name, content, info) => {
    read++;
    // A body that breaks off inside a file part destroys the part's stream with busboy's error,
    // which `end()` reports as the body's problem: unheard here, it was an uncaught exception that
    // ended the process.
    content.on('error', ignoreStreamError);
    if (typeof name !== 'string') {
      problem ??= 'a part without a name';
      return void content.resume();
    }
    problem ??= transferEncodingProblem(info.encoding);
    // Jetty takes the form's charset from the part named `_charset_` whether it has a file name or
    // not (getPart), and busboy makes a file of one with a file name or typed
    // application/octet-stream: its charset, unread here, went unchecked. No form sends one.
    if (name === '_charset_') problem ??= 'a _charset_ part read as a file, whose charset cannot be checked (send it as a text field)';
    const formidable = framing.takeFileReading(read);
    guarded(() =>
      handlers.onFile(name, info.filename ?? '', content, (info.mimeType ?? '').toLowerCase(), info.filename !== undefined, formidable),
    );
    // Read to its end whatever the reader did, or busboy waits on it for good.
    if (problem !== undefined) content.resume();
  });
  return {
    write(chunk) {
      if (parser.destroyed) return;
      framing.push(chunk);
      parser.write(chunk);
    },
    end() {
      if (!parser.destroyed) parser.end();
      // A part busboy did not see as one, which a more lenient backend parser would; and, whatever
      // the reason, a part it skipped (busboy drops a part silently: a disposition it cannot parse,
      // none, header lines past its limit), which no stage saw and the backend may read.
      return done.then((found) => {
        const why = found ?? framing.problem();
        if (why !== undefined) return why;
        const delimited = framing.parts();
        return delimited === read ? undefined : `a part the parser did not read (${read} of ${delimited} read)`;
      });
    },
    abort() {
      parser.destroy();
    },
  };
}
