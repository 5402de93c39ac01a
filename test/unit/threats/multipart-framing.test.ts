/**
 * The multipart framing check against bodies busboy and lenient parsers read differently, each
 * pushed whole and split at every byte (a delimiter or header block may straddle two chunks).
 */
import t from 'tap';
import { createMultipartFramingCheck, partHeaderProblem } from '../../../src/threats/multipart-framing.js';

const B = 'b0undary';
const part = (headers: string, content: string) => `--${B}\r\n${headers}\r\n\r\n${content}\r\n`;
const field = (name: string, value: string) => part(`Content-Disposition: form-data; name="${name}"`, value);
const close = `--${B}--\r\n`;

/** The problem found with the body pushed whole, and the same for every split into two chunks. */
function problemsOf(body: string | Buffer, boundary = B): Set<string | undefined> {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1');
  const found = new Set<string | undefined>();
  for (let cut = 0; cut <= bytes.length; cut++) {
    const check = createMultipartFramingCheck(boundary);
    check.push(bytes.subarray(0, cut));
    check.push(bytes.subarray(cut));
    found.add(check.problem());
  }
  return found;
}

t.test('well-framed bodies pass, however they are cut', async (t) => {
  const bodies: [string, string][] = [
    ['two fields', field('a', 'one') + field('b', 'two') + close],
    [
      'a file part',
      part('Content-Disposition: form-data; name="f"; filename="x.txt"\r\nContent-Type: text/plain', 'hello\r\nworld') + close,
    ],
    ['a preamble, and white space after the close delimiter', `preamble\r\n${field('a', 'x')}--${B}-- \t\r\n\r\n \n`],
    ['the boundary inside a word, or after a dash', field('a', `--${B.slice(0, -1)}x -${B}`) + close],
    ['an empty value', field('a', '') + close],
    ['a close delimiter without a final line break', `${field('a', 'x')}--${B}--`],
    ['bare line feeds inside content', field('a', 'x\ny\n\nz') + close],
    [
      'quoted parameters holding ; and =',
      part('Content-Disposition: form-data; name="a=b,c"; filename="d;e"\r\nContent-Type: text/plain', 'x') + close,
    ],
    // Dispositions busboy's strict grammar reads too (multipart-stream.test.ts reads them).
    // (An unquoted file name is a text field to Mojolicious: refused below.)
    ['an unquoted token value', part('Content-Disposition: form-data; name=a; filename="x.txt"\r\nContent-Type: text/plain', 'x') + close],
    // (White space after a file name: formidable 1 reads no file name; refused below.)
    ['white space around ";", none after', part('Content-Disposition: form-data ;name="a" ;\tx="y" \t', 'x') + close],
    [
      'a quote inside a quoted value',
      part(`Content-Disposition: form-data; name="a='b'"; filename="x'y"\r\nContent-Type: text/plain`, 'x') + close,
    ],
    // (A backslash before a letter: busboy keeps it, Rack drops it; an escape: formidable keeps
    // it, and ends a quoted name at any `"`. Refused below.)
    ['Latin-1 in a quoted value', part('Content-Disposition: form-data; name="a b\xe9"', 'x') + close],
  ];
  for (const [what, body] of bodies) t.same([...problemsOf(body)], [undefined], what);
});

t.test('what real clients send passes: undici FormData, and the shapes of browsers, curl -F and Python requests', async (t) => {
  // Content with line breaks, dashes and CRs next to them, but not the boundary: theirs are random.
  const text = 'line one\r\nline two\n--not a boundary\r--\r\n';
  const binary = Buffer.from('\r\n--\r\n\r\r\n\nbinary\x00\xff\r', 'latin1');
  const form = new FormData();
  form.append('note', text);
  form.append('file', new Blob([binary]), 'a.bin');
  const request = new Request('http://localhost/', { method: 'POST', body: form });
  const undiciBoundary = /boundary=(.+)$/.exec(request.headers.get('content-type') ?? '')?.[1] ?? '';
  t.same([...problemsOf(Buffer.from(await request.arrayBuffer()), undiciBoundary)], [undefined], 'undici FormData');
  const shape = (boundary: string, fileType: string) =>
    Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\n${text}\r\n`),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\nContent-Type: ${fileType}\r\n\r\n`),
      binary,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
  for (const [what, boundary] of [
    ['Chromium', '----WebKitFormBoundary7MA4YWxkTrZu0gW'],
    ['Firefox', '----geckoformboundary9d1a7c3f0e2b4d6a8c'],
    ['curl -F', '------------------------d74496d66958873e'],
    ['Python requests (urllib3)', '3f2c9b0e8a7d4c1e9b6a5d4c3b2a1f0e'],
  ] as const)
    t.same([...problemsOf(shape(boundary, 'application/octet-stream'), boundary)], [undefined], what);
});

