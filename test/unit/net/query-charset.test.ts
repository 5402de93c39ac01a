import t from 'tap';
import { queryCharsetRefusal } from '../../../src/net/query-charset.js';

t.test('queryCharsetRefusal: a Content-Type charset Django would decode the query in', async (t) => {
  for (const type of [
    'text/plain; charset=utf-7',
    'application/octet-stream; charset="UTF-7"',
    'text/plain; x="charset=utf-16le"',
    'text/plain; charset=ibm037',
    'application/json; charset=utf-32',
    'text/plain; charset=shift_jis',
  ]) {
    const refusal = queryCharsetRefusal(type, '?q=x');
    t.equal(refusal?.code, 'ERR_MEDIA_TYPE_UNSUPPORTED', `${type}: refused`);
    t.equal(refusal?.rule, 'content_type.query_charset', `${type}: rule`);
    t.equal(queryCharsetRefusal(type, ''), undefined, `${type} without a query: passes`);
    t.equal(queryCharsetRefusal(type, '?'), undefined, `${type} with a bare "?": passes`);
  }
  for (const type of [
    undefined,
    'text/plain',
    'text/plain; charset=utf-8',
    'application/json; charset=UTF-8',
    'text/csv; charset=iso-8859-1',
    'text/plain; charset=windows-1252',
    'application/octet-stream; charset=binary',
    'image/png; charset=unknown-8bit',
  ])
    t.equal(queryCharsetRefusal(type, '?q=x'), undefined, `${String(type)} with a query: passes`);
});
