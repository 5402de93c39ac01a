/**
 * formidable's readings of a Content-Disposition value, held to formidable's own regexes (copied
 * from formidable 3.5.4 src/plugins/multipart.js:79 and Formidable.js:554, and 1.2.6
 * lib/incoming_form.js:370 and :440): the file name is found in one pass where the regex, tried
 * from every `filename="`, is quadratic.
 */
import t from 'tap';
import { formidableFileName, formidablePartName, formidableRawFileName } from '../../../src/threats/formidable-readings.js';

const NAME = /\bname=("([^"]*)"|([^\(\)<>@,;:\\"\/\[\]\?=\{\}\s\t/]+))/i; // eslint-disable-line no-useless-escape
const FILENAME_3 = /\bfilename=("(.*?)"|([^()<>{}[\]@,;:"?=\s/\t]+))($|;\s)/i;
const FILENAME_1 = /\bfilename=("(.*?)"|([^\(\)<>@,;:\\"\/\[\]\?=\{\}\s\t/]+))($|;\s)/i; // eslint-disable-line no-useless-escape
const formidable = (re: RegExp, value: string) => {
  const m = re.exec(value);
  return m === null ? undefined : m[2] || m[3] || '';
};

t.test('names and file names as formidable reads them', async (t) => {
  const names: [string, string | undefined][] = [
    ['form-data; name="role"', 'role'],
    ['form-data; x-name="role"; name="x"', 'role'],
    ['form-data; a="name=role"; name="x"', 'role'],
    ['form-data; a="b name=role"; name="x"', 'role'],
    ['form-data; my.name=role; name="x"', 'role'],
    ['form-data; name="x"; x-name="role"', 'x'],
    ['form-data; xname="role"; name="x"', 'x'],
    ['form-data; filename="a.txt"', undefined],
    ['form-data; name="a\\"b"', 'a\\'],
  ];
  for (const [value, name] of names) t.equal(formidablePartName(value), name, value);
  const files: [string, string | undefined, string | undefined][] = [
    ['form-data; name="f"; filename="a.txt"', 'a.txt', 'a.txt'],
    ['form-data; name="f"; filename="a.txt";x=1', undefined, undefined],
    ['form-data; name="f"; filename="a.txt"; x=1', 'a.txt', 'a.txt'],
    ['form-data; name="f"; filename="a.txt" ', undefined, undefined],
    ['form-data; name="f"; filename="a";x=" b"', 'a";x=" b', 'a";x=" b'],
    ['form-data; name="f"; filename="a\\"; b"', 'a\\', 'a\\'],
    ['form-data; name="f"; x-filename="c"; filename="a"', 'c', 'c'],
    ['form-data; name="f"; filename=a\\b.txt', 'a\\b.txt', undefined],
    ['form-data; name="f"; filename=""', '', ''],
    ['form-data; name="f"; filename="a\u2028b"', undefined, undefined],
  ];
  for (const [value, three, one] of files) {
    // (A U+2028 in a test name breaks TAP's lines.)
    const what = value.replace('\u2028', '<U+2028>');
    t.equal(formidableRawFileName(value, 3), three, `${what}: formidable 3`);
    t.equal(formidableRawFileName(value, 1), one, `${what}: formidable 1.2.6`);
  }
  t.equal(formidableFileName('&#0060;script&#0062;.txt'), '<script>.txt', '&#dddd; decoded');
  t.equal(formidableFileName('..&#0047;..&#0047;etc&#0047;passwd'), '../../etc/passwd');
  t.equal(formidableFileName('a%22b.txt'), 'a"b.txt', '%22 decoded');
  t.equal(formidableFileName('C:\\fakepath\\x\\"&#39;.txt'), '"&#39;.txt', 'after the last "\\"; three digits are not decoded');
});

t.test('the same readings as formidable’s regexes, on random values', async (t) => {
  const atoms = [
    'filename=',
    'FileName=',
    'x-filename=',
    'name=',
    '"',
    ';',
    '; ',
    ';\t',
    ' ',
    'a',
    'b.txt',
    '\\',
    '=',
    '\n',
    '\u2028',
    '/',
    ',',
    '\u3000',
    'é',
  ];
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  let differ = 0;
  for (let i = 0; i < 50000; i++) {
    let value = '';
    for (let j = 1 + random(10); j > 0; j--) value += atoms[random(atoms.length)];
    if (formidableRawFileName(value, 3) !== formidable(FILENAME_3, value)) differ++;
    if (formidableRawFileName(value, 1) !== formidable(FILENAME_1, value)) differ++;
    if (formidablePartName(value) !== (NAME.exec(value) === null ? undefined : formidable(NAME, value))) differ++;
  }
  t.equal(differ, 0, '50,000 values, three readings each');
});

t.test('linear on hostile values', async (t) => {
  for (const unit of ['filename="', 'filename=a', 'filename="a"x', 'name="', '"']) {
    const value = unit.repeat(Math.ceil((1024 * 1024) / unit.length));
    const start = performance.now();
    formidableRawFileName(value, 3);
    formidableRawFileName(value, 1);
    formidablePartName(value);
    // formidable's own regex takes seconds on a 64 KiB run of `filename="`.
    t.ok(performance.now() - start < 500, `1 MiB of ${unit}: ${(performance.now() - start).toFixed(1)} ms`);
  }
});
