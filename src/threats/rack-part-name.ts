/**
 * The name Rack 2 (Rails, Sinatra) gives a multipart part, read from its header block as
 * Rack::Multipart::Parser#handle_mime_head does. Rack does not parse the headers: one regex runs over
 * the whole block, unanchored, greedy and across lines (MULTIPART_CONTENT_DISPOSITION,
 * `/Content-Disposition:[^:]*;\s*name=(VALUE)/ni`), so `X-Content-Disposition: …; name=_method`,
 * an `X-Pad` header whose value holds one, or `; name=` inside a quoted parameter value after the
 * real name is the name to Rack; where it matches nothing (`x=":"` before `name`) Rack takes the
 * rest of a `Content-ID:` line (MULTIPART_CONTENT_ID), and only then the file name or the type.
 * busboy, behind every reader here, reads the Content-Disposition header's own `name` parameter.
 *
 * Ruby's `.` is any character but LF (its `\s`: rack-grammar.ts). The block is latin1 text, as
 * the framing check holds it.
 */
import { RUBY_SPACE, VALUE } from './rack-grammar.js';

const CONTENT_DISPOSITION = new RegExp(`Content-Disposition:[^:]*;${RUBY_SPACE}*name=(${VALUE})`, 'i');
const CONTENT_ID = new RegExp(`Content-ID:${RUBY_SPACE}*([^\\r\\n]*)`, 'i');
/** Rack::Auth::Digest::Params.dequote (from WEBrick): quotes off a one-line quoted value, then `\x` is `x`. */
const QUOTED = /^"([^\n]*)"$/;
const ESCAPE = /\\([^\n])/g;

/**
 * The part's name as Rack reads it from its header block (without the blank line that ends it),
 * or undefined where Rack finds none there (or an empty one) and names the part after its file
 * name or Content-Type instead.
 */
export function rackPartName(block: string): string | undefined {
  const head = `${block}\r\n`; // Rack's head keeps the last header's line break
  const disposition = CONTENT_DISPOSITION.exec(head)?.[1];
  const name =
    disposition === undefined ? CONTENT_ID.exec(head)?.[1] : (QUOTED.exec(disposition)?.[1] ?? disposition).replace(ESCAPE, '$1');
  return name === '' ? undefined : name;
}
