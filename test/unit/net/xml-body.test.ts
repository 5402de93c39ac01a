import t from 'tap';
import fc from 'fast-check';
import { isActiveDoctype, readXml as readXmlWithin, xmlEncodingProblem } from '../../../src/net/xml-body.js';

const readXml = (text: string) => readXmlWithin(text, { maxDepth: 32, maxStrings: 1000 });

t.test('readXml: text, CDATA, attributes and instructions under their element paths, references decoded', async (t) => {
  const xml = readXml(
    '<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE order><order id="7" note="a&#x27;b"><note>O&apos;Brien &amp; &#60;b&#62;</note><![CDATA[<x>]]><?app do this?>\n  <empty/></order>',
  );
  t.equal(xml.error, undefined);
  t.equal(xml.doctype, ' order');
  t.same(xml.strings, [
    ['/order/@id#name', 'id'],
    ['/order/@id', '7'],
    ['/order/@note#name', 'note'],
    ['/order/@note', "a'b"],
    ['/order/note', "O'Brien & <b>"],
    ['/order', '<x>'],
    ['/order#pi', 'app do this'],
  ]);
});

t.test('readXml: what a strict parser refuses is named, never thrown', async (t) => {
  for (const bad of ['<r><q>unclosed</r>', '<r>&undefined;</r>', '<r a="1" a="2"/>', '', 'not xml', '<r/><r/>', '<r>\u0000</r>'])
    t.type(readXml(bad).error, 'string', JSON.stringify(bad));
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (text) => {
      const xml = readXml(text);
      return Array.isArray(xml.strings);
    }),
    { numRuns: 500 },
  );
});

t.test('isActiveDoctype: an internal subset or an external identifier', async (t) => {
  t.notOk(isActiveDoctype(' order'));
  t.ok(isActiveDoctype(' r [<!ENTITY a "b">]'));
  t.ok(isActiveDoctype(' r SYSTEM "https://x/y.dtd"'));
  t.ok(isActiveDoctype(' html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "x.dtd"'));
});

t.test('xmlEncodingProblem: byte order marks and declarations a parser reads', async (t) => {
  t.equal(xmlEncodingProblem('application/xml', Buffer.from('<r/>')), undefined);
  t.equal(
    xmlEncodingProblem('application/xml', Buffer.from('\ufeff  <?xml version="1.0" encoding="iso-8859-1"?><r/>')),
    undefined,
    'UTF-8 BOM, Latin-1',
  );
  t.equal(xmlEncodingProblem('application/json', Buffer.from('\ufeff<r/>', 'utf16le')), undefined, 'only XML');
  t.match(xmlEncodingProblem('application/xml', Buffer.from('\ufeff<r/>', 'utf16le')), /first bytes/, 'UTF-16LE by its BOM');
  t.match(xmlEncodingProblem('text/xml', Buffer.from([0x4c, 0x6f, 0xa7, 0x94])), /first bytes/, 'EBCDIC <?xm');
  t.equal(xmlEncodingProblem('application/soap+xml', Buffer.from('<?xml version="1.0" encoding="UTF-16"?><r/>')), 'UTF-16');
  t.equal(xmlEncodingProblem('application/xml', Buffer.from('')), undefined, 'empty');
});

t.test('readXml: stops at its limits (max_depth, max_entries)', async (t) => {
  // Joining the path per tag made this quadratic (5.8 s for 30 000 levels); the depth limit now stops it at once.
  const deep = readXml('<a>'.repeat(100_000) + 'x' + '</a>'.repeat(100_000));
  t.equal(deep.tooLarge, 'depth', '100 000 nested elements: too deep');
  t.equal(deep.strings.length, 0, 'nothing read past the limit');
  t.equal(readXml('<a>'.repeat(32) + 'x' + '</a>'.repeat(32)).tooLarge, undefined, '32 levels are read');
  const wide = readXml(`<r>${'<i a="1"/>'.repeat(600)}</r>`);
  t.equal(wide.tooLarge, 'entries', '1 200 strings: too many');
  t.equal(wide.strings.length, 1000, 'reading stopped at the limit');
});
