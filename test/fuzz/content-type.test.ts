/**
 * Fuzz, differential: Content-Types built from the pieces parsers disagree on (",", spaces and tabs
 * in the media type, `/json` and `+json` in parameters, "boundary" in other names and values,
 * quoted and escaped boundaries, body types and charsets named in parameters). Whenever the sidecar
 * accepts one (contentTypeRefusal, src/net/media-type.ts), the readings of PHP 8, Rack 2, Laravel
 * and Mojolicious 9 — modelled on their sources — must name the body type the stages read it as
 * (mediaTypeOf), a charset Mojolicious takes must be one the checks read (unreadableCharset), and a
 * multipart body framed with the boundary PHP, Rack or Mojolicious takes must read the same to busboy.
 */
import t from 'tap';
import fc from 'fast-check';
import busboy from 'busboy';
import {
  contentTypeRefusal,
  isAsciiCompatibleCharset,
  isJsonMediaType,
  isMultipartMediaType,
  mediaTypeOf,
  unreadableCharset,
} from '../../src/net/media-type.js';
import { fuzz, fuzzAsync } from './fuzz-budget.js';

/** PHP's SAPI (sapi_read_post_data): lower case, ended at ";", "," or a space. */
function phpMediaType(ct: string): string {
  const end = ct.search(/[;, ]/);
  return (end === -1 ? ct : ct.slice(0, end)).toLowerCase();
}

/** Rack 2.2 (Rack::MediaType.type): split at /\s*[;,]\s*\/, the first piece. */
function rackMediaType(ct: string): string {
  return (ct.split(/\s*[;,]\s*/, 1)[0] ?? '').toLowerCase();
}

/** Laravel (Request::isJson): "/json" or "+json" anywhere in the header. */
const laravelJson = (ct: string) => ct.includes('/json') || ct.includes('+json');

/** PHP's rfc1867.c: the first "boundary" (lower case, else any case), the "=" after it, quoted or up to "," / ";". */
function phpBoundary(ct: string): string | undefined {
  let at = ct.indexOf('boundary');
  if (at === -1) at = ct.toLowerCase().indexOf('boundary');
  if (at === -1) return undefined;
  const eq = ct.indexOf('=', at);
  if (eq === -1) return undefined;
  const rest = ct.slice(eq + 1);
  if (rest.startsWith('"')) {
    const close = rest.indexOf('"', 1);
    return close === -1 ? undefined : rest.slice(1, close);
  }
  const end = rest.search(/[,;]/);
  return end === -1 ? rest : rest.slice(0, end);
}

/** Rack 2.2's Rack::Multipart::MULTIPART: the last "boundary=" (any case), up to a quote, "," or ";". */
function rackBoundary(ct: string): string | undefined {
  return /^multipart\/.*boundary="?([^";,]+)/i.exec(ct)?.[1];
}

/** Mojolicious 9.31 (Mojo::Message::body_params): a form or multipart/form-data if the header holds either, anywhere. */
const mojoForm = (ct: string) => /application\/x-www-form-urlencoded/i.test(ct);
const mojoFormData = (ct: string) => /multipart\/form-data/i.test(ct);
/** Mojo::Content: the charset, anywhere in the header; a multipart body (Content::Single's upgrade) and its boundary. */
const mojoCharset = (ct: string) => /charset\s*=\s*"?([^"\s;]+)"?/i.exec(ct)?.[1];
const MOJO_BOUNDARY = /multipart.*boundary\s*=\s*(?:"([^"]+)"|([\w'(),.:?\-+/]+))/i;
function mojoBoundary(ct: string): string | undefined {
  const m = MOJO_BOUNDARY.exec(ct);
  return m === null ? undefined : (m[1] ?? m[2]);
}

const TYPES = [
  'application/x-www-form-urlencoded',
  'application/json',
  'text/plain',
  'application/octet-stream',
  'multipart/form-data',
  'Multipart/Form-Data',
  'application/vnd.api+json',
  'text/json',
];
const TYPE_TAILS = ['', '', '', ',', ',x', ' x', '\tx', ', text/plain', '/x', ' '];
const PARAMETERS = [
  'charset=utf-8',
  'boundary=BBB',
  'BOUNDARY=BBB',
  'Boundary=----WebKitFormBoundaryQ',
  'boundary=----WebKitFormBoundaryQ',
  'boundary=myboundary',
  'boundary="a;b"',
  'boundary="a,b"',
  'boundary="a\\"b"',
  'boundary="a\\\\b"',
  'xboundary=AAA',
  'x="boundary=AAA"',
  'x=boundary=AAA',
  'x=/json',
  'v=+json',
  'x="a/JSON"',
  'ext="https://jsonapi.org/ext/atomic"',
  'xcharset=cp37',
  'x="charset=utf-16le"',
  'x-charset=utf-8',
  'charset=ibm037',
  'boundary=AA!BB',
  'boundary="AA!BB"',
  'boundary=AA~BB',
  'x="application/x-www-form-urlencoded"',
  'x="multipart/form-data; boundary=BB"',
  'a=multipart',
  'x',
  '',
];

