/**
 * rackFileName against Rack 2.2's own reading: each expected file name below is what
 * Rack::Multipart::Parser#get_filename read from the same block (ruby-rack 2.2.22, run by hand
 * in red team round 22h; Ruby is no prerequisite here), before Rack's unescaping of it.
 */
import t from 'tap';
import { rackFileName } from '../../../src/threats/rack-file-name.js';

t.test("a part's file name as Rack 2 reads it from the whole header block", async (t) => {
  const cases: [string, string | undefined][] = [
    ['Content-Disposition: form-data; name="q"; filename="a.txt"', 'a.txt'],
    ['Content-Disposition:form-data;name=q;filename=a', 'a'],
    // Looked up case-sensitively: a text field to Rack.
    ['Content-Disposition: form-data; name="q"; FILENAME="a.txt"', undefined],
    ['Content-Disposition: form-data; name="q"; Filename=a.txt', undefined],
    // Not RFC 2183's shape (`%` in a parameter name): BROKEN, which reads `filename` in any case.
    ['Content-Disposition: form-data; name="q"; x%=1; FILENAME="a"', 'a'],
    ['Content-Disposition: form-data; name="q"; x%=1', undefined],
    // The parameters are scanned over the whole block, a quoted value greedily.
    ['Content-Disposition: form-data; name="q"; x="\\\\"; filename="a.txt"', undefined],
    ['Content-Disposition: form-data; name="q"\r\nContent-Type: text/plain; filename=x', 'x'],
    ['X-Pad: ; filename=z\r\nContent-Disposition: form-data; name="q"', 'z'],
    ['X-Pad: ; a="\r\nContent-Disposition: form-data; name="q"; filename="a.txt"', 'a.txt'],
    // The last one counts; an empty one (Rack drops the part).
    ['content-disposition: form-data; name="q"; filename="b"; filename=""', ''],
    ['Content-Disposition: form-data; name="q"; filename=""', ''],
    // filename*, its charset and language off.
    ['Content-Disposition: form-data; name="q"; filename*=utf-8\'\'a%20b', 'a%20b'],
    ['Content-Disposition: form-data; name="q"; filename*=utf-8\'\'', ''],
    ['Content-Disposition: form-data; name="q"; filename="C:\\\\temp\\\\a.txt"', 'C:\\\\temp\\\\a.txt'],
    ['Content-Disposition: form-data; name="q"; filename="%"', '%'],
    ['Content-Disposition: form-data; name=q', undefined],
  ];
  for (const [block, filename] of cases) t.equal(rackFileName(block), filename, JSON.stringify(block));
});

t.test('a long header block is read in linear time', async (t) => {
  const block = `Content-Disposition: form-data; a="${'\\"; a="'.repeat(2000)}z`;
  const start = performance.now();
  rackFileName(block);
  t.ok(performance.now() - start < 200, 'well under 200 ms');
  // A run of white space or a long token after the disposition type, no `; filename=` after it:
  // BROKEN's `[^\n]*` could take the same characters, and every split of them was tried (370 ms).
  for (const [what, tail] of [
    ['16 000 spaces', ' '.repeat(16_000)],
    ['a 16 000-character token', 'a'.repeat(16_000)],
    ['spaces, then a parameter RFC 2183 does not read', `${' '.repeat(16_000)}; name="q"; a%b=1`],
  ]) {
    const began = performance.now();
    rackFileName(`Content-Disposition: form-data${tail}`);
    const ms = performance.now() - began;
    t.ok(ms < 100, `${what}: ${ms.toFixed(1)} ms (before: ~370)`);
  }
});