t.test('what busboy drops or reads differently from lenient parsers is named', async (t) => {
  const bodies: [string, string, RegExp][] = [
    [
      'transport padding after a boundary (Go reads the part, busboy drops it)',
      `${field('a', 'x')}--${B}  \r\n${field('q', 'hidden').slice(B.length + 4)}${close}`,
      /transport padding/,
    ],
    [
      'a boundary line ending in a bare LF',
      `${field('a', 'x').slice(0, -2)}\n--${B}\nContent-Disposition: form-data; name="q"\n\nhidden\r\n${close}`,
      /bare line feed/,
    ],
    ['a close delimiter after a bare LF', `${field('a', 'x').slice(0, -2)}\n--${B}--\r\n`, /after a bare line feed/],
    // PHP ends a part at `\n--boundary`, whatever follows: the file is EICAR to it, more to clamd.
    ['the boundary after a bare LF inside content', field('a', `line\n--${B}xyz\r\nmore`) + close, /after a bare line feed \(PHP/],
    [
      'the boundary after a bare LF in the preamble (PHP reads a part there)',
      `x\n--${B}\r\n${field('a', 'x').slice(B.length + 4)}${close}`,
      /after a bare line feed/,
    ],
    // Werkzeug takes a bare CR before `--boundary` for a line break: a second part, inside the first.
    [
      'the boundary after a bare CR inside content',
      field('doc', `hello\r--${B}\r\nContent-Disposition: form-data; name="q"\r\n\r\nhidden`) + close,
      /after a bare carriage return \(Werkzeug/,
    ],
    ['the boundary inside a line of content', field('a', `line x--${B}\r\nmore`) + close, /inside a line of content/],
    [
      'the boundary right after a header block',
      `--${B}\r\nContent-Disposition: form-data; name="a"\r\n\r\n${close}`,
      /header block that holds a boundary/,
    ],
    // PHP reads on after the close delimiter, to a part behind any line `--boundary`.
    [
      'a part after the close delimiter, after a bare LF',
      `${field('a', 'x')}${close}x\n--${B}\r\nContent-Disposition: form-data; name="q"\r\n\r\nhidden\n--${B}--\n`,
      /something after the close delimiter/,
    ],
    [
      'a part after the close delimiter, after a blank line',
      `${field('a', 'x')}${close}\n--${B}\r\nContent-Disposition: form-data; name="q"\r\n\r\nhidden\n--${B}--\n`,
      /boundary after the close delimiter/,
    ],
    ['text after the close delimiter', `preamble\r\n${field('a', 'x')}${close}epilogue --${B}\r\n`, /something after the close delimiter/],
    ['text on the close delimiter line', `${field('a', 'x')}--${B}--${'e'.repeat(300)}\r\n`, /something after the close delimiter/],
    [
      'a disposition other than form-data (PHP reads its name)',
      part('Content-Disposition: attachment; name="q"', 'x') + close,
      /attachment, not form-data/,
    ],
    ['a part without a disposition', part('Content-Type: text/plain', 'x') + close, /without a Content-Disposition/],
    ['a part without headers', `--${B}\r\n\r\nx\r\n${close}`, /without a Content-Disposition/],
    [
      'the disposition twice',
      part('Content-Disposition: form-data; name="a"\r\nContent-Disposition: form-data; name="_method"', 'x') + close,
      /content-disposition twice/,
    ],
    ['the name twice', part('Content-Disposition: form-data; name="a"; name="_method"', 'x') + close, /gives name twice/],
    // busboy joins a folded line to the header before; Django 3.2's parse_boundary_stream reads it
    // as a header of its own, the last of a name winning (red team round 22e).
    ['a folded disposition', part('Content-Disposition: form-data;\r\n name="a"', 'x') + close, /folded/],
    ['a folded line after a tab', part('Content-Disposition: form-data; name="a";\r\n\tfilename="x"', 'x') + close, /folded/],
    [
      'a Content-Transfer-Encoding folded into another header (base64 to Django, unseen by busboy)',
      part('Content-Disposition: form-data; name="f"; filename="a.com"\r\nX-Pad: a\r\n Content-Transfer-Encoding: base64', 'WDVP') + close,
      /folded/,
    ],
    [
      'a second disposition folded into another header (renames the field to Django)',
      part('Content-Disposition: form-data; name="note"\r\nX-Pad: a\r\n Content-Disposition: form-data; name="role"', 'admin') + close,
      /folded/,
    ],
    [
      'a folded line in a later part',
      field('a', 'x') + part('Content-Disposition: form-data; name="b"\r\nX-Pad: a\r\n\t b', 'y') + close,
      /folded/,
    ],
    ['a header block starting with a space', part(' Content-Disposition: form-data; name="a"', 'x') + close, /folded/],
    ['the name twice, on a folded line', part('Content-Disposition: form-data; name="a";\r\n name="_method"', 'x') + close, /folded/],
    ['filename* on a folded line', part(`Content-Disposition: form-data; name="f";\r\n\tfilename*=utf-8''x.txt`, 'x') + close, /folded/],
    [
      'filename*',
      part(`Content-Disposition: form-data; name="f"; filename="a.txt"; filename*=utf-8''..%2F..%2Fetc%2Fpasswd`, 'x') + close,
      /extended/,
    ],
    ['a continued name', part(`Content-Disposition: form-data; name*0="_met"; name*1="hod"`, 'x') + close, /extended/],
    [
      'Content-Type twice',
      part('Content-Disposition: form-data; name="a"\r\nContent-Type: text/plain\r\nContent-Type: application/json', 'x') + close,
      /content-type twice/,
    ],
    [
      'a charset twice',
      part('Content-Disposition: form-data; name="a"\r\nContent-Type: text/plain; charset=utf-8; charset=ibm037', 'x') + close,
      /charset twice/,
    ],
    [
      'the delimiter inside a part (busboy drops it from the content)',
      field('a', `line\r\n--${B}xyz\r\nmore`) + close,
      /boundary inside a part/,
    ],
    [
      'a part after the close delimiter (busboy reads on within a chunk)',
      `${field('a', 'x')}${close}${field('q', 'hidden')}${close}`,
      /after the close delimiter/,
    ],
    ['a body ending on a boundary line', `${field('a', 'x')}--${B}`, /ends on a boundary line/],
    [
      'the delimiter inside a part, on a line longer than is looked at (was missed when cut before its line feed)',
      field('a', `line\r\n--${B}${'y'.repeat(300)}\r\nmore`) + close,
      /boundary inside a part/,
    ],
    // busboy's parseDisposition refuses these and busboy skips the part unseen; PHP reads it.
    [
      'a trailing ";" in the disposition',
      part('Content-Disposition: form-data; name="file"; filename="eicar.com";', 'x') + close,
      /cannot read/,
    ],
    ['a space after "="', part('Content-Disposition: form-data; name="file"; filename= "eicar.com"', 'x') + close, /cannot read/],
    ['a space before "="', part('Content-Disposition: form-data; name="file"; filename ="eicar.com"', 'x') + close, /cannot read/],
    ['an unquoted value with "/"', part('Content-Disposition: form-data; name="file"; filename=a/eicar.com', 'x') + close, /cannot read/],
    ['an unquoted value with "[]"', part('Content-Disposition: form-data; name=q[]', 'x') + close, /cannot read/],
    [
      'a single-quoted value (PHP takes the quotes off)',
      part("Content-Disposition: form-data; name='_method'", 'x') + close,
      /single-quoted/,
    ],
    ['an empty unquoted value', part('Content-Disposition: form-data; name=', 'x') + close, /cannot read/],
    ['an unterminated quoted value', part('Content-Disposition: form-data; name="q', 'x') + close, /cannot read/],
    ['a parameter without "="', part('Content-Disposition: form-data; name', 'x') + close, /cannot read/],
    ['no ";" between parameters', part('Content-Disposition: form-data; name="q" filename="x"', 'x') + close, /cannot read/],
    [
      'a no-break space after the value (trim() takes it)',
      part('Content-Disposition: form-data; name="q"\xa0', 'x') + close,
      /cannot read/,
    ],
  ];
  for (const [what, body, problem] of bodies) {
    const found = [...problemsOf(body)];
    t.equal(found.length, 1, `${what}: the same answer however it is cut`);
    t.match(found[0], problem, what);
  }
});

t.test('header blocks: only the headers parsers disagree on are checked', async (t) => {
  t.equal(
    partHeaderProblem('Content-Disposition: form-data; name="a"\r\nX-Custom: 1\r\nX-Custom: 2'),
    undefined,
    'other headers may repeat',
  );
  t.equal(partHeaderProblem('content-disposition: FORM-DATA; name="a"'), undefined, 'header names and the type in any case');
  t.match(partHeaderProblem('content-disposition: form-data; NAME="a"'), /parameter "NAME" not in lower case/, 'not a parameter name');
  t.match(partHeaderProblem('Content-Disposition: form-data; name="a"\r\nCONTENT-DISPOSITION: form-data; name="b"'), /twice/);
  t.match(partHeaderProblem('Content-Disposition: ; name="a"'), /is empty, not form-data/);
  t.equal(partHeaderProblem('Content-Disposition: form-data; name="a b"\r\nX-Custom: a\tb c'), undefined, 'white space inside a line');
  t.match(partHeaderProblem('Content-Disposition: form-data; name="a"\r\nX-Custom: a\r\n b'), /folded/, 'folding any header');
  t.match(partHeaderProblem('X-Custom: a\r\n\tb\r\nContent-Disposition: form-data; name="a"', false), /folded/, 'in multipart/mixed too');
});

t.test('a part Rack 2 names otherwise than busboy is refused (red team round 22f, against Rack 2.2)', async (t) => {
  // Rack reads the name with one unanchored regex over the whole header block, then Content-ID.
  const renamed: [string, string][] = [
    ['Content-Disposition: form-data; name="note"; x="; name=_method"', '_method'],
    ['Content-Disposition: form-data; name="n;name=_method"', '_method'],
    ['X-Content-Disposition: form-data; name="_method"\r\nContent-Disposition: form-data; name="note"', '_method'],
    ['X-Pad: Content-Disposition: y; name=_method\r\nContent-Disposition: form-data; name="note"', '_method'],
    ['Content-Disposition: form-data; x=":"; name="note"\r\nContent-ID: _method', '_method'],
    ['Content-Disposition: form-data; name="file"; x="; name=role"', 'role'],
    ['Content-Disposition: form-data; name="_met\\hod"', '_method'], // busboy keeps a "\\" before another letter
    ['Content-Disposition: form-data; name="f"; filename="a; name=_method.txt"', '_method.txt'],
  ];
  for (const [block, rack] of renamed) {
    t.match(partHeaderProblem(block), new RegExp(`Rack reads under another name \\(${JSON.stringify(rack)}`), block);
    t.match([...problemsOf(part(block, 'DELETE') + close)], [/Rack reads under another name/], `${block}: however it is cut`);
  }
  t.match(
    partHeaderProblem('Content-Disposition: form-data; x=":"; name="note"'),
    /another name \("its file name or type"/,
    'no name to Rack: it names the part after its file name or type',
  );
  t.match(partHeaderProblem('Content-Disposition: form-data; name=""; filename="x.txt"'), /another name/, 'an empty name');
  // What browsers send reads the same to both.
  for (const block of [
    'Content-Disposition: form-data; name="note"',
    'Content-Disposition: form-data; name="file"; filename="C:\\fakepath\\a: b.txt"\r\nContent-Type: text/plain',
    'content-disposition: form-data; name=note',
  ])
    t.equal(partHeaderProblem(block), undefined, block);
});

t.test('a part Rack 2 reads as a text field and busboy as a file, or the reverse, is refused (red team round 22h)', async (t) => {
  // Rack looks `filename` up case-sensitively among parameters scanned over the whole block.
  const differs: [string, RegExp][] = [
    ['Content-Disposition: form-data; name="q"; FILENAME="a.txt"', /parameter "FILENAME" not in lower case/],
    ['Content-Disposition: form-data; name="q"; Filename=a.txt', /parameter "Filename" not in lower case/],
    ['Content-Disposition: form-data; Name="q"', /parameter "Name" not in lower case/],
    // Rack's quoted value ends at the first `"` not after a `\`: it swallows `; filename=`.
    ['Content-Disposition: form-data; name="q"; x="\\\\"; filename="a.txt"', /a file part Rack reads as a text field/],
    // Another header's parameters are Rack's too.
    ['Content-Disposition: form-data; name="q"\r\nContent-Type: text/plain; filename=x', /a text field Rack reads as a file/],
    ['X-Pad: ; filename=z\r\nContent-Disposition: form-data; name="q"', /a text field Rack reads as a file/],
  ];
  for (const [block, problem] of differs) {
    t.match(partHeaderProblem(block), problem, block);
    t.match([...problemsOf(part(block, "1' OR 1=1--") + close)], [problem], `${block}: however it is cut`);
  }
  t.match(
    partHeaderProblem('Content-Disposition: form-data; name="q"; FILENAME="a.txt"', false),
    /not in lower case/,
    'a form-data part of multipart/mixed too',
  );
  // What clients send reads the same to both; an empty file name (an empty file input) Rack drops.
  for (const block of [
    'Content-Disposition: form-data; name="file"; filename="a.txt"\r\nContent-Type: text/plain',
    'Content-Disposition: form-data; name="file"; filename=""\r\nContent-Type: application/octet-stream',
    'Content-Disposition: form-data; name="q"\r\nContent-Type: text/plain; charset=utf-8',
    'Content-Disposition: form-data; name="blob"; filename="blob"\r\nContent-Type: application/json',
  ])
    t.equal(partHeaderProblem(block), undefined, block);
});

t.test('in multipart/mixed, a part no form reader here reads is told by the name Rack gives it', async (t) => {
  const names = (body: string) => {
    const found: string[] = [];
    const check = createMultipartFramingCheck(B, false, undefined, false, {
      onPart: ({ rackName }) => void (rackName !== undefined && found.push(rackName)),
    });
    check.push(Buffer.from(body, 'latin1'));
    return [check.problem(), found];
  };
  t.same(
    names(
      part('Content-Disposition: attachment; name="_method"', 'DELETE') +
        part('Content-ID: <_method>', 'x') +
        part('Content-Type: application/http', 'GET / HTTP/1.1') +
        field('a', 'x') +
        close,
    ),
    [undefined, ['_method', '<_method>']],
    'by its disposition whatever its type, else its Content-ID; none for a part without either',
  );
  t.match(
    names(`--${B}\r\n\r\nContent-ID: _method\r\n\r\nDELETE\r\n${close}`),
    [/a part without headers \(Rack reads/, []],
    'a part without headers: Rack reads its content as its headers',
  );
});

t.test('in multipart/mixed, a part no form reader here reads is told with its content when asked, split anywhere', async (t) => {
  const body =
    part('Content-Disposition: attachment; name="q"', "1' OR 1=1\r\n--b0und") +
    field('a', 'x') +
    part('Content-Type: application/http\r\nContent-ID: 1', 'GET /x HTTP/1.1\r\n\r\n') +
    close;
  const bytes = Buffer.from(body, 'latin1');
  for (let cut = 0; cut <= bytes.length; cut++) {
    const told: [string | undefined, string, string | undefined][] = [];
    const check = createMultipartFramingCheck(B, false, undefined, false, {
      onPart: ({ rackName, contentType, content }) => void told.push([rackName, contentType, content?.toString('latin1')]),
      maxContentBytes: 64,
    });
    check.push(bytes.subarray(0, cut));
    check.push(bytes.subarray(cut));
    if (
      check.problem() !== undefined ||
      told.length !== 2 ||
      told[0]?.[2] !== "1' OR 1=1\r\n--b0und" ||
      told[1]?.[2] !== 'GET /x HTTP/1.1\r\n\r\n'
    )
      return void t.fail(`split at ${cut}: ${JSON.stringify([check.problem(), told])}`);
  }
  t.pass('its content as sent, without the delimiter line break, wherever the body is split');
  const told: unknown[] = [];
  const check = createMultipartFramingCheck(B, false, undefined, false, { onPart: (p) => void told.push(p), maxContentBytes: 4 });
  check.push(Buffer.from(part('Content-ID: q', 'abcdef') + part('Content-ID: r', 'abcd') + close, 'latin1'));
  t.same(
    [check.problem(), told],
    [
      undefined,
      [
        { rackName: 'q', contentType: '', content: 'too large' },
        { rackName: 'r', contentType: '', content: Buffer.from('abcd') },
      ],
    ],
    'past the bytes asked for, its content is "too large"',
  );
});

t.test('parts(): the parts a form reader reads, for the reader to hold busboy to', async (t) => {
  const count = (body: string, formData = true) => {
    const check = createMultipartFramingCheck(B, formData);
    check.push(Buffer.from(body, 'latin1'));
    return [check.problem(), check.parts()];
  };
  t.same(
    count(field('a', 'x') + part('Content-Disposition: form-data; name="f"; filename="x"\r\nContent-Type: text/plain', 'y') + close),
    [undefined, 2],
    'a field and a file',
  );
  t.same(count(`preamble\r\n${close}`), [undefined, 0], 'no part');
  const mixed = `${part('Content-Type: application/http', 'GET / HTTP/1.1')}${part('Content-Disposition: attachment; filename="a"', 'x')}${field('a', 'x')}${part('Content-Disposition: form-dataX; name=b', 'x')}${close}`;
  t.same(
    count(mixed, false),
    [undefined, 2],
    'in multipart/mixed, the parts whose disposition starts form-data (as commons-fileupload reads them)',
  );
  t.match(
    count(`--${B}\r\n${'X-A: 1\r\n'.repeat(1999)}Content-Disposition: form-data; name="q"\r\n\r\nx\r\n${close}`)[0],
    /over 1999 header lines/,
    'header lines busboy ignores',
  );
  t.same(
    count(`--${B}\r\n${'X-A: 1\r\n'.repeat(1998)}Content-Disposition: form-data; name="q"\r\n\r\nx\r\n${close}`),
    [undefined, 1],
    '1,999 header lines',
  );
});

t.test('pushed one byte at a time, the answers are the same', async (t) => {
  const bodies: [string, RegExp | undefined][] = [
    [
      field('a', 'one') + part('Content-Disposition: form-data; name="f"; filename="x.txt"\r\nContent-Type: text/plain', 'x\r\ny') + close,
      undefined,
    ],
    [`${field('a', 'x')}--${B}  \r\n${field('q', 'hidden').slice(B.length + 4)}${close}`, /transport padding/],
    [part(`Content-Disposition: form-data; name="a"\r\nX-Long: ${'v'.repeat(17 * 1024)}`, 'x') + close, /over 16 KiB/],
    [part('Content-Disposition: form-data; name="a"; name="b"', 'x') + close, /name twice/],
    [part('Content-Disposition: form-data; name="a"\r\nX-Pad: a\r\n Content-Transfer-Encoding: base64', 'x') + close, /folded/],
  ];
  for (const [body, problem] of bodies) {
    const check = createMultipartFramingCheck(B);
    for (const byte of Buffer.from(body, 'latin1')) check.push(Buffer.of(byte));
    if (problem === undefined) t.equal(check.problem(), undefined, 'a well-framed body');
    else t.match(check.problem(), problem, String(problem));
  }
});

t.test('a part Content-Type from which Jetty reads a charset the parser did not (red team round 24b, Jetty 9.4)', async (t) => {
  // busboy cannot parse these, decodes the part as UTF-8 and gives a value; Jetty's
  // MimeTypes.getCharsetFromContentType finds charset=IBM037 in each and decodes the part in it.
  const part = (type: string, formData = true) =>
    partHeaderProblem(`Content-Disposition: form-data; name="q"\r\nContent-Type: ${type}`, formData);
  for (const type of [
    'text/plain;charset=IBM037;',
    'text/plain;; charset=IBM037',
    'text/plain; a b; charset=IBM037',
    'text/plain; charset= IBM037',
    'text/plain; charset =IBM037',
    '; charset=IBM037',
    'text/plain; charset=utf-16le',
    'text/plain; x="; charset=utf-8"; charset=ibm037',
  ])
    t.match(part(type), /a part in charset .* that cannot be inspected/, type);
  t.match(part('text/plain; charset=IBM037', false), /charset ibm037/, 'a form-data part of multipart/mixed too');
  // Parameters a parser gives up on, where Jetty's scan reads on for a charset.
  for (const type of ['text/plain; a b', 'text/plain; a="b', 'application/json; x', 'text/plain; a = b'])
    t.match(part(type), /parameters are not name=value pairs/, type);
  // A charset in a quoted value is read too (as Mojolicious reads one anywhere in the value).
  t.match(part('text/plain; a"; charset=utf-8; x="; charset=IBM037'), /charset ibm037 that cannot be inspected/);
  // What browsers and HTTP clients send passes.
  for (const type of [
    'text/plain',
    'image/png',
    'application/octet-stream',
    'application/json; charset=UTF-8',
    'text/plain;charset=utf-8',
    'text/plain; charset="ISO-8859-1"',
    'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  ])
    t.equal(part(type), undefined, type);
  t.match(
    part('application/octet-stream; charset=ibm037'),
    /charset ibm037/,
    'a part without a file name is a field to Jetty, whatever its type',
  );
  // A part with a file name is a file to Jetty, `filename=""` too: its bytes are not decoded.
  const file = (filename: string, type: string) =>
    partHeaderProblem(`Content-Disposition: form-data; name="f"; filename="${filename}"\r\nContent-Type: ${type}`, true);
  t.equal(file('a.bin', 'application/octet-stream; charset=binary'), undefined, 'a file typed as libmagic types it passes');
  t.equal(file('', 'image/png; charset=binary'), undefined, 'filename="" too');
  // But Falcon's part.text decodes a file part in its charset as it does a field (red team 27a, F5).
  for (const type of [
    'text/plain; charset=utf-7',
    'text/plain; charset=unicode_escape',
    'text/plain; charset=UTF-16',
    'text/plain; x="charset=ibm037"',
  ])
    t.match(file('b.txt', type), /a file part in charset .* that cannot be inspected/, `a file part typed ${type}`);
  for (const type of [
    'text/plain',
    'text/plain; charset=utf-8',
    'text/csv; charset=windows-1252',
    'text/plain; charset=unknown-8bit',
    'text/plain; a b',
  ])
    t.equal(file('b.txt', type), undefined, `a file part typed ${type} passes`);
  // RFC 2231 in a part's type, field or file: Python's email parser joins charset*0, charset*1 (F2).
  for (const type of ["text/plain; charset*=utf-7''", 'text/plain; charset*0=utf-; charset*1=7', "text/plain; charset*0*=utf-7''"]) {
    t.match(part(type), /extended parameter/, `a field typed ${type}`);
    t.match(file('b.txt', type), /extended parameter/, `a file typed ${type}`);
  }
  // A part no form reader reads is the waf's to read as Rack does (it refuses its charset itself).
  t.equal(
    partHeaderProblem('Content-ID: q\r\nContent-Type: text/plain; charset=utf-16le', false),
    undefined,
    'a part no form reader reads',
  );
});

t.test('a part formidable (koa-body, restify) reads otherwise than busboy is refused (red team round 26)', async (t) => {
  const refused: [string, RegExp][] = [
    ['Content-Disposition: form-data; x-name="role"; name="x"', /formidable reads under another name \("role", not "x"\)/],
    ['Content-Disposition: form-data; a="b name=role"; name="x"', /formidable reads under another name \("role"/],
    ['Content-Disposition: form-data; my.name=role; name="x"', /formidable reads under another name \("role"/],
    // An escape: busboy unescapes, formidable does not, and ends a quoted name at any `"`.
    ['Content-Disposition: form-data; name="a\\"b\\\\c\xe9"', /formidable reads under another name \("a\\\\"/],
    ['Content-Disposition: form-data; name="f"; filename="a.txt";x=1\r\nContent-Type: text/plain', /formidable 1 reads as a text field/],
    ['Content-Disposition: form-data; name="f"; filename="a.txt" \r\nContent-Type: text/plain', /formidable 1 reads as a text field/],
    [
      'Content-Disposition: form-data; name="f"; x-filename="<x>"; filename="a.txt"\r\nContent-Type: text/plain',
      /formidable finds another file name in \("<x>"\)/,
    ],
    ['Content-Disposition: form-data; name="f"; x-filename="a.txt"', /formidable finds another file name/],
    ['Content-Disposition: form-data; name="f"; filename="a";x=" <b>"\r\nContent-Type: text/plain', /another file name/],
  ];
  for (const [block, detail] of refused) {
    t.match(partHeaderProblem(block), detail, block);
    t.match([...problemsOf(part(block, 'x') + close)], [detail], `${block}: however it is cut`);
  }
  for (const block of [
    'Content-Disposition: form-data; name="x"; x-name="role"',
    'Content-Disposition: form-data; name="f"; filename=""',
    'Content-Disposition: form-data; name="f"; filename="a.txt"; size=3\r\nContent-Type: text/plain',
    'Content-Disposition: form-data; name="f"; filename="&#0060;b&#0062;.txt"\r\nContent-Type: text/plain',
    // Untyped files (Python's requests sends every file so): read by the waf as fields, not refused.
    'Content-Disposition: form-data; name="f"; filename="a.txt"',
    'Content-Disposition: form-data; name="f"; filename="a.txt"\r\nContent-Type: ',
  ])
    t.equal(partHeaderProblem(block), undefined, block);
});

t.test('takeFileReading: a file name as formidable hands it over, where busboy reads another', async (t) => {
  const body =
    field('a', 'x') +
    part('Content-Disposition: form-data; name="f"; filename="x\\\\&#0060;b&#0062;.txt"\r\nContent-Type: text/plain', 'y') +
    part('Content-Disposition: form-data; name="g"; filename="a%22b.txt"\r\nContent-Type: text/plain', 'y') +
    part('Content-Disposition: form-data; name="h"; filename="plain.txt"\r\nContent-Type: text/plain', 'y') +
    part('Content-Disposition: form-data; name="i"; filename="untyped.txt"', 'y') +
    close;
  const check = createMultipartFramingCheck(B);
  check.push(Buffer.from(body, 'latin1'));
  t.equal(check.problem(), undefined);
  t.same(
    [1, 2, 3, 4, 5].map((i) => check.takeFileReading(i)),
    [undefined, { fileName: '<b>.txt' }, { fileName: 'a"b.txt' }, undefined, undefined],
    'after the last "\\" (an escaped one too), &#dddd; and %22 decoded; none where it is busboy’s, nor for an untyped file',
  );
  t.equal(check.takeFileReading(2), undefined, 'taken once');
});

t.test('a part Mojolicious, HTTP::Body or CGI.pm reads otherwise than busboy is refused (red team round 26, F3 and F5)', async (t) => {
  const refused: [string, RegExp][] = [
    // F3: Mojolicious hands over the form-data parts inside as top-level fields, a file's too.
    [
      'Content-Disposition: form-data; name="filler"; filename="a.png"\r\nContent-Type: application/x-multipart; boundary=AA',
      /nested multipart part \(application\/x-multipart\)/,
    ],
    [
      'Content-Disposition: form-data; name="filler"\r\nContent-Type: text/plain; x="multipart"; boundary=AA',
      /nested multipart part \(text\/plain\)/,
    ],
    [
      'Content-Disposition: form-data; name="filler"; filename="a.png"\r\nContent-Type: image/png; a=multipart; boundary=AA',
      /nested multipart part \(image\/png\)/,
    ],
    // F5: a file to busboy, a text field to them.
    [
      'Content-Disposition: form-data; name="note"; filename=a.txt\r\nContent-Type: text/plain',
      /a file part Mojolicious reads as a text field/,
    ],
    [
      'Content-Disposition: form-data; name="note";\tfilename="a.txt"\r\nContent-Type: text/plain',
      /a file part Mojolicious reads as a text field/,
    ],
    [
      'Content-Disposition: form-data; name="note";filename="a.txt"\r\nContent-Type: text/plain',
      /a file part HTTP::Body \(Catalyst\) reads as a text field/,
    ],
    [
      'Content-Disposition: form-data; name="note";filename=a.txt\r\nContent-Type: text/plain',
      /a file part Mojolicious reads as a text field/,
    ],
    // A name HTTP::Body cuts at `;`, or finds after a space anywhere.
    ['Content-Disposition: form-data; name="role;x"', /HTTP::Body \(Catalyst\) reads under another name \("role"/],
    ['Content-Disposition: form-data;name="note"; a=" name=role"', /HTTP::Body \(Catalyst\) reads under another name \("role"/],
  ];
  for (const [block, detail] of refused) {
    t.match(partHeaderProblem(block), detail, block);
    t.match([...problemsOf(part(block, 'x') + close)], [detail], `${block}: however it is cut`);
  }
  for (const block of [
    'Content-Disposition: form-data; name="f"; filename="a.txt"\r\nContent-Type: text/plain',
    'Content-Disposition: form-data; name="f"; filename=""\r\nContent-Type: application/octet-stream',
    'Content-Disposition: form-data; name="f"; filename="multipart boundary=x.txt"\r\nContent-Type: text/plain',
    'Content-Disposition: form-data; name="f"\r\nContent-Type: text/plain; boundary=AA',
  ])
    t.equal(partHeaderProblem(block), undefined, block);
});

t.test('a header block over 16 KiB is refused though it arrives whole with its blank line', async (t) => {
  const block = `Content-Disposition: form-data; name="a"; x="${'filename='.repeat(64 * 114)}"; filename="a.txt"\r\nContent-Type: text/plain`;
  t.ok(block.length > 64 * 1024);
  const start = performance.now();
  t.equal(partHeaderProblem(block), 'a part header block over 16 KiB');
  const check = createMultipartFramingCheck(B);
  check.push(Buffer.from(part(block, 'x') + close, 'latin1'));
  t.equal(check.problem(), 'a part header block over 16 KiB', 'in one chunk');
  const under = `Content-Disposition: form-data; name="a"; x="${'filename='.repeat(1800)}"; filename="a.txt"\r\nContent-Type: text/plain`;
  t.match(partHeaderProblem(under), /another file name/, 'just under 16 KiB: read, in one pass');
  t.ok(performance.now() - start < 200, `${(performance.now() - start).toFixed(1)} ms`);
});

t.test('what Tomcat and Jetty read otherwise than busboy is refused (red team 28)', async (t) => {
  const refused: [string, string, RegExp][] = [
    // Tomcat's ParameterParser decodes RFC 2047 encoded words in every disposition value.
    ['Q name', 'Content-Disposition: form-data; name="=?UTF-8?Q?role?="', /encoded word/],
    ['B name', 'Content-Disposition: form-data; name="=?UTF-8?B?cm9sZQ==?="', /encoded word/],
    ['two words', 'Content-Disposition: form-data; name="=?UTF-8?Q?ro?= =?UTF-8?Q?le?="', /encoded word/],
    ['lower-case q, _method', 'Content-Disposition: form-data; name="=?utf-8?q?=5Fmethod?="', /encoded word/],
    ['unquoted', 'Content-Disposition: form-data; name==?UTF-8?Q?role?=', /encoded word|cannot read/],
    ['trailing text (Tomcat drops it)', 'Content-Disposition: form-data; name="=?UTF-8?Q?role?=x"', /encoded word/],
    [
      'Q file name',
      'Content-Disposition: form-data; name="file"; filename="=?UTF-8?Q?=3Cscript=3Ealert(1)=3C/script=3E.txt?="\r\nContent-Type: text/plain',
      /encoded word/,
    ],
    [
      'B file name',
      'Content-Disposition: form-data; name="file"; filename="=?UTF-8?B?Li4vLi4vLi4vZXRjL3Bhc3N3ZA==?="\r\nContent-Type: text/plain',
      /encoded word/,
    ],
    ['another parameter', 'Content-Disposition: form-data; name="note"; x="=?UTF-8?Q?a?="', /encoded word/],
    // Jetty's QuotedStringTokenizer opens a single-quoted span at a "'" inside an unquoted value:
    // the filename between is inside x's value to it, a text field, and a file to busboy.
    ['a quote in an unquoted value', `Content-Disposition: form-data; name="note"; x=a'; filename="b.txt"; y=b'`, /single quote/],
    ['a quote ending an unquoted name', `Content-Disposition: form-data; name=note'`, /single quote/],
    ['a quote inside an unquoted name', `Content-Disposition: form-data; name=no'te`, /single quote/],
  ];
  for (const [what, block, detail] of refused) {
    t.match(partHeaderProblem(block), detail, what);
    t.match([...problemsOf(part(block, 'x') + close)], [detail], `${what}: however it is cut`);
  }
  // Jetty under `Boundary=AA` splits at bare "--" lines: what busboy takes for the preamble.
  for (const [what, preamble] of [
    ['a "--" line', `--\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n----\r\n`],
    ['a "--x" line after text', `text\r\n--x\r\n`],
    ['a "--" line after a bare line feed', `text\n--\r\n`],
  ] as const) {
    const found = [...problemsOf(preamble + field('name', 'eve') + close)];
    t.equal(found.length, 1, `${what}: the same answer however it is cut`);
    t.match(found[0], /preamble/, what);
  }
  // Benign shapes pass: "=?" without an encoded word, "'" inside double quotes, "-" in a preamble line.
  for (const block of [
    'Content-Disposition: form-data; name="f"; filename="a=?b.txt"\r\nContent-Type: text/plain',
    'Content-Disposition: form-data; name="f"; filename="why=?.txt"\r\nContent-Type: text/plain',
    'Content-Disposition: form-data; name="f"; filename="a?=b=?c.txt"\r\nContent-Type: text/plain',
    `Content-Disposition: form-data; name="f"; filename="John's.txt"\r\nContent-Type: text/plain`,
    `Content-Disposition: form-data; name="it's"`,
  ])
    t.equal(partHeaderProblem(block), undefined, block);
  t.same([...problemsOf(`a preamble - with -dashes-\r\n-x\r\n${field('a', 'x')}${close}`)], [undefined], 'a preamble without a "--" line');
});
