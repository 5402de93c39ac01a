/**
 * The framing of a multipart/form-data body as parsers other than busboy may read it. busboy, which
 * every multipart reader of the sidecar uses (src/threats/multipart-stream.ts), is strict where
 * others are lenient, and silently drops what it does not read as a part, so a backend could read
 * a part that the waf, the malware scan, validation and the `_method` check never saw:
 *
 * - a boundary line with transport padding (`--b  \r\n`, which RFC 2046 allows and Go's
 *   mime/multipart reads) or ending in a bare LF: busboy drops the part that follows;
 * - a close delimiter after a bare LF: busboy reads on, others stop there; and a delimiter after the
 *   close delimiter: busboy reads on when it comes in the same chunk;
 * - the delimiter (CRLF, `--`, the boundary) inside a part, followed by other characters: busboy
 *   drops it from the part's content, a backend keeps it;
 * - a part whose Content-Disposition is not `form-data` (busboy skips it; PHP reads its `name`), or
 *   that has none;
 * - a part giving Content-Disposition, Content-Type or Content-Transfer-Encoding twice, or a
 *   disposition parameter twice (busboy takes the first, others the last), or an extended
 *   parameter like `filename*=` (RFC 7578 §4.2 forbids it; busboy prefers it to `filename`, PHP
 *   ignores it);
 * - a form-data part whose own Content-Type is `multipart/*` (RFC 2388 §4.2's multipart/mixed of
 *   files): busboy reads it as one text field (or one file), commons-fileupload (Tomcat, Spring
 *   on Tomcat) reads each of its sub-parts as a file the scan never saw.
 *
 * The checker reads the same bytes as busboy, beside it, and names the first such thing it finds.
 */
import StreamSearch from 'streamsearch';
import { headerParameters } from '../net/media-type.js';

export interface MultipartFramingCheck {
  push(chunk: Buffer): void;
  /** Why the body is ambiguous, or undefined; final once every chunk has been pushed. */
  problem(): string | undefined;
}

/** busboy's own limit on a part's header block (Node's header limit). */
const MAX_HEADER_BYTES = 16 * 1024;
/** How much of a line after a boundary is looked at: a padded boundary line is short. */
const MAX_BOUNDARY_LINE_TAIL = 256;
const CR = 0x0d;
const LF = 0x0a;
const TRANSPORT_PADDING = /^[ \t]*$/;
const SINGLE_HEADERS = new Set(['content-disposition', 'content-type', 'content-transfer-encoding']);

/**
 * The problem with one part's header block (CRLF-separated lines), if any. In a body that is not
 * multipart/form-data (`formData` false: multipart/mixed, which Spring reads as a form), a part
 * that is not `form-data` is one every reader skips, not a problem.
 */
export function partHeaderProblem(block: string, formData = true): string | undefined {
  const seen = new Set<string>();
  let disposition: [string, string][] | undefined;
  let dispositionType = '';
  let contentType = '';
  for (const line of unfolded(block)) {
    const colon = line.indexOf(':');
    if (colon === -1) continue; // busboy refuses the part itself ("Malformed part header")
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!SINGLE_HEADERS.has(name)) continue;
    if (seen.has(name)) return `a part gives ${name} twice`;
    seen.add(name);
    const value = line.slice(colon + 1).trim();
    const params = headerParameters(value);
    const names = new Set<string>();
    for (const [param] of params) {
      if (names.has(param)) return `a part's ${name} gives ${param.slice(0, 40)} twice`;
      names.add(param);
    }
    if (name === 'content-disposition') {
      disposition = params;
      dispositionType = value.split(';', 1)[0]?.trim().toLowerCase() ?? '';
    }
    if (name === 'content-type') contentType = value.toLowerCase();
  }
  if (disposition === undefined) return formData ? 'a part without a Content-Disposition' : undefined;
  if (dispositionType !== 'form-data' && formData)
    return `a part whose Content-Disposition is ${dispositionType.slice(0, 40) || 'empty'}, not form-data`;
  // `filename*=`, `name*0=`: an RFC 2231 / RFC 5987 extended or continued value.
  if (disposition.some(([name]) => name.endsWith('*') || /\*\d+$/.test(name)))
    return 'a part with an extended Content-Disposition parameter (RFC 7578 forbids them)';
  // commons-fileupload takes any form-data part whose type starts `multipart/mixed` apart.
  if (dispositionType === 'form-data' && contentType.startsWith('multipart/'))
    return `a nested multipart part (${contentType.split(';', 1)[0]?.trim().slice(0, 40)})`;
  return undefined;
}

