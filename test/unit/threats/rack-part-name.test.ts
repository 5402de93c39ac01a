/**
 * rackPartName against Rack 2.2's own reading: each expected name below is what
 * Rack::Multipart::Parser#handle_mime_head read from the same block (ruby-rack 2.2.22, run by hand
 * in red team round 22f; Ruby is no prerequisite here).
 */
import t from 'tap';
import { rackPartName } from '../../../src/threats/rack-part-name.js';

t.test("a part's name as Rack 2 reads it from the whole header block", async (t) => {
  const cases: [string, string | undefined][] = [
    ['Content-Disposition: form-data; name="note"', 'note'],
    // Greedy across `;` up to the first ":" after Content-Disposition: the last `; name=` wins.
    ['Content-Disposition: form-data; name="note"; x="; name=_method"', '_method'],
    ['Content-Disposition: form-data; name="n;name=_method"', '_method'],
    // Unanchored: inside another header's name or value, before the real one.
    ['X-Content-Disposition: form-data; name="_method"\r\nContent-Disposition: form-data; name="note"', '_method'],
    ['X-Pad: Content-Disposition: y; name=_method\r\nContent-Disposition: form-data; name="note"', '_method'],
    // A ":" before `name` leaves no match: the Content-ID line, else none (the file name or type).
    ['Content-Disposition: form-data; x=":"; name="note"\r\nContent-ID: _method', '_method'],
    ['Content-Disposition: form-data; x=":"; name="note"', undefined],
    ['Content-ID:\r\nX-A: b', 'X-A: b'],
    // Unquoted and unescaped as WEBrick does: any `\x` is `x`; a `\"` does not close the value.
    ['Content-Disposition: form-data; name="_met\\hod"', '_method'],
    ['Content-Disposition: form-data; name="a\\\\"; x="y"', 'a\\"; x='],
    // Any disposition type, names in any case; Ruby's white space is ASCII only.
    ['Content-Disposition: attachment; NAME=_method', '_method'],
    ['Content-Disposition: form-data; name=a\xa0b', 'a\xa0b'],
    ['Content-Disposition: form-data;\v name=a', 'a'],
    ['Content-Disposition: form-data; name=""', undefined],
  ];
  for (const [block, name] of cases) t.equal(rackPartName(block), name, JSON.stringify(block));
});
