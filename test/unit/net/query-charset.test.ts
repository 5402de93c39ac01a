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
    // Trail bytes include ASCII 0x40-0x7E: a lead byte from a %XX takes the next ASCII character.
    'text/plain; charset=big5',
    'text/plain; charset=Big5-HKSCS',
    'text/plain; charset=cp932',
    'text/plain; charset=gbk',
    'text/plain; charset=gb18030',
    'text/plain; charset=cp949',
    'text/plain; charset=johab',
    // Stateful, escaping and transforming codecs, EBCDIC and single-byte sets not ASCII to ASCII.
    'text/plain; charset=iso-2022-jp',
    'text/plain; charset=iso2022_kr',
    'text/plain; charset=hz-gb-2312',
    'text/plain; charset=unicode_escape',
    'text/plain; charset=raw-unicode-escape',
    'text/plain; charset=punycode',
    'text/plain; charset=idna',
    'text/plain; charset=cp037',
    'text/plain; charset=ebcdic-cp-us',
    'text/plain; charset=cp1140',
    'text/plain; charset=cp864',
    'text/plain; charset=mac_arabic',
    'text/plain; charset=mac-farsi',
    'text/plain; charset=ucs-2',
    'text/plain; charset=u16',
    'text/plain; charset=utf_32_le',
    'text/plain; charset="utf 7"',
    'text/plain; charset=utf--7',
    'text/plain; charset=*utf-7*',
    'text/plain; charset=utf/7',
    'text/plain; charset=utf\u00e97',
    'text/plain; charset=037',
    'text/plain; charset=mbcs',
    // Names no decoder here is known to read as ASCII: refused, as before.
    'text/plain; charset=x-unknown',
    'text/plain; charset=utf-8; charset=utf-7',
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
    // Charsets in which ASCII is itself and no other bytes read as ASCII nor take an ASCII byte
    // (Python's codecs, as Django decodes the query; review1 F3).
    'text/plain; charset=euc-kr',
    'text/plain; charset=EUC-JP',
    'text/plain; charset=euc_jis_2004',
    'text/plain; charset=gb2312',
    'text/plain; charset=euc-cn',
    'text/plain; charset=tis-620',
    'text/plain; charset=macintosh',
    'text/plain; charset=mac-cyrillic',
    'text/plain; charset=utf-8-sig',
    'text/plain; charset=UTF_8',
    'text/plain; charset=iso-8859-15',
    'text/plain; charset=ISO_8859-1:1987',
    'text/plain; charset=latin1',
    'text/plain; charset=koi8-u',
    'text/plain; charset=cp437',
    'text/plain; charset=ibm866',
    'text/plain; charset=cp1125',
    'text/plain; charset=windows-1258',
    'text/plain; charset=us-ascii',
    'text/plain; charset=hp-roman8',
    'text/plain; charset=kz-1048',
    'text/plain; charset=ptcp154',
    'text/plain; charset=',
    'text/plain; charset=""',
  ])
    t.equal(queryCharsetRefusal(type, '?q=x'), undefined, `${String(type)} with a query: passes`);
});