/** A header block's lines with folded ones (starting with a space or tab) joined to the line before, as busboy joins them. */
function unfolded(block: string): string[] {
  const lines: string[] = [];
  for (const line of block.split('\r\n')) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && lines.length > 0) lines[lines.length - 1] += line;
    else if (line !== '') lines.push(line);
  }
  return lines;
}

/**
 * A checker for a body split at `boundary`. A delimiter is a line starting `--boundary`; what
 * follows it on the line decides what it is (RFC 2046 §5.1.1).
 */
export function createMultipartFramingCheck(boundary: string, formData = true): MultipartFramingCheck {
  let problem: string | undefined;
  /** 'data': in a part's content (or the preamble); 'line': the rest of a delimiter's line; 'headers': a part's header block; 'epilogue': after the close delimiter; 'done': a problem was found. */
  let state: 'data' | 'line' | 'headers' | 'epilogue' | 'done' = 'data';
  let lastByte = LF;
  let crBefore = true;
  let line: number[] = [];
  /** The part's header block so far, as bytes (latin1): appended to, searched only where it grew. */
  let headerText = '';

  const fail = (why: string) => {
    problem ??= why;
    state = 'done';
  };

  /** A delimiter's line is complete (`tail` is what followed `--boundary`, without the LF). */
  const endLine = (tail: string, endedWithLf: boolean) => {
    if (tail.startsWith('--')) {
      // The close delimiter: busboy stops at it only after a CRLF.
      if (!crBefore) return fail('a close delimiter after a bare line feed');
      state = 'epilogue';
      return;
    }
    const withoutCr = tail.endsWith('\r') ? tail.slice(0, -1) : tail;
    if (!TRANSPORT_PADDING.test(withoutCr)) {
      // `--boundaryX` after a CRLF holds the delimiter, which RFC 2046 keeps out of content: busboy
      // drops those bytes from the part, a backend keeps them. After a bare LF, both read content.
      if (crBefore) return fail('the boundary inside a part');
      state = 'data';
      return;
    }
    if (!endedWithLf) return fail('a body that ends on a boundary line');
    if (withoutCr !== '') return fail('a boundary line with transport padding');
    if (!crBefore || !tail.endsWith('\r')) return fail('a boundary line ending in a bare line feed');
    state = 'headers';
    headerText = '';
  };

  const onData = (data: Buffer, start: number, end: number): void => {
    if (state === 'done' || start >= end) return;
    if (state === 'data' || state === 'epilogue') {
      lastByte = data[end - 1] as number;
      return;
    }
    if (state === 'line') {
      const lf = data.indexOf(LF, start);
      const stop = lf === -1 || lf >= end ? end : lf;
      for (let i = start; i < stop && line.length <= MAX_BOUNDARY_LINE_TAIL; i++) line.push(data[i] as number);
      if (stop === end) {
        lastByte = data[end - 1] as number;
        if (line.length > MAX_BOUNDARY_LINE_TAIL) state = 'data'; // a long line: content, not a delimiter
        return;
      }
      endLine(Buffer.from(line).toString('latin1'), true);
      lastByte = LF;
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
    const why = partHeaderProblem(headerText.slice(0, blank), formData);
    if (why !== undefined) return fail(why);
    state = 'data';
    lastByte = LF;
    // The part's content may start in this same piece.
    const headerEnd = blank === 0 ? 2 : blank + 4;
    onData(data, end - (headerText.length - headerEnd), end);
  };

  /** `\n--boundary` was found: what the line turns out to be is known at its end. */
  const onDelimiter = () => {
    if (state === 'done') return;
    if (state === 'headers') return fail('a part header block that holds a boundary');
    // busboy reads on past the close delimiter while it is in the same chunk; others stop there.
    if (state === 'epilogue') return lastByte === CR ? fail('a part after the close delimiter') : undefined;
    // A delimiter right after another: the line break that ends one line starts the next match.
    if (state === 'line') endLine(Buffer.from(line).toString('latin1'), true);
    const after: string = state;
    if (after === 'headers') return fail('a part header block that holds a boundary');
    if (after === 'done') return;
    if (after === 'epilogue') return lastByte === CR ? fail('a part after the close delimiter') : undefined;
    crBefore = lastByte === CR;
    state = 'line';
    line = [];
  };

  const search = new StreamSearch(Buffer.from(`\n--${boundary}`, 'latin1'), (isMatch, data, start, end) => {
    if (data !== undefined) onData(data, start, end);
    if (isMatch) onDelimiter();
  });

  // The first delimiter needs no line break before it (busboy starts the same way).
  search.push(Buffer.from('\r\n'));
  return {
    push(chunk) {
      if (state !== 'done') search.push(chunk);
    },
    problem() {
      if (state === 'line' && problem === undefined) endLine(Buffer.from(line).toString('latin1'), false);
      return problem;
    },
  };
}
