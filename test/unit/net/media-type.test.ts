import t from 'tap';
import { isAsciiCompatibleCharset, mediaTypeOf, repeatedParameter, unreadableCharset } from '../../../src/net/media-type.js';

t.test('mediaTypeOf: lower case, without parameters', async (t) => {
  t.equal(mediaTypeOf('Application/JSON; charset=utf-8'), 'application/json');
  t.equal(mediaTypeOf(undefined), '');
});

t.test('repeatedParameter: a Content-Type parameter given twice', async (t) => {
  const repeated: [string, string][] = [
    ['multipart/form-data; boundary=a; boundary=b', 'boundary'],
    ['multipart/form-data; boundary=a;BOUNDARY=b', 'boundary'],
    ['multipart/form-data; boundary="a;x"; charset=utf-8; boundary=b', 'boundary'],
    ['multipart/form-data; boundary="a\\"; boundary=c"; boundary=b', 'boundary'],
    ['application/json; charset=utf-8; charset=utf-16', 'charset'],
    ['text/plain; a; a', 'a'],
  ];
  for (const [ct, name] of repeated) t.equal(repeatedParameter(ct), name, ct);
  const single = [
    'application/json',
    'application/json; charset=utf-8',
    'multipart/form-data; boundary=a; charset=utf-8',
    'multipart/form-data; boundary="x; boundary=y"; charset=utf-8',
    'multipart/form-data; boundary="a\\"b; boundary=c"',
    'text/plain;;',
    'text/plain; charset="unterminated; charset=x',
  ];
  for (const ct of single) t.equal(repeatedParameter(ct), undefined, ct);
});

t.test('unreadableCharset: charsets where ASCII text is not its own bytes', async (t) => {
  for (const ct of [
    undefined,
    'application/json',
    'application/json; charset=utf-8',
    'application/json;charset="UTF-8"',
    'application/x-www-form-urlencoded; charset=ISO-8859-1',
    'text/plain; charset=windows-1252',
    'text/plain; charset=us-ascii',
    'text/plain; charset=latin1',
  ])
    t.equal(unreadableCharset(ct), undefined, `${String(ct)}: read as UTF-8`);
  for (const [ct, charset] of [
    ['application/json; charset=utf-16le', 'utf-16le'],
    ['application/json; charset="UTF-16"', 'utf-16'],
    ['application/x-www-form-urlencoded; charset=ibm037', 'ibm037'],
    ['text/html; charset=utf-7', 'utf-7'],
    ['application/json; boundary=x; charset=UTF-32BE', 'utf-32be'],
    ['application/json; charset=', ''],
  ])
    t.equal(unreadableCharset(ct), charset, `${ct}: ${charset}`);
});

t.test('isAsciiCompatibleCharset: a charset name as a _charset_ field or parameter gives it', async (t) => {
  for (const name of ['UTF-8', ' utf8 ', 'US-ASCII', 'ISO-8859-15', 'windows-1251']) t.ok(isAsciiCompatibleCharset(name), name);
  for (const name of ['IBM037', 'utf-16le', 'UTF-7', 'shift_jis', '', 'utf-8; x'])
    t.notOk(isAsciiCompatibleCharset(name), JSON.stringify(name));
});
