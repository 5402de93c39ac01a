import t from 'tap';
import { generateRequestId } from '../../../src/proxy/request-id.js';

t.test('request ids are version 4 UUIDs, all different, across refills of the random batch', async (t) => {
  const seen = new Set<string>();
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  let bad = 0;
  for (let i = 0; i < 1000; i++) {
    const id = generateRequestId();
    if (!uuid.test(id)) bad++;
    seen.add(id);
  }
  t.equal(bad, 0, 'every id has the UUID v4 form (version and variant bits set)');
  t.equal(seen.size, 1000, 'no id repeats (1 000 ids, eight batches of 128)');
  // Every hex position but the fixed ones varies: the bytes are used, not left at zero.
  const ids = [...seen];
  for (const at of [0, 9, 15, 20, 35]) t.ok(new Set(ids.map((id) => id[at])).size > 8, `position ${at} varies`);
});
