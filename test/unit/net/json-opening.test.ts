import t from 'tap';
import { JsonOpening, opensJsonValue } from '../../../src/net/json-opening.js';

/** Chunk by chunk: the decision, undefined while undecided at the end (treated as no JSON). */
function readInPieces(body: Buffer, size: number): string {
  const opening = new JsonOpening();
  let got;
  for (let i = 0; i < body.length && got === undefined; i += size) got = opening.push(body.subarray(i, i + size));
  return got ?? 'other';
}

const JSON_OPENINGS = [
  '{"a":1}',
  '{}',
  '{ \n "a"',
  '[1]',
  '[1, 2]',
  '[-1.5e3,',
  '[ 10 ]',
  '[true]',
  '[null, 1]',
  '[ false ,',
  '["a"]',
  '[{"a":1}]',
  '[[1]]',
  '[]',
  ' \r\n\t{"',
  '\ufeff{"a"',
  '\ufeff \n[1]',
];
const OTHER_OPENINGS = [
  '{\\rtf1\\ansi', // RTF
  '[![Build](https://x)](y)', // Markdown with a badge
  '[network]\nhost=a', // INI
  '[section]',
  '[2026-11-28 12:00:00] INFO started', // a log line
  '[nothing here]',
  '[trueish]',
  '{a:1}',
  '{',
  '[',
  '[1',
  'a{',
  '\ufeffa',
];

t.test('a body opens like JSON when a decoder would read its first element, however it is split', async (t) => {
  for (const [texts, want] of [
    [JSON_OPENINGS, 'json'],
    [OTHER_OPENINGS, 'other'],
  ] as const) {
    for (const text of texts) {
      const body = Buffer.from(text);
      t.equal(opensJsonValue(body) ? 'json' : 'other', want, `${JSON.stringify(text)}: ${want}`);
      for (let size = 1; size <= body.length; size++)
        t.equal(readInPieces(body, size), want, `${JSON.stringify(text)} in pieces of ${size}`);
    }
  }
  for (const hex of ['89504e470d0a1a0a', '504b0304', 'efbb7b', 'ef7b', 'bbbf7b']) {
    const body = Buffer.from(hex, 'hex');
    t.notOk(opensJsonValue(body), `${hex}: no JSON`);
    for (let size = 1; size <= body.length; size++) t.equal(readInPieces(body, size), 'other', `${hex} in pieces of ${size}`);
  }
  // Undecided while only a mark, white space and an opening have arrived.
  const opening = new JsonOpening();
  t.equal(opening.push(Buffer.from('\ufeff  ')), undefined, 'a mark and white space: undecided');
  t.equal(opening.push(Buffer.from('\n[ 12')), undefined, 'then "[ 12": undecided');
  t.equal(opening.push(Buffer.from(' ,')), 'json', 'then ",": json');
  t.equal(opening.push(Buffer.from('x')), 'json', 'and decided for good');
});

t.test('the reading is linear: 10 MiB of digits or white space', async (t) => {
  for (const body of [Buffer.concat([Buffer.from('['), Buffer.alloc(10 * 1024 * 1024, '1')]), Buffer.alloc(10 * 1024 * 1024, ' ')]) {
    let ms = Infinity;
    for (let run = 0; run < 3; run++) {
      const began = performance.now();
      new JsonOpening().push(body);
      ms = Math.min(ms, performance.now() - began);
    }
    t.ok(ms < 1000, `${ms.toFixed(1)} ms`);
  }
});
