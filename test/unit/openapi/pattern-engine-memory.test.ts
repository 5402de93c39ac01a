/**
 * RE2 runs in a fixed 16 MiB WebAssembly memory (red team 25 F1): a large string aborted it with
 * a WebAssembly.RuntimeError (500), each abort leaked its copy of the string, and after ~80 such
 * requests every RE2 pattern of the process failed on values of 1 KB. Now a string longer than
 * MAX_PATTERN_INPUT is refused at its pointer, an instance that aborts anyway is replaced (its
 * patterns recompile), and a document whose patterns would fill the memory is refused at load in
 * one line.
 */
import t from 'tap';
import { createRequire } from 'node:module';
import type { Operation } from '../../../src/openapi/operations.js';
import { createPatternEngine, MAX_PATTERN_INPUT, re2Pattern } from '../../../src/openapi/pattern-engine.js';
import { breakPatternEngineForTests } from '../../../src/openapi/re2-runtime.js';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { testOperation } from '../../support/operation.js';

const SLUG = '^([a-z0-9]+-?)*$'; // the red team's: not linear on V8, so RE2
const TAG = '^(?:[a-z]+\\s?)*$';

const bodyOperation = (properties: Record<string, unknown>): Operation =>
  testOperation({
    id: 'notes',
    method: 'POST',
    paths: ['/notes'],
    pointer: '#/paths/~1notes/post',
    parameters: [],
    requestBody: { content: { 'application/json': { schema: { type: 'object', properties } } } },
  });

/** Leaks the current instance's heap until no block of `leave` bytes is free (as leaked copies of aborted values did). */
function fillHeap(leave: number): void {
  const wasm = createRequire(import.meta.url)('re2-wasm/build/wasm/re2.js') as { _malloc(n: number): number };
  for (let size = 8 << 20; size >= leave;) {
    try {
      if (wasm._malloc(size) === 0) size >>= 1;
    } catch {
      size >>= 1;
    }
  }
}

const body = (value: unknown) => ({ body: Buffer.from(JSON.stringify(value)) });

t.test('a string longer than the limit is refused at its pointer, naming the limit; one at the limit gets its verdict', async (t) => {
  const v = compileRequestValidator(bodyOperation({ slug: { type: 'string', pattern: SLUG } }), { unknownQuery: 'allow' });
  t.same(v.body('application/json', body({ slug: 'a'.repeat(8_000_000) })), {
    pointer: '/body/slug',
    message: `is longer than ${MAX_PATTERN_INPUT} characters, the most a pattern is tested on`,
  });
  t.equal(v.body('application/json', body({ slug: 'a'.repeat(MAX_PATTERN_INPUT) })), undefined, 'at the limit: passes');
  t.match(
    v.body('application/json', body({ slug: `${'\u20ac'.repeat(MAX_PATTERN_INPUT - 1)}` })),
    { message: /must match pattern/ },
    '3 bytes each in UTF-8',
  );
});

t.test('many large strings, then every RE2 pattern still answers (another operation included)', async (t) => {
  const notes = compileRequestValidator(bodyOperation({ slug: { type: 'string', pattern: SLUG } }), { unknownQuery: 'allow' });
  const tags = compileRequestValidator(bodyOperation({ tag: { type: 'string', pattern: TAG } }), { unknownQuery: 'allow' });
  for (const n of [4_000_000, 2_000_000, 1_000_000, 600_000])
    for (let i = 0; i < 5; i++) notes.body('application/json', body({ slug: 'a'.repeat(n) }));
  t.equal(tags.body('application/json', body({ tag: 'ab '.repeat(30_000) })), undefined, 'a 90 KB value passes');
  t.match(tags.body('application/json', body({ tag: 'ab1'.repeat(30_000) })), { pointer: '/body/tag', message: /must match pattern/ });
  t.equal(notes.body('application/json', body({ slug: 'a-b'.repeat(100_000) })), undefined);
});

t.test('an instance that runs out of memory is replaced: the test is run again there, and other patterns recompile', async (t) => {
  const slug = re2Pattern(SLUG, 'u');
  const tag = re2Pattern(TAG, 'u');
  t.equal(slug.test('abc'), true);
  fillHeap(4096);
  t.equal(slug.test('a'.repeat(100_000)), true, 'the verdict, from a fresh instance');
  t.equal(tag.test('ab cd'), true, 'another pattern recompiles there');
  t.equal(tag.test('ab1'), false);
});

t.test('DFA-heavy patterns on 4 KiB inputs in a heap left with 2 MiB: every verdict comes back', async (t) => {
  const patterns = Array.from({ length: 6 }, (_, i) => re2Pattern(`^(?:[a-z0-9]|-)*[a-h](?:[a-z0-9]|-){${12 + i}}z$`, 'u'));
  fillHeap(2 << 20);
  let seed = 1;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-';
  const input = () => Array.from({ length: 4096 }, () => alphabet[next() % alphabet.length]).join('');
  let answered = 0;
  for (const p of patterns) for (let k = 0; k < 5; k++) if (typeof p.test(input()) === 'boolean') answered++;
  t.equal(answered, 30);
});

t.test("a document whose patterns do not leave RE2 room for a request's values is refused at load in one true line", async (t) => {
  const engine = createPatternEngine();
  engine(SLUG, 'u');
  fillHeap(4 << 20);
  // On an instance holding others' patterns (a reload): the document moves to one of its own.
  t.equal(engine(TAG, 'u').test('ab cd'), true);
  fillHeap(4 << 20);
  t.throws(() => engine('^(?:x+y?)*$', 'u'), {
    message:
      /^the document's patterns need more memory than the linear-time engine \(RE2\) has: 3 of them run there, and with this one less than 6 MiB of its 16 MiB would stay free for a request's values; use fewer or simpler patterns/,
  });
  t.equal(re2Pattern(SLUG, 'u').test('a-b'), true, 'the patterns in force recompile on a fresh instance');
});

t.test('an engine that cannot be instantiated: 503, never a 500', async (t) => {
  const v = compileRequestValidator(bodyOperation({ tag: { type: 'string', pattern: '^(?:x+y?)*$' } }), { unknownQuery: 'allow' });
  breakPatternEngineForTests('re2-wasm cannot be instantiated: test');
  t.teardown(() => breakPatternEngineForTests(undefined));
  t.throws(() => v.body('application/json', body({ tag: 'xy' })), { code: 'ERR_PATTERN_ENGINE_UNAVAILABLE', status: 503 });
});
