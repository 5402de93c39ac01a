import t from 'tap';
import fc from 'fast-check';
import { isActiveDoctype, readXml as readXmlWithin, xmlEncodingProblem } from '../../../src/net/xml-body.js';

const LIMITS = { maxDepth: 32, maxStrings: 1000, maxNestedText: 1 << 20 };
const readXml = (text: string) => readXmlWithin(text, LIMITS);
/** The strings read, as [path, text] pairs, without attributes and instructions. */
const texts = (text: string) => readXml(text).strings.filter(([path]) => !path.includes('@') && !path.endsWith('#pi'));

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
    ['/order#pi', 'app do this'],
    ['/order', '<x>\n  '],
    ['/order#text', "O'Brien & <b><x>\n  "],
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

t.test('readXml: an element’s text is read joined, never piece by piece (comments, CDATA, instructions, empty children)', async (t) => {
  const sqli = ['/order/id', "1' UNION SELECT password FROM users--"];
  const xss = ['/order/note', '<script>alert(document.cookie)</script>'];
  for (const [what, xml, joined] of [
    ['comments', "<order><id>1' UNI<!---->ON SEL<!---->ECT password FROM users--</id></order>", sqli],
    ['CDATA sections', "<order><id>1' UNI<![CDATA[ON SEL]]>ECT password FROM users--</id></order>", sqli],
    ['processing instructions', "<order><id>1' UNI<?x?>ON SEL<?x?>ECT password FROM users--</id></order>", sqli],
    ['empty child elements', "<order><id>1' UNI<b/>ON SEL<b/>ECT password FROM users--</id></order>", sqli],
    ['CDATA sections only', '<order><note><![CDATA[<scr]]><![CDATA[ipt>alert(document.cookie)</scr]]><![CDATA[ipt>]]></note></order>', xss],
    ['comments between references', '<order><note>&lt;scr<!---->ipt&gt;alert(document.cookie)&lt;/scr<!---->ipt&gt;</note></order>', xss],
  ] as const)
    t.same(texts(xml), [joined], what);
});

t.test('readXml: all the text inside an element, joined (textContent, itertext), where it joins more than one piece', async (t) => {
  t.same(
    texts("<order><id>1' UNI<b>ON</b> SEL<i>ECT</i> password FROM users--</id></order>"),
    [
      ['/order/id/b', 'ON'],
      ['/order/id/i', 'ECT'],
      ['/order/id', "1' UNI SEL password FROM users--"],
      ['/order/id#text', "1' UNION SELECT password FROM users--"],
    ],
    'text split by child elements',
  );
  t.same(
    texts('<r><a>&lt;scr</a><b>ipt&gt;alert(1)</b></r>'),
    [
      ['/r/a', '<scr'],
      ['/r/b', 'ipt>alert(1)'],
      ['/r#text', '<script>alert(1)'],
    ],
    'text split across sibling elements',
  );
  t.same(
    texts('<r>\n  <a>\n    <b>x y</b>\n  </a>\n</r>'),
    [['/r/a/b', 'x y']],
    'white space around a single child adds nothing to read again',
  );
  t.same(
    readXmlWithin("<r>1' UNI<skip>ON</skip>SELECT<b>x</b></r>", LIMITS, (path) => path === '/r/skip').strings,
    [
      ['/r/skip', 'ON'],
      ['/r/b', 'x'],
      ['/r', "1' UNISELECT"],
      ['/r#text', "1' UNISELECTx"],
    ],
    'an omitted element’s text is left out of its ancestors’',
  );
});

t.test('readXml: nested text is bounded (maxNestedText), and past the bound reading stops', async (t) => {
  const big = 'lorem ipsum '.repeat(10_000);
  // Each level joins its own text with the level below: read again at each of 30 levels.
  const layered = readXmlWithin('<a>x'.repeat(30) + big + '</a>'.repeat(30), { ...LIMITS, maxNestedText: 1 << 20 });
  t.equal(layered.tooLarge, 'text', '30 levels × 120 kB of text: too much to read again');
  // A chain of elements around one text is not read again at all: no cost, and no copy.
  const chain = readXmlWithin('<a> '.repeat(30) + big + ' </a>'.repeat(30), { ...LIMITS, maxNestedText: 0 });
  t.equal(chain.tooLarge, undefined, 'white space and a single child: nothing read again');
  t.equal(chain.strings.length, 1);
  const within = readXmlWithin('<a>x'.repeat(5) + big + '</a>'.repeat(5), { ...LIMITS, maxNestedText: 5 * (big.length + 5) });
  t.equal(within.tooLarge, undefined, 'within the bound, read');
  t.equal(within.strings.filter(([path]) => path.endsWith('#text')).length, 4, 'each level that joins text');
  t.equal(
    within.nestedText,
    within.strings.filter(([path]) => path.endsWith('#text')).reduce((n, [, s]) => n + s.length, 0),
  );
});
