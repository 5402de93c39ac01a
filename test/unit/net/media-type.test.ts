import t from 'tap';
import { mediaTypeOf, repeatedParameter } from '../../../src/net/media-type.js';

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
