import t from 'tap';
import { JsonOpening } from '../../../src/net/json-opening.js';
import { opensJsonDocument } from '../../../src/net/media-type.js';

t.test('the opening read chunk by chunk decides as opensJsonDocument does on the whole, however the body is split', async (t) => {
  const bodies = [
    Buffer.from('{"a":1}'),
    Buffer.from('[1]'),
    Buffer.from(' \r\n\t{'),
    Buffer.from('\ufeff{'),
    Buffer.from('\ufeff \n['),
    Buffer.from('a{'),
    Buffer.from('\ufeffa'),
    Buffer.from('89504e470d0a1a0a', 'hex'), // a PNG's signature
    Buffer.from('504b0304', 'hex'), // a zip's
    Buffer.from([0xef, 0xbb, 0x7b]), // part of a mark, then "{": no mark, so 0xEF first
    Buffer.from([0xef, 0x7b]),
    Buffer.from([0xbb, 0xbf, 0x7b]),
  ];
  for (const body of bodies) {
    const want = opensJsonDocument(body) ? 'json' : 'other';
    for (let size = 1; size <= body.length; size++) {
      const opening = new JsonOpening();
      let got;
      for (let i = 0; i < body.length && got === undefined; i += size) got = opening.push(body.subarray(i, i + size));
      t.equal(got, want, `${body.toString('hex')} in pieces of ${size}: ${want}`);
    }
  }
  // Undecided while only a mark and white space have arrived.
  const opening = new JsonOpening();
  t.equal(opening.push(Buffer.from('\ufeff  ')), undefined, 'a mark and white space: undecided');
  t.equal(opening.push(Buffer.from('\n[')), 'json', 'then "[": json');
  t.equal(opening.push(Buffer.from('x')), 'json', 'and decided for good');
});
