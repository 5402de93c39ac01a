/**
 * Fuzz, differential: multipart bodies with the framing variations parsers disagree on (transport
 * padding and bare line feeds at boundaries, dispositions other than form-data or outside busboy's
 * grammar, repeated and extended parameters, repeated and folded headers), cut into random chunks. Whenever
 * the sidecar's shared multipart reader (busboy plus src/threats/multipart-framing.ts) accepts a
 * body, a lenient parser
 * modelled on Go's mime/multipart and PHP (padding and bare LFs allowed, the last `name`, any
 * disposition type) must read the same fields: nothing a backend reads is hidden from the stages.
 */
import t from 'tap';
import fc from 'fast-check';
import { createMultipartStream } from '../../src/threats/multipart-stream.js';
import { fuzzAsync } from './fuzz-budget.js';

const BOUNDARY = 'fz9Q';

/** The fields a lenient parser reads: [name, value] in order. */
function lenientFields(body: string): [string, string][] {
  const lines = body.split('\n');
  const fields: [string, string][] = [];
  let current: { headers: string[]; content: string[] | undefined } | undefined;
  const finish = () => {
    if (!current?.content) return;
    const disposition = current.headers.filter((h) => /^content-disposition\s*:/i.test(h)).at(-1);
    const names = [...(disposition ?? '').matchAll(/;\s*name\s*=\s*"([^"]*)"/gi)].map((m) => m[1] as string);
    const content = current.content.join('\n');
    const isFile = /;\s*filename\s*=/i.test(disposition ?? '');
    if (names.length > 0)
      fields.push([names.at(-1) as string, isFile ? '(file)' : content.endsWith('\r') ? content.slice(0, -1) : content]);
  };
  for (const raw of lines) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.startsWith(`--${BOUNDARY}--`)) {
      finish();
      return fields;
    }
    if (line.startsWith(`--${BOUNDARY}`) && /^[ \t]*$/.test(line.slice(BOUNDARY.length + 2))) {
      finish();
      current = { headers: [], content: undefined };
      continue;
    }
    if (!current) continue; // preamble
    if (current.content) current.content.push(raw);
    else if (line === '') current.content = [];
    // Each header line stripped, as Django reads it: a folded line is a header of its own.
    else current.headers.push(line.trim());
  }
  return fields;
}

/** What the sidecar's reader accepts: its fields, or undefined when it refuses the body. */
async function sidecarFields(body: Buffer, cuts: number[]): Promise<[string, string][] | undefined> {
  const fields: [string, string][] = [];
  const stream = createMultipartStream(
    `multipart/form-data; boundary=${BOUNDARY}`,
    { maxParts: 100, maxFieldBytes: 1 << 20 },
    {
      onField: (name, value) => fields.push([name, value]),
      onFile: (name, _filename, content) => {
        fields.push([name, '(file)']);
        content.resume();
      },
    },
  );
  if (!stream) throw new Error('no stream');
  let at = 0;
  for (const cut of [...cuts.map((c) => c % (body.length + 1)).sort((a, b) => a - b), body.length]) {
    stream.write(body.subarray(at, Math.max(at, cut)));
    at = Math.max(at, cut);
  }
  return (await stream.end()) === undefined ? fields : undefined;
}

const text = fc.stringMatching(/^[a-z0-9 '=;-]{0,12}$/);
/** Mostly the well-formed choice, now and then one of the variations parsers disagree on. */
const rarely = <T>(usual: T, ...variations: T[]) =>
  fc.oneof({ weight: 12, arbitrary: fc.constant(usual) }, { weight: 1, arbitrary: fc.constantFrom(...variations) });
const lineBreak = rarely('\r\n', '\n');
const delimiterTail = rarely('', ' ', '\t', '  ', 'x', '-x');
const disposition = rarely('form-data', 'FORM-DATA', 'attachment', 'inline');
const extra = rarely(
  '',
  '; name="_method"',
  "; filename*=utf-8''a.txt",
  "; name*=utf-8''x",
  '; filename="f.txt"',
  // Dispositions busboy's strict grammar refuses (it skips the part), a lenient parser reads.
  ';',
  '; filename= "f.txt"',
  '; filename=a/f.txt',
);
const secondHeader = rarely(
  '',
  'Content-Type: text/plain',
  'Content-Disposition: form-data; name="other"',
  'X-Note: 1',
  // Folded into X-Pad to busboy, a header of its own to Django (red team round 22e).
  'X-Pad: a\r\n Content-Disposition: form-data; name="other"',
);
const content = fc.oneof({ weight: 6, arbitrary: text }, { weight: 1, arbitrary: text.map((v) => `${v}\r\n--${BOUNDARY}${v}`) });

const parts = fc.array(
  fc.record({
    name: fc.stringMatching(/^[a-z_]{1,6}$/),
    value: content,
    tail: delimiterTail,
    eol: lineBreak,
    disposition,
    extra,
    secondHeader,
  }),
  { minLength: 1, maxLength: 4 },
);

const bodies = fc.tuple(parts, rarely('', 'preamble\r\n'), lineBreak).map(([ps, preamble, closeEol]) => {
  let body = preamble;
  ps.forEach((p, i) => {
    const before = i === 0 ? '' : p.eol;
    const headers = [`Content-Disposition: ${p.disposition}; name="${p.name}"${p.extra}`, ...(p.secondHeader ? [p.secondHeader] : [])];
    body += `${before}--${BOUNDARY}${p.tail}\r\n${headers.join('\r\n')}\r\n\r\n${p.value}`;
  });
  return `${body}${closeEol}--${BOUNDARY}--\r\n`;
});

t.test('a body the shared multipart reader accepts reads the same to a lenient parser', async (t) => {
  let accepted = 0;
  let refused = 0;
  await fuzzAsync(
    t,
    'multipart-framing.differential',
    [bodies, fc.array(fc.nat(), { maxLength: 4 })],
    async (body, cuts) => {
      const seen = await sidecarFields(Buffer.from(body, 'latin1'), cuts);
      if (seen === undefined) {
        refused++;
        return;
      }
      accepted++;
      const lenient = lenientFields(body);
      if (JSON.stringify(seen) !== JSON.stringify(lenient))
        throw new Error(`accepted, but read as ${JSON.stringify(seen)} where a lenient parser reads ${JSON.stringify(lenient)}`);
    },
    { runs: 400 },
  );
  t.comment(`accepted ${accepted}, refused ${refused}`);
  t.ok(accepted > 0 && refused > 0, 'both kinds of body were generated');
});
