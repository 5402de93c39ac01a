/**
 * Fuzz: request-target normalisation (src/net/request-target.ts). Policy is decided on the normalised path
 * and the backend receives it, so every spelling of a path must either be refused with
 * ERR_PATH_INVALID or come out in one canonical form that stays below the root.
 */
import t from 'tap';
import fc from 'fast-check';
import { WardenError } from '../../src/errors.js';
import { normaliseTarget } from '../../src/net/request-target.js';
import { fuzz } from './fuzz-budget.js';

/** Pieces an attacker spells paths with: dot segments in every encoding, separators, bad escapes. */
const TRICKY = [
  'a',
  'admin',
  'api',
  '.',
  '..',
  '...',
  '%2e',
  '%2E',
  '%2e%2e',
  '%2E%2e',
  '.%2e',
  '%2e.',
  '%252e%252e',
  '',
  '%2f',
  '%2F',
  '%5c',
  '%5C',
  '\\',
  '%00',
  '%0a',
  '%0D',
  '%7f',
  '%1f',
  '%c0%ae',
  '%c0%af',
  '%e0%80%ae',
  '%c0%2e',
  '%ef%bc%8f',
  '%25',
  '%2525',
  '%41',
  '%61dmin',
  '%7e',
  '%7E',
  '%5f',
  '%2d',
  '%30',
  '%zz',
  '%4',
  '%',
  '%%',
  '%u002e',
  '%20',
  '%3f',
  '%23',
  'é',
  '%C3%A9',
  '\u0000',
  '\t',
  ';',
  '..;',
  ';jsessionid=1',
  '#',
  ':',
  '@',
  '~',
  '*',
];

const segment = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...TRICKY) },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.integer({ min: 0, max: 255 }), fc.boolean()).map(([b, upper]) => {
      const hex = b.toString(16).padStart(2, '0');
      return `%${upper ? hex.toUpperCase() : hex}`;
    }),
  },
);

const separator = fc.constantFrom('/', '/', '/', '/', '//', '\\', '/./');

/** A request target: mostly origin-form, sometimes not; an optional query that must pass untouched. */
const target = fc
  .tuple(
    fc.constantFrom('/', '/', '/', '/', '//', '', 'http://h', '*', '\\'),
    fc.array(fc.tuple(segment, separator), { maxLength: 10 }),
    fc.option(
      fc.constantFrom(
        '?',
        '?a=1',
        '?p=/../x',
        '?x=%2f%00',
        '?a=1?b=2',
        '?#',
        '?q=x;limit=1',
        '?q=x%3Blimit=1',
        '?;',
        '?l%6@mit=1',
        '?q=1%',
        '?q=%u0027',
      ),
      {
        nil: undefined,
      },
    ),
  )
  .map(([lead, parts, query]) => lead + parts.map(([s, sep], i) => (i === 0 ? s : sep + s)).join('') + (query ?? ''));

const anyTarget = fc.oneof({ weight: 5, arbitrary: target }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) });

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/** Depth reached by the raw path when every spelling of "." and ".." counts; -1 once it climbs above the root. */
function climbsAboveRoot(rawPath: string): boolean {
  let depth = 0;
  for (const raw of rawPath.split('/').slice(1)) {
    const seg = raw.replace(/%2e/gi, '.');
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (--depth < 0) return true;
    } else depth++;
  }
  return false;
}

function pathOf(targetText: string): string {
  const q = targetText.indexOf('?');
  return q === -1 ? targetText : targetText.slice(0, q);
}

function checkRefusal(r: WardenError): void {
  if (r.code !== 'ERR_PATH_INVALID') throw new Error(`refused with ${r.code}, expected ERR_PATH_INVALID`);
  if (!r.rule?.startsWith('path.')) throw new Error(`refusal without a path.* rule: ${String(r.rule)}`);
}

t.test('never throws: a result or a typed ERR_PATH_INVALID refusal', async (t) => {
  fuzz(t, 'path.total', [anyTarget], (input) => {
    const r = normaliseTarget(input);
    if (r instanceof WardenError) checkRefusal(r);
    else if (typeof r.path !== 'string' || typeof r.search !== 'string') throw new Error('result without path/search');
  });
});

t.test('an accepted path is canonical: absolute, no dot or empty segments, no separators in disguise', async (t) => {
  fuzz(
    t,
    'path.canonical',
    [target],
    (input) => {
      const r = normaliseTarget(input);
      if (r instanceof WardenError) return;
      const { path } = r;
      if (!path.startsWith('/')) throw new Error(`not absolute: ${JSON.stringify(path)}`);
      const segments = path.split('/').slice(1);
      segments.forEach((seg, i) => {
        if (seg === '.' || seg === '..') throw new Error(`dot segment left in ${JSON.stringify(path)}`);
        // Only the last segment may be empty (a trailing slash, or the root itself).
        if (seg === '' && i !== segments.length - 1) throw new Error(`empty segment in ${JSON.stringify(path)}`);
      });
      if (path.includes('\\') || path.includes('#')) throw new Error(`separator or fragment in ${JSON.stringify(path)}`);
      for (const m of path.matchAll(/%(.{0,2})/g)) {
        const hex = m[1] as string;
        if (!/^[0-9A-F]{2}$/.test(hex)) throw new Error(`escape not as two upper-case hex digits in ${JSON.stringify(path)}`);
        const byte = parseInt(hex, 16);
        if (byte === 0x2f || byte === 0x5c || byte < 0x20 || byte === 0x7f)
          throw new Error(`encoded separator/control survived in ${JSON.stringify(path)}`);
        if (UNRESERVED.test(String.fromCharCode(byte))) throw new Error(`encoded unreserved character left in ${JSON.stringify(path)}`);
      }
    },
    { runs: 2000 },
  );
});

