/** The path as telemetry records it (src/telemetry/attribute-limits.ts). */
import t from 'tap';
import { MAX_PATH_ATTRIBUTE, pathAttribute } from '../../../src/telemetry/attribute-limits.js';

t.test('path parameters keep their names, not their values (red team 29: ;jsessionid= and ;access_token= were logged whole)', async (t) => {
  t.equal(pathAttribute('/public/x;jsessionid=SESSION-SECRET'), '/public/x;jsessionid=*');
  t.equal(pathAttribute('/a;access_token=TOKEN;v=2/b;c=d'), '/a;access_token=*;v=*/b;c=*');
  t.equal(pathAttribute('/a;flag/b;=x'), '/a;flag/b;=*', 'a parameter without "=" has no value to hide');
  t.equal(pathAttribute('/orders/17'), '/orders/17', 'other paths as they are');
  const long = `/x;k=${'v'.repeat(2 * MAX_PATH_ATTRIBUTE)}`;
  t.equal(pathAttribute(long), '/x;k=*', 'cut first, then masked: no value shows, even cut');
});

t.test('linear on hostile paths', async (t) => {
  for (const path of [';'.repeat(MAX_PATH_ATTRIBUTE), ';a'.repeat(MAX_PATH_ATTRIBUTE), `;${'a'.repeat(MAX_PATH_ATTRIBUTE)}`]) {
    const started = performance.now();
    for (let i = 0; i < 1000; i++) pathAttribute(path);
    t.ok(performance.now() - started < 2000, `${path.slice(0, 6)}…: 1000 calls in ${Math.round(performance.now() - started)} ms`);
  }
});
