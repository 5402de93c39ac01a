/**
 * Request span ids (src/telemetry/span-ids.ts): lowercase hex of the right length, valid for W3C
 * trace context and the API, never all zeros, and random: distinct over many draws, every digit at
 * every position.
 */
import t from 'tap';
import { isValidSpanId, isValidTraceId } from '@opentelemetry/api';
import { generateSpanId, generateTraceId } from '../../../src/telemetry/span-ids.js';

for (const [name, generate, digits, valid] of [
  ['trace id', generateTraceId, 32, isValidTraceId],
  ['span id', generateSpanId, 16, isValidSpanId],
] as const) {
  t.test(`${name}: ${digits} lowercase hex digits, valid, distinct, every digit at every position`, async (t) => {
    const seen = new Set<string>();
    const digitsAt = Array.from({ length: digits }, () => new Set<string>());
    const draws = 20_000;
    for (let i = 0; i < draws; i++) {
      const id = generate();
      if (!/^[0-9a-f]+$/.test(id) || id.length !== digits) throw new Error(`not ${digits} hex digits: ${id}`);
      if (!valid(id)) throw new Error(`not a valid ${name}: ${id}`);
      seen.add(id);
      for (let p = 0; p < digits; p++) digitsAt[p]?.add(id[p] as string);
    }
    t.equal(seen.size, draws, `${draws} draws, all distinct`);
    t.ok(
      digitsAt.every((s) => s.size === 16),
      'each of the 16 digits appears at every position',
    );
  });
}

t.test('never all zeros, even when every random word is zero', async (t) => {
  const random = Math.random;
  Math.random = () => 0;
  try {
    t.equal(generateTraceId(), `${'0'.repeat(31)}1`);
    t.equal(generateSpanId(), `${'0'.repeat(15)}1`);
  } finally {
    Math.random = random;
  }
});
