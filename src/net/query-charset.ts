import { WardenError } from '../errors.js';
import { unreadableCharset } from './media-type.js';

/**
 * Charset names (lower case, each run of other characters than a-z and 0-9 read as one `_`, as
 * Python's codec lookup folds them) whose Python codec reads the percent-decoded bytes of a query
 * value as Warden's UTF-8 reading does for every ASCII character: each ASCII byte is itself, no
 * other byte sequence reads as an ASCII character, and none takes an ASCII byte into a character
 * of its own. Checked over all of Python 3.11's codecs and aliases: ASCII and UTF-8 (and
 * utf-8-sig), the ISO-8859 and Windows-125x sets, the DOS code pages but cp864, KOI8-R/U/T,
 * TIS-620 and the other single-byte sets, the Mac ones but mac_arabic and mac_farsi, and the EUC
 * sets (EUC-JP, EUC-KR, GB2312/EUC-CN: trail bytes ≥ 0xA1; at the very end of a value Python's
 * euc_jp drops up to two characters after an unfinished 3-byte lead, a prefix of what was read).
 * Not Shift_JIS, cp932, Big5, GBK, GB18030, cp949 (UHC) or Johab, whose trail bytes include ASCII
 * 0x40-0x7E: `%81\` is one character to the backend, and the `\` the waf read before a quote is
 * gone; nor UTF-7, UTF-16/32, UCS-2, EBCDIC (cp037, cp500, cp1140, …), ISO-2022-*, HZ,
 * unicode_escape, raw_unicode_escape, punycode or idna. A name not listed is refused.
 */
const QUERY_SAFE = new RegExp(
  '^(?:' +
    [
      'utf_?8(?:_sig|_ucs[24])?|u8|utf|cp65001',
      '(?:us_)?ascii|us|646|ansi_x3_4_19(?:68|86)|cp367|ibm367|csascii|iso_?646_(?:us|irv_1991)|iso_ir_6',
      'iso_?8859(?:_(?:[1-9]|1[013-6])(?:_\\d{4}(?:_\\d)?)?)?|8859|latin(?:_?(?:[1-9]|10))?|l(?:[1-9]|10)|cp819|ibm819',
      'csisolatin(?:[1-6]|cyrillic|arabic|greek|hebrew)|iso_ir_(?:100|101|109|110|126|127|138|144|148|157|166|199|226)',
      'cyrillic|arabic|greek8?|hebrew|thai|asmo_708|ecma_11[48]|elot_928|iso_celtic',
      '(?:windows_|cp|x_cp)?125\\d',
      '(?:cp|ibm|csibm|cspc)?(?:437|720|737|775|850|852|855|856|857|858|860|861|862|863|865|866|869|874|1006|1125)',
      'cspc8codepage437|cspc775baltic|cspc850multilingual|cspcp852|cspc862latinhebrew|cp_is|cp_gr|cp866u|ruscii',
      'koi8_[rtu]|cskoi8r|kz_?1048|rk1048|strk1048_2002|(?:cs)?ptcp154|pt154|cp154|cyrillic_asian',
      'hp_?roman8|roman8|r8|cp1051|ibm1051|cshproman8',
      'mac_?(?:roman|croatian|cyrillic|greek|iceland|latin2|centeuro|romanian|turkish)|macintosh|maccentraleurope',
      'tis_?620(?:_0|_2529_[01])?|iso_ir_166',
      '(?:x_)?euc_?(?:jp|kr|cn|jis_?2004|jisx0213)|ujis|u_jis|jisx0213|eucgb2312_cn|korean|ks_?c_?5601(?:_1987)?|ks_?x_?1001|x_mac_korean',
      'gb2312(?:_1980|_80)?|chinese|csiso58gb231280|iso_ir_58|x_mac_simp_chinese',
      'palmos|charmap',
    ].join('|') +
    ')$',
);
/** Any run of characters other than a-z and 0-9 (Python's normalize_encoding folds each into `_`). */
const SEPARATORS = /[^a-z0-9]+/g;

const MAX_NAME = 64;

/** libmagic's charsets for content that is not text (`file -bi`): no decoder knows either name. */
const NOT_TEXT = /^(?:binary|unknown_8bit)$/;

/**
 * Whether a query decoded in this charset (as Django decodes request.GET) reads the same ASCII
 * characters Warden reads. An empty name (`charset=`) names no codec: Django keeps UTF-8.
 */
export function queryCharsetReadable(charset: string): boolean {
  // No safe name is near this long: a hostile one is refused unread.
  if (charset.length > MAX_NAME) return false;
  const folded = charset.toLowerCase().replace(SEPARATORS, '_');
  const name = folded.slice(folded.startsWith('_') ? 1 : 0, folded.endsWith('_') ? -1 : undefined);
  return name === '' || QUERY_SAFE.test(name) || NOT_TEXT.test(name);
}

/**
 * Why a request with a query string is refused for its Content-Type's charset, or undefined.
 * Django's WSGIRequest.GET decodes the query string in the charset the request's Content-Type
 * names (`HttpRequest._set_content_type_params`: any codec Python knows), on every method, with a
 * body or without: a GET typed `text/plain; charset=utf-7` with `?q=%2BADw-script%2BAD4-` was
 * `<script>` to `request.GET` while the waf and validation read the query as UTF-8 (red team 29,
 * F2). Run only on routes where a stage reads the query (RoutePlan.readsQuery: the waf, OpenAPI
 * validation, a query token source or API key): elsewhere nothing here reads it, and a UTF-16
 * upload to `?overwrite=true` was refused for nothing (review1 F3). The charsets refused are those
 * in which the query's ASCII could read otherwise (queryCharsetReadable), wherever a `charset=`
 * stands (unreadableCharset's two readings). Without a query nothing is decoded in it; a bare "?"
 * is no query.
 */
export function queryCharsetRefusal(contentType: string | undefined, search: string): WardenError | undefined {
  if (contentType === undefined || search.length <= 1) return undefined;
  const charset = unreadableCharset(contentType, queryCharsetReadable);
  if (charset === undefined) return undefined;
  return new WardenError('ERR_MEDIA_TYPE_UNSUPPORTED', {
    rule: 'content_type.query_charset',
    detail: `The query is read as UTF-8 here; a backend may decode it in the Content-Type's charset (Django's request.GET), and in ${charset.slice(0, 40) || 'an empty charset'} it could read other parameters. Send no charset, or an ASCII-compatible one, with a query.`,
  });
}