const contentType = fc
  .tuple(
    fc.constantFrom(...TYPES),
    fc.constantFrom(...TYPE_TAILS),
    fc.array(fc.tuple(fc.constantFrom(';', '; ', ' ;', ','), fc.constantFrom(...PARAMETERS)), { maxLength: 4 }),
  )
  .map(([type, tail, params]) => type + tail + params.map(([sep, p]) => sep + p).join(''))
  // Node hands header values over trimmed.
  .map((ct) => ct.trim());

t.test('an accepted Content-Type names the same body type to PHP, Rack, Laravel and Mojolicious as to the stages', async (t) => {
  fuzz(
    t,
    'content_type.readings',
    [contentType],
    (ct) => {
      if (contentTypeRefusal(ct) !== undefined) return;
      const mime = mediaTypeOf(ct);
      if (phpMediaType(ct) !== mime) throw new Error(`${JSON.stringify(ct)}: PHP reads ${phpMediaType(ct)}, the stages ${mime}`);
      if (rackMediaType(ct) !== mime) throw new Error(`${JSON.stringify(ct)}: Rack reads ${rackMediaType(ct)}, the stages ${mime}`);
      if (laravelJson(ct) !== isJsonMediaType(mime)) throw new Error(`${JSON.stringify(ct)}: Laravel JSON ${laravelJson(ct)}`);
      if (mojoForm(ct) !== (mime === 'application/x-www-form-urlencoded'))
        throw new Error(`${JSON.stringify(ct)}: Mojolicious form ${mojoForm(ct)}, the stages ${mime}`);
      if (mojoFormData(ct) && mime !== 'multipart/form-data') throw new Error(`${JSON.stringify(ct)}: multipart/form-data to Mojolicious`);
      if (mojoBoundary(ct) !== undefined && !isMultipartMediaType(mime))
        throw new Error(`${JSON.stringify(ct)}: multipart to Mojolicious, ${mime} to the stages`);
      const charset = mojoCharset(ct);
      if (charset !== undefined && !isAsciiCompatibleCharset(charset) && unreadableCharset(ct) === undefined)
        throw new Error(`${JSON.stringify(ct)}: ${charset} to Mojolicious, UTF-8 to the checks`);
    },
    { runs: 2000 },
  );
});

/** The fields busboy reads from `body` under `ct`: 'refused' when it refuses the Content-Type, 'error' the body. */
function busboyFields(ct: string, body: string): Promise<[string, string][] | 'refused' | 'error'> {
  let parser: ReturnType<typeof busboy>;
  try {
    parser = busboy({ headers: { 'content-type': ct } });
  } catch {
    return Promise.resolve('refused');
  }
  return new Promise((resolve) => {
    const fields: [string, string][] = [];
    parser.on('field', (name, value) => fields.push([name, value]));
    parser.on('error', () => resolve('error'));
    parser.on('close', () => resolve(fields));
    parser.end(Buffer.from(body, 'latin1'));
  });
}

t.test(
  'an accepted multipart Content-Type: a body framed with the boundary PHP, Rack or Mojolicious takes reads the same to busboy',
  async (t) => {
    await fuzzAsync(
      t,
      'content_type.boundary',
      [contentType],
      async (ct) => {
        if (mediaTypeOf(ct) !== 'multipart/form-data' || contentTypeRefusal(ct) !== undefined) return;
        // busboy refusing the Content-Type is a refusal here too: every reader refuses the body.
        if ((await busboyFields(ct, '')) === 'refused') return;
        for (const [reader, boundary] of [
          ['PHP', phpBoundary(ct)],
          ['Rack', rackBoundary(ct)],
          ['Mojolicious', mojoBoundary(ct)],
        ] as const) {
          if (boundary === undefined) continue;
          const body = `--${boundary}\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--${boundary}--\r\n`;
          const fields = await busboyFields(ct, body);
          if (fields === 'refused' || fields === 'error' || fields.length !== 1 || fields[0]?.[0] !== '_method')
            throw new Error(
              `${JSON.stringify(ct)}: ${reader} splits at ${JSON.stringify(boundary)}, busboy read ${JSON.stringify(fields)}`,
            );
        }
      },
      { runs: 1000 },
    );
  },
);
