import t from 'tap';
import { isValidSpanId, isValidTraceId } from '@opentelemetry/api';
import { clientSpanIdOf, drawRequestIds, serverSpanIdOf, traceIdOf } from '../../../src/telemetry/trace-ids.js';

t.test('each draw: a valid trace id and two valid span ids, never seen before, across pool refills', async (t) => {
  const seen = new Set<string>();
  let bad = 0;
  for (let i = 0; i < 1000; i++) {
    const ids = drawRequestIds();
    const parts = [traceIdOf(ids), serverSpanIdOf(ids), clientSpanIdOf(ids)];
    if (!/^[0-9a-f]{64}$/.test(ids) || !isValidTraceId(parts[0]!) || !isValidSpanId(parts[1]!) || !isValidSpanId(parts[2]!)) bad++;
    for (const p of parts) seen.add(p);
  }
  t.equal(bad, 0, 'lowercase hex, W3C-valid ids');
  t.equal(seen.size, 3000, 'no id repeats (1 000 draws: the pool of 128 is refilled several times)');
});