t.test('idempotent: normalising a normalised target changes nothing', async (t) => {
  fuzz(
    t,
    'path.idempotent',
    [target],
    (input) => {
      const once = normaliseTarget(input);
      if (once instanceof WardenError) return;
      const twice = normaliseTarget(once.path + once.search);
      if (twice instanceof WardenError) throw new Error(`normalised ${JSON.stringify(once.path)} is refused (${twice.rule})`);
      if (twice.path !== once.path || twice.search !== once.search) {
        throw new Error(`${JSON.stringify(once.path)} → ${JSON.stringify(twice.path)}`);
      }
    },
    { runs: 2000 },
  );
});

t.test('never above the root: any spelling of ".." that climbs out is refused', async (t) => {
  fuzz(
    t,
    'path.root',
    [target],
    (input) => {
      const r = normaliseTarget(input);
      const rawPath = pathOf(input);
      // Targets refused for other reasons (bad escape, backslash…) are refused either way.
      if (rawPath.startsWith('/') && climbsAboveRoot(rawPath) && !(r instanceof WardenError)) {
        throw new Error(`${JSON.stringify(input)} climbs above the root but became ${JSON.stringify(r.path)}`);
      }
    },
    { runs: 2000 },
  );
});

t.test('the query is passed on untouched; the path adds no control character', async (t) => {
  fuzz(
    t,
    'path.query_and_controls',
    [target],
    (input) => {
      const r = normaliseTarget(input);
      if (r instanceof WardenError) return;
      const q = input.indexOf('?');
      const expected = q === -1 ? '' : input.slice(q);
      if (r.search !== expected) throw new Error(`search ${JSON.stringify(r.search)} ≠ ${JSON.stringify(expected)}`);
      // eslint-disable-next-line no-control-regex
      const controls = /[\u0000-\u001f\u007f]/;
      if (!controls.test(pathOf(input)) && controls.test(r.path))
        throw new Error(`control character introduced: ${JSON.stringify(r.path)}`);
    },
    { runs: 1000 },
  );
});

t.test('equivalent spellings normalise to the same path (decoded unreserved, dots, slashes)', async (t) => {
  // Re-spell a plain path: encode some unreserved characters, add "./", "x/../" and doubled slashes.
  const plainSegment = fc.stringMatching(/^[A-Za-z0-9\-_~]{1,6}$/);
  fuzz(
    t,
    'path.equivalent',
    [fc.array(plainSegment, { minLength: 1, maxLength: 6 }), fc.infiniteStream(fc.nat({ max: 7 }))],
    (segments, choices) => {
      const plain = '/' + segments.join('/');
      const it = choices[Symbol.iterator]();
      const next = () => it.next().value as number;
      const respelt =
        '/' +
        segments
          .map((seg) => {
            const encoded = [...seg].map((c) => (next() === 0 ? `%${c.charCodeAt(0).toString(16)}` : c)).join('');
            const choice = next();
            if (choice === 1) return `.//${encoded}`;
            if (choice === 2) return `junk/%2e%2E/${encoded}`;
            if (choice === 3) return `${encoded}/.`;
            return encoded;
          })
          .join('/');
      const r = normaliseTarget(respelt);
      if (r instanceof WardenError) throw new Error(`${respelt} refused (${r.rule})`);
      // A trailing "/." leaves a trailing slash: that is a different path, and stays one.
      const expected = respelt.endsWith('/.') ? `${plain}/` : plain;
      if (r.path !== expected) throw new Error(`${respelt} → ${r.path}, expected ${expected}`);
    },
    { runs: 1000 },
  );
});

t.test('a query holding a "%" that starts no escape is refused, whatever the path: Jetty reads one', async (t) => {
  fuzz(
    t,
    'path.query_bad_escape',
    [anyTarget, fc.string({ unit: fc.constantFrom('%', '@', '?', '6', 'u', '0', 'f', 'a', '='), maxLength: 12 })],
    (input, query) => {
      const target = input.split('?')[0] + '?' + query;
      const malformed = /%(?![0-9A-Fa-f]{2}|[uU][0-9A-Fa-f]{4})/.test(query);
      const r = normaliseTarget(target);
      if (malformed && !(r instanceof WardenError)) throw new Error(`${JSON.stringify(target)} accepted with a malformed escape`);
      if (!malformed && r instanceof WardenError && r.rule === 'path.query_bad_escape')
        throw new Error(`${JSON.stringify(target)} refused, though every "%" starts an escape`);
      if (r instanceof WardenError) checkRefusal(r);
    },
    { runs: 1000 },
  );
});

t.test('a query holding ";" is refused, whatever the path: Rack 2 splits parameters at it', async (t) => {
  fuzz(
    t,
    'path.query_semicolon',
    [anyTarget],
    (input) => {
      const q = input.indexOf('?');
      if (q === -1 || !input.includes(';', q)) return;
      const r = normaliseTarget(input);
      if (!(r instanceof WardenError)) throw new Error(`${JSON.stringify(input)} accepted with ";" in its query`);
      checkRefusal(r);
    },
    { runs: 1000 },
  );
});
