/**
 * The shared multipart reader (src/threats/multipart-stream.ts): parts other parsers read as
 * files are refused, and part parameters are read as the waf and the backend read them.
 */
import t from 'tap';
import { createMultipartStream } from '../../../src/threats/multipart-stream.js';

const B = 'outer';
const TYPE = `multipart/form-data; boundary=${B}`;

/** The body read whole: its fields, its files, and the problem the reader names. */
async function read(body: Buffer | string, type = TYPE) {
  const fields: [string, string][] = [];
  const files: [string, string][] = [];
  const stream = createMultipartStream(
    type,
    { maxParts: 100, maxFieldBytes: 1024 * 1024 },
    {
      onField: (name, value) => fields.push([name, value]),
      onFile(name, filename, content) {
        files.push([name, filename]);
        content.resume();
      },
    },
  );
  if (!stream) throw new Error('no parser');
  stream.write(Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'));
  return { fields, files, problem: await stream.end() };
}

t.test('a part whose own type is multipart/* is refused: commons-fileupload reads its sub-parts as files', async (t) => {
  const nested = (disposition: string, type: string) =>
    `--${B}\r\nContent-Disposition: ${disposition}\r\nContent-Type: ${type}\r\n\r\n` +
    `--inner\r\nContent-Disposition: file; filename="a.com"\r\nContent-Type: application/octet-stream\r\n\r\nX5O!P%@AP\r\n--inner--\r\n` +
    `\r\n--${B}--\r\n`;
  for (const [what, disposition, type] of [
    ['multipart/mixed, no filename (a field to busboy)', 'form-data; name="files"', 'multipart/mixed; boundary=inner'],
    ['multipart/mixed with a filename (a file to busboy)', 'form-data; name="files"; filename="x"', 'multipart/mixed; boundary=inner'],
    ['another multipart subtype, in upper case', 'form-data; name="files"', 'Multipart/Related; boundary=inner'],
  ]) {
    t.match((await read(nested(disposition as string, type as string))).problem, /nested multipart/, what as string);
  }
  const plain = await read(
    `--${B}\r\nContent-Disposition: form-data; name="a"\r\nContent-Type: text/plain\r\n\r\nmultipart/mixed\r\n--${B}--\r\n`,
  );
  t.equal(plain.problem, undefined, 'a text field is still read');
});

t.test('part parameters are read as UTF-8, as browsers send them (RFC 7578 §5.1)', async (t) => {
  const name = '\uFF1Cscript\uFF1E';
  const body = `--${B}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\nx\r\n--${B}\r\nContent-Disposition: form-data; name="f"; filename="${name}.txt"\r\nContent-Type: text/plain\r\n\r\ny\r\n--${B}--\r\n`;
  const found = await read(body);
  t.equal(found.problem, undefined);
  t.same(found.fields, [[name, 'x']], 'the field name, not its bytes as Latin-1');
  t.same(found.files, [['f', `${name}.txt`]], 'the file name likewise');
});

t.test('"boundary" anywhere but as the boundary parameter is refused: PHP takes the first "boundary" in the header', async (t) => {
  // The body holds an AAA-framed multipart inside the BBB part "note": busboy reads BBB, PHP AAA.
  const inner = `--AAA\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--AAA--\r\n`;
  const body = `--BBB\r\nContent-Disposition: form-data; name="note"\r\n\r\n${inner}\r\n--BBB--\r\n`;
  for (const type of [
    'multipart/form-data; xboundary=AAA; boundary=BBB',
    'multipart/form-data; x="boundary=AAA"; boundary=BBB',
    'multipart/form-data; boundary=BBB; xboundary=AAA',
    'multipart/form-data; BOUNDARY=BBB; x=boundary=AAA',
  ]) {
    const read1 = await read(body, type);
    t.match(read1.problem, /"boundary" elsewhere/, type);
    t.same(read1.fields, [], `${type}: no part read`);
  }
  // Browsers' boundaries hold the word: a value is no other reading while its name comes first to PHP.
  for (const boundary of ['----WebKitFormBoundary7MA4YWxkTrZu0gW', 'myboundary']) {
    const plain = `--${boundary}\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--${boundary}--\r\n`;
    const found = await read(plain, `multipart/form-data; boundary=${boundary}`);
    t.equal(found.problem, undefined, boundary);
    t.same(found.fields, [['a', 'x']], boundary);
  }
  t.match(
    (await read(body, 'multipart/form-data; Boundary=xboundary')).problem,
    /"boundary" elsewhere/,
    'PHP finds the lower-case spelling first',
  );
});

t.test("an RFC 2231 extended parameter in the body's Content-Type is refused, on a route that only scans too", async (t) => {
  // Python's email parser joins `charset*0=utf-; charset*1=7` into UTF-7 (red team 27a, F2).
  const body = `--${B}\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--${B}--\r\n`;
  for (const type of [`${TYPE}; charset*0=utf-; charset*1=7`, `${TYPE}; charset*=utf-7''`]) {
    const found = await read(body, type);
    t.match(found.problem, /extended parameter/, type);
    t.same(found.fields, [], `${type}: no part read`);
  }
  t.equal((await read(body, `${TYPE}; charset=utf-8`)).problem, undefined, 'a plain charset=utf-8 passes');
});

t.test('a part busboy skips is refused, whatever made it skip the part: no reader saw it, a backend may read it', async (t) => {
  const body = (disposition: string) =>
    `--${B}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--${B}\r\nContent-Disposition: ${disposition}\r\n\r\nhidden\r\n--${B}--\r\n`;
  // busboy's parseDisposition refuses each of these, and busboy drops the part; PHP 8.2 reads it.
  for (const disposition of [
    'form-data; name="file"; filename="eicar.com";',
    'form-data; name="file"; filename= "eicar.com"',
    'form-data; name="file"; filename=a/eicar.com',
    'form-data; name="q";',
    'form-data; name=q[]',
  ]) {
    const found = await read(body(disposition));
    t.match(found.problem, /Content-Disposition the parser cannot read/, disposition);
    t.same(found.fields, [['note', 'hello']], `${disposition}: busboy gave only the other part`);
  }
  // Read by commons-fileupload (its disposition starts `form-data`), skipped by busboy (its type is
  // not form-data); in multipart/mixed, parts not form-data are no problem: only the count sees it.
  const mixed = await read(body('form-dataX; name=q'), `multipart/mixed; boundary=${B}`);
  t.match(mixed.problem, /a part the parser did not read \(1 of 2 read\)/, 'multipart/mixed: a form-data part busboy skipped');
  const batch = await read(body('attachment; filename="a.txt"'), `multipart/mixed; boundary=${B}`);
  t.equal(batch.problem, undefined, 'multipart/mixed: a part no form reader reads is no problem');
  // Dispositions in busboy's grammar are read, with the names a backend reads.
  for (const [disposition, name] of [
    ['form-data; name=q', 'q'],
    ['form-data ;name="q" ;\tx="y.txt" ', 'q'],
    ['FORM-DATA; name="a=b,c"', 'a=b,c'],
  ] as const) {
    const found = await read(body(disposition));
    t.equal(found.problem, undefined, disposition);
    t.same([...found.fields, ...found.files].at(-1)?.[0], name, `${disposition}: read as ${name}`);
  }
});

t.test('onFieldFile: every part busboy reads as a text field, its bytes as sent (defects 133, 214)', async (t) => {
  const binary = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x2d, 0x58, 0x0d, 0xc3, 0x28, 0x0d]);
  const body = Buffer.concat([
    Buffer.from('--XB\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n'),
    Buffer.from(
      '--XB\r\nContent-Disposition: form-data; name="latin"\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n\xe9t\xe9\r\n',
      'latin1',
    ),
    Buffer.from('--XB\r\nContent-Disposition: form-data; name="blank"\r\n\r\n\r\n'),
    Buffer.from('--XB\r\nContent-Disposition: form-data; name="empty"; filename=""\r\n\r\n'),
    binary,
    Buffer.from('\r\n--XB\r\nContent-Disposition: form-data; name="zip"\r\nContent-Type: application/zip\r\n\r\n'),
    binary,
    Buffer.from(
      '\r\n--XB\r\nContent-Disposition: form-data; name="text"; filename=""\r\nContent-Type: application/octet-stream\r\n\r\nf\r\n--XB--\r\n',
    ),
  ]);
  // Whole, and one byte at a time: a CR before the delimiter is the delimiter's, in any cut.
  for (const step of [body.length, 1]) {
    const seen: [string, Buffer][] = [];
    const files: string[] = [];
    const pending: Promise<void>[] = [];
    const stream = createMultipartStream(
      'multipart/form-data; boundary=XB',
      { maxParts: 10, maxFieldBytes: 1024 },
      {
        onFile: (name, _filename, content) => {
          files.push(name);
          content.resume();
        },
        onFieldFile: (name, content) => {
          const chunks: Buffer[] = [];
          content.on('data', (c: Buffer) => chunks.push(c));
          pending.push(new Promise((resolve) => content.once('end', () => resolve(void seen.push([name, Buffer.concat(chunks)])))));
        },
      },
    );
    for (let i = 0; i < body.length; i += step) stream?.write(body.subarray(i, i + step));
    t.equal(await stream?.end(), undefined, `step ${step}: a valid body`);
    await Promise.all(pending);
    t.same(
      seen.map(([name, bytes]) => [name, bytes.toString('hex')]),
      [
        ['note', Buffer.from('hi').toString('hex')],
        ['latin', 'e974e9'],
        ['empty', binary.toString('hex')],
        ['zip', binary.toString('hex')],
      ],
      `step ${step}: text fields (not the empty one), filename="" and application/zip, byte for byte`,
    );
    t.same(files, ['text'], `step ${step}: busboy's own files are not given twice`);
  }
});

