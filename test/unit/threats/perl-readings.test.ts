/**
 * The Perl readers' readings of a Content-Disposition value and a part's Content-Type, held to
 * their own regexes (copied from Mojolicious 9.31 Mojo/Message.pm:267-269 and Mojo/Content.pm:14,
 * HTTP::Body 1.22 HTTP/Body/MultiPart.pm:267-268, CGI.pm 4.55 CGI.pm:3363 and :3466-3479; Perl's
 * and JavaScript's semantics agree on these): the functions read the same in one pass.
 */
import t from 'tap';
import { hostSlowdown } from '../../support/host-load.js';
import {
  cgiFileName,
  cgiPartName,
  httpBodyFileName,
  httpBodyPartName,
  mojoMultipart,
  mojoPartName,
  mojoReadsFileName,
  perlProblem,
} from '../../../src/threats/perl-readings.js';

const MOJO_FILENAME = /[; ]filename="((?:\\"|[^"])*)"/;
const MOJO_NAME = /[; ]name="((?:\\"|[^;"])*)"/;
const MOJO_BOUNDARY = /multipart.*boundary\s*=/i;
const HB_NAME = / name="?([^";]+)"?/;
const HB_FILENAME = / filename="?([^"]*)"?/;
const CGI_FILENAME = / filename=(("[^"]*")|([a-z\d!#'*+,.^_`{}|~]*))/i;
const CGI_QUOTED = /[\s;]name="/;
const CGI_NAME_QUOTED = /[\s;]name="((?:\\"|[^"])*)"/;
const CGI_NAME_TOKEN = /[\s;]name=([^()<>@,;:\\"/[\]?={} \r\n\t]*)/;
const cgiFile = (value: string) => {
  // `$filename ||= ''; $filename =~ s/^"([^"]*)"$/$1/;`
  const raw = CGI_FILENAME.exec(value)?.[1] || '';
  return raw === '0' ? '' : raw.replace(/^"([^"]*)"$/, '$1');
};
const cgiName = (value: string) => (CGI_QUOTED.test(value) ? CGI_NAME_QUOTED : CGI_NAME_TOKEN).exec(value)?.[1];

t.test('what clients send reads as busboy reads it', async (t) => {
  for (const value of [
    'form-data; name="note"',
    'form-data; name="doc"; filename="notes.txt"',
    'form-data; name="avatar"; filename="photo 1.png"',
    'form-data; name="q"; filename="my \\"quoted\\" notes.txt"',
    'form-data; name="q"; filename="my %22quoted%22 notes.txt"',
  ]) {
    const file = value.includes('filename');
    t.equal(mojoReadsFileName(value), file, `${value}: Mojolicious`);
    t.equal(httpBodyFileName(value) !== undefined && httpBodyFileName(value) !== '', file, `${value}: HTTP::Body`);
    t.equal(cgiFileName(value) !== '', file, `${value}: CGI.pm`);
    const name = /name="([^"]*)"/.exec(value)?.[1];
    t.same([mojoPartName(value), httpBodyPartName(value), cgiPartName(value)], [name, name, name], `${value}: names`);
    t.equal(perlProblem(value, name, file), undefined, `${value}: no problem`);
  }
  t.equal(perlProblem('form-data; name="empty"; filename=""', 'empty', false), undefined, "a browser's empty file input");
});

t.test('file parts the Perl readers read as text fields, names they read otherwise (red team round 26, F5)', async (t) => {
  const fields: [string, RegExp][] = [
    ['form-data; name="note"; filename=a.txt', /a file part Mojolicious reads as a text field/],
    ['form-data; name="note";\tfilename="a.txt"', /a file part Mojolicious reads as a text field/],
    ['form-data; name="note";filename="a.txt"', /a file part HTTP::Body \(Catalyst\) reads as a text field/],
    ['form-data; name="note";filename=a.txt', /a file part Mojolicious reads as a text field/],
    ['form-data; name="note" ;filename="a.txt"', /HTTP::Body \(Catalyst\) reads as a text field/],
  ];
  for (const [value, why] of fields) t.match(perlProblem(value, 'note', true), why, value);
  t.equal(cgiFileName('form-data; name="note";filename="a.txt"'), '', 'CGI.pm: no file name after ";"');
  t.equal(cgiFileName('form-data; name="note"; filename=0'), '', 'CGI.pm: "0" is false');
  const names: [string, string, RegExp][] = [
    ['form-data; name="role;x"', 'role;x', /HTTP::Body \(Catalyst\) reads under another name \("role", not "role;x"\)/],
    ['form-data;name="note"; a=" name=role"', 'note', /HTTP::Body \(Catalyst\) reads under another name \("role"/],
    ['form-data; a="x name="; name="note"', 'note', /CGI.pm reads under another name \("; name="/],
  ];
  for (const [value, name, why] of names) t.match(perlProblem(value, name, false), why, value);
});

t.test('Content-Types Mojolicious reads as multipart (red team round 26, F3)', async (t) => {
  for (const type of [
    'application/x-multipart; boundary=AA',
    'text/plain; x="multipart"; boundary=AA',
    'image/png; a=multipart; boundary=AA',
    'image/png; a=MultiPart; BOUNDARY =AA',
    'multipart/mixed; boundary=AA',
  ])
    t.ok(mojoMultipart(type), type);
  for (const type of ['image/png', 'text/plain; boundary=AA; x=multipart', 'application/octet-stream; multipart=1'])
    t.notOk(mojoMultipart(type), type);
});

t.test('the same readings as the Perl regexes, on random values', async (t) => {
  const atoms = [
    'filename=',
    'FILENAME=',
    'name=',
    'multipart',
    'boundary',
    '=',
    '"',
    '\\"',
    '\\',
    ';',
    '; ',
    ';\t',
    ' ',
    '\t',
    'a',
    '0',
    'b.txt',
    '/',
  ];
  let seed = 11;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  let differ = 0;
  for (let i = 0; i < 50000; i++) {
    let value = '';
    for (let j = 1 + random(12); j > 0; j--) value += atoms[random(atoms.length)];
    if (mojoReadsFileName(value) !== MOJO_FILENAME.test(value)) differ++;
    if (mojoPartName(value) !== MOJO_NAME.exec(value)?.[1]) differ++;
    if (mojoMultipart(value) !== MOJO_BOUNDARY.test(value)) differ++;
    if (httpBodyPartName(value) !== HB_NAME.exec(value)?.[1]) differ++;
    if (httpBodyFileName(value) !== HB_FILENAME.exec(value)?.[1]) differ++;
    if (cgiFileName(value) !== cgiFile(value)) differ++;
    if (cgiPartName(value) !== cgiName(value)) differ++;
  }
  t.equal(differ, 0, '50,000 values, seven readings each');
});

t.test('linear on hostile values', async (t) => {
  const units = [
    'filename="',
    ' filename="',
    ';filename="\\"',
    ' name="',
    ' name="\\"',
    '; name="\\"\\"',
    ' name=',
    'multipart',
    'boundary ',
    '\\"',
    '"',
  ];
  for (const size of [16 * 1024, 64 * 1024, 1024 * 1024, 10 * 1024 * 1024]) {
    let worst = 0;
    for (const unit of units) {
      const value = unit.repeat(Math.ceil(size / unit.length));
      const start = performance.now();
      mojoReadsFileName(value);
      mojoPartName(value);
      mojoMultipart(value);
      httpBodyFileName(value);
      httpBodyPartName(value);
      cgiFileName(value);
      cgiPartName(value);
      perlProblem(value, 'x', true);
      worst = Math.max(worst, performance.now() - start);
    }
    t.ok(worst < (size / 2048) * hostSlowdown(), `${size / 1024} KiB: the worst unit ${worst.toFixed(1)} ms`);
  }
});
