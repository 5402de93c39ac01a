/**
 * ajv-formats' `url` format in linear time. Its regular expression (Diego Perini's) backtracks
 * quadratically: a 393 KB JSON body with a `format: url` field held the event loop 24.8 s
 * (docs/adversarial.md defect 115). This is the same language on RE2: the three lookaheads that
 * refuse private IPv4 hosts (10/8, 127/8, 169.254/16, 192.168/16, 172.16/12) are written out as
 * the first two octets they leave, so every string gets the verdict it got from ajv-formats
 * (test/unit/openapi/formats.test.ts compares them).
 */
import { re2Pattern } from './pattern-engine.js';

const OCTET = '(?:1?\\d{1,2}|2[0-4]\\d|25[0-5])';
const LAST_OCTET = '(?:[1-9]\\d?|1\\d\\d|2[0-4]\\d|25[0-4])';
/** First octets 1–223 but 10, 127 and the three whose second octet decides. */
const FIRST_OCTET = '(?:[1-9]|1[1-9]|[2-9]\\d|1[01]\\d|12[0-6]|12[89]|1[3-5]\\d|16[0-8]|17[013-9]|18\\d|19[013-9]|2[01]\\d|22[0-3])';
const PUBLIC_IPV4 =
  `(?:${FIRST_OCTET}\\.${OCTET}` +
  `|169\\.(?:1?\\d{1,2}|2[0-4]\\d|25[0-35])` + // not 169.254
  `|192\\.(?:\\d{1,2}|1[0-57-9]\\d|16[0-79]|2[0-4]\\d|25[0-5])` + // not 192.168
  `|172\\.(?:\\d|0\\d|1[0-5]|3[2-9]|[4-9]\\d|1\\d\\d|2[0-4]\\d|25[0-5])` + // not 172.16–31
  `)\\.${OCTET}\\.${LAST_OCTET}`;
const LABEL = '(?:[a-z0-9\\u{00a1}-\\u{ffff}]+-)*[a-z0-9\\u{00a1}-\\u{ffff}]+';
const HOST = `(?:${PUBLIC_IPV4}|${LABEL}(?:\\.${LABEL})*\\.[a-z\\u{00a1}-\\u{ffff}]{2,})`;
export const URL_PATTERN = `^(?:https?|ftp):\\/\\/(?:\\S+(?::\\S*)?@)?${HOST}(?::\\d{2,5})?(?:\\/[^\\s]*)?$`;

// Compiled on first use: RE2 is loaded only when something needs it (pattern-engine.ts).
let url: { test(s: string): boolean } | undefined;

export const urlFormat = { type: 'string' as const, validate: (s: string) => (url ??= re2Pattern(URL_PATTERN, 'iu')).test(s) };