t.test('a form-data part without a name is refused, not handed on (a reader threw on it and ended the process)', async (t) => {
  for (const disposition of ['form-data; x="y"', 'form-data', 'form-data; filename="a.txt"']) {
    const body = `--${B}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--${B}\r\nContent-Disposition: ${disposition}\r\n\r\nhidden\r\n--${B}--\r\n`;
    const found = await read(body);
    t.match(found.problem, /a part without a name/, disposition);
    t.same(found.fields, [['note', 'hello']], `${disposition}: the named part only was handed on`);
  }
  // A reader that throws: the body is refused, the exception does not escape busboy's write.
  const stream = createMultipartStream(
    TYPE,
    { maxParts: 100, maxFieldBytes: 1024 * 1024 },
    {
      onField: () => {
        throw new Error('a reader bug');
      },
      onFile: (_name, _filename, content) => content.resume(),
    },
  );
  stream?.write(Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="q"\r\n\r\nx\r\n--${B}--\r\n`));
  t.match(await stream?.end(), /a part could not be read \(a reader bug\)/, 'a reader that throws refuses the body');
});

t.test('a _charset_ part busboy reads as a file is refused: Jetty takes the form charset from it all the same', async (t) => {
  const ebcdic = Buffer.from([0x7d, 0x40, 0xd6, 0xd9, 0x40, 0xf1, 0x7e, 0xf1, 0x40, 0x60, 0x60]); // ' OR 1=1 --
  const body = (charsetHeaders: string) =>
    Buffer.concat([
      Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="_charset_"${charsetHeaders}\r\n\r\nIBM037\r\n`),
      Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="q"\r\n\r\n`),
      ebcdic,
      Buffer.from(`\r\n--${B}--\r\n`),
    ]);
  for (const [what, headers] of [
    ['with a file name', '; filename="c.txt"'],
    ['typed application/octet-stream', '\r\nContent-Type: application/octet-stream'],
    ['as a text field (the control)', ''],
  ])
    t.match((await read(body(headers as string))).problem, /_charset_ part read as a file|charset IBM037/, what as string);
  const utf8 = await read(`--${B}\r\nContent-Disposition: form-data; name="_charset_"\r\n\r\nUTF-8\r\n--${B}--\r\n`);
  t.equal(utf8.problem, undefined, 'a _charset_ field naming UTF-8 passes');
  const emptyName = await read(`--${B}\r\nContent-Disposition: form-data; name="_charset_"; filename=""\r\n\r\nIBM037\r\n--${B}--\r\n`);
  t.match(emptyName.problem, /charset IBM037/, 'filename="" is a text field to busboy, checked as one');
});
