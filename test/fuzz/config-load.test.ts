/**
 * Fuzz: the sidecar.yaml loader (src/config/load.ts, yaml-source.ts, validator.ts, sidecar-schema.ts).
 * Any text — YAML-ish token soup with anchors, aliases, tags and directives, JSON, mutations of the
 * shipped example and of the test configurations — either loads or fails with ConfigError: one line
 * per issue naming the file (and line, field) and what is expected; never another exception, never
 * a long stall. A configuration that loads survives a round trip through YAML unchanged.
 */
import t from 'tap';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse, stringify } from 'yaml';
import { ConfigError } from '../../src/config/config-error.js';
import { parseSidecarConfig, type LoadedSidecarConfig } from '../../src/config/load.js';
import { testCertificate } from '../support/certs.js';
import { repoRoot, testConfigYaml } from '../support/sidecar.js';
import { describeThrown, fuzz } from './fuzz-budget.js';

const FILE = 'fuzz/sidecar.yaml';
/** A single load may take this long on a busy CI machine; more is a stall worth a look. */
const SLOW_MS = 2000;

const cert = await testCertificate();
const example = readFileSync(join(repoRoot, 'sidecar.yaml.example'), 'utf8')
  .replace('./certs/tls.crt', cert.certFile)
  .replace('./certs/tls.key', cert.keyFile);
const testConfigs = [
  await testConfigYaml('http://127.0.0.1:8080'),
  await testConfigYaml('unix:/tmp/backend.sock', {
    headers: { internal: ['x-warden-*', 'x-internal-token'], trusted_proxies: ['10.0.0.0/8'] },
    access: { clients: { deny: ['192.0.2.0/24'] } },
    routes: [
      { id: 'orders.read', path: '/orders/:id', methods: ['GET'] },
      { id: 'upload', path: '/upload', methods: ['POST'], limits: { max_body_bytes: '1MiB' }, rate_limit: { rate: 5, per: '1s' } },
    ],
    rate_limits: { default: { rate: 100, per: '1s', burst: 200 } },
  }),
];
const validTexts = [example, ...testConfigs];

type Outcome = { loaded: LoadedSidecarConfig } | { error: ConfigError };

/** Loads `text`; a ConfigError is an outcome, anything else (or a stall) fails the property. */
function load(text: string, env: NodeJS.ProcessEnv = {}): Outcome {
  const started = performance.now();
  let result: Outcome;
  try {
    result = { loaded: parseSidecarConfig(FILE, text, env) };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw new Error(`threw ${describeThrown(err)}`);
    result = { error: err };
  }
  const took = performance.now() - started;
  if (took > SLOW_MS) throw new Error(`took ${Math.round(took)} ms`);
  if ('error' in result) checkError(result.error, text);
  return result;
}

/** One issue per line, each naming the file (and a line inside it) and saying something. */
function checkError(err: ConfigError, text: string): void {
  if (err.code !== 'ERR_CONFIG_INVALID') throw new Error(`code ${String(err.code)}`);
  if (err.issues.length === 0) throw new Error('ConfigError without issues');
  const lines = err.message.split('\n');
  if (lines.length !== err.issues.length) throw new Error(`${err.issues.length} issues on ${lines.length} lines: ${err.message}`);
  const lineCount = text.split('\n').length;
  for (const [i, issue] of err.issues.entries()) {
    if (issue.file !== FILE || !lines[i]?.startsWith(FILE)) throw new Error(`issue not naming the file: ${lines[i]}`);
    if (!issue.message.trim()) throw new Error(`empty message: ${lines[i]}`);
    if (issue.line !== undefined && !(Number.isInteger(issue.line) && issue.line >= 1 && issue.line <= lineCount)) {
      throw new Error(`line ${issue.line} outside the file (${lineCount} lines): ${lines[i]}`);
    }
  }
}

// ——— arbitrary YAML-ish text ———

const KEYS = [
  'listeners',
  'inbound',
  'tls',
  'cert',
  'key',
  'upstream',
  'url',
  'limits',
  'routes',
  'id',
  'path',
  'methods',
  'headers',
  'internal',
  'tokens',
  'mesh',
  'a',
  'b',
  '__proto__',
  'constructor',
  '"q"',
  "'s'",
];
const SCALARS = [
  '1',
  '0',
  '-1',
  '65536',
  '1.5',
  '1e400',
  '0x1F',
  '0o7',
  '.inf',
  '.nan',
  'true',
  'null',
  '~',
  '""',
  "''",
  '10s',
  '16KiB',
  'http://127.0.0.1:8080',
  'unix:/x.sock',
  cert.certFile,
  '${X}',
  '${X:-d}',
  '$${X}',
  '${1}',
  '${file:./none}',
  '${}',
  '"\\u0000"',
  '"\\x85"',
  '2001-12-14',
  '!!binary aGk=',
  '!!str 1',
  '!!int x',
  '!!float',
  '!custom v',
  '|',
  '>-',
  '[]',
  '{}',
  '[1, [2, [3]]]',
  '{a: {b: {c: 1}}}',
];
const FRAGMENTS = [
  '&a ',
  '*a',
  '&b ',
  '*b',
  '<<: *a',
  '? ',
  '- ',
  ': ',
  ', ',
  '[',
  ']',
  '{',
  '}',
  '#c',
  '"',
  "'",
  '\t',
  '%YAML 1.1',
  '%TAG ! tag:x,2000:',
  '---',
  '...',
  '!!set',
  '!!omap',
  '!!map',
  '!!seq',
  '@',
  '`',
  '|+',
  '\\',
];

const yamlLine = fc
  .tuple(
    fc.nat({ max: 6 }),
    fc.array(
      fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom(...KEYS).map((k) => `${k}: `) },
        { weight: 3, arbitrary: fc.constantFrom(...SCALARS) },
        { weight: 2, arbitrary: fc.constantFrom(...FRAGMENTS) },
        { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
      ),
      { maxLength: 5 },
    ),
  )
  .map(([indent, parts]) => ' '.repeat(indent) + parts.join(''));
const yamlish = fc.array(yamlLine, { maxLength: 25 }).map((lines) => lines.join('\n'));

/** Documents that are structurally YAML: JSON values, possibly with anchors and aliases threaded in. */
const jsonish = fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v));
const aliased = fc
  .tuple(fc.jsonValue({ maxDepth: 3 }), fc.nat({ max: 5 }), fc.constantFrom('recursive', 'fanout', 'plain'))
  .map(([v, depth, shape]) => {
    if (shape === 'recursive') return `listeners: &x\n  inbound: *x\nupstream: &y [*y]\n`;
    if (shape === 'fanout') {
      // Each level repeats the one before ten times ("billion laughs"); yaml's alias limit must hold.
      let text = `l0: &l0 ${JSON.stringify(v)}\n`;
      for (let i = 1; i <= depth + 2; i++)
        text += `l${i}: &l${i} [${Array(10)
          .fill(`*l${i - 1}`)
          .join(', ')}]\n`;
      return text;
    }
    return `base: &base ${JSON.stringify(v)}\nother: *base\n`;
  });

t.test('any text: loads or ConfigError (file, line, field, one line each); nothing else, no stall', async (t) => {
  fuzz(
    t,
    'config.any_text',
    [
      fc.oneof(
        { weight: 4, arbitrary: yamlish },
        { weight: 2, arbitrary: jsonish },
        { weight: 1, arbitrary: aliased },
        { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
      ),
    ],
    (text) => {
      load(text);
    },
    { runs: 300 },
  );
});

// ——— mutations of valid configurations ———

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const bases = validTexts.map((text) => parse(text) as Json);

const NEAR_VALID: Json[] = [
  '10s',
  '0s',
  '250ms',
  '1h',
  '-1s',
  '1.5m',
  '16KiB',
  '0B',
  '1GiB',
  '10TB',
  0,
  -1,
  1,
  65535,
  65536,
  1.5,
  2 ** 53,
  '',
  ' ',
  'x',
  null,
  true,
  [],
  {},
  ['x-warden-*'],
  ['*'],
  ['10.0.0.0/33'],
  ['::/0'],
  'http://[::1]:1',
  'ftp://x',
  'unix:',
  '/abs/path',
  '../rel',
  '${X}',
];
const replacement = fc.oneof(fc.constantFrom(...NEAR_VALID), fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>);

type Mutation = { op: 'delete' | 'replace' | 'add' | 'rename'; walk: number[]; value: Json; key: string };
const mutation: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom('delete', 'replace', 'replace', 'add', 'rename'),
  walk: fc.array(fc.nat(), { minLength: 1, maxLength: 6 }),
  value: replacement,
  key: fc.oneof(
    fc.constantFrom(
      'port',
      'url',
      'cert',
      'tls',
      'routes',
      'id',
      'internal',
      'mesh',
      'egress',
      'tokens',
      'openapi',
      'threats',
      'rate_limits',
      'listners',
      'Port',
    ),
    fc.string({ maxLength: 8 }),
  ),
});

function clone<T>(v: T): T {
  return structuredClone(v);
}

/** Applies a mutation at the node a random walk reaches. */
function mutate(root: Json, m: Mutation): Json {
  let parent: Json = root;
  let slot: string | number | undefined;
  for (const step of m.walk) {
    const node = (slot === undefined ? parent : (parent as Record<string, Json>)[slot as string]) as Json;
    if (node === null || typeof node !== 'object') break;
    const keys: (string | number)[] = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (keys.length === 0) break;
    if (slot !== undefined) parent = node;
    slot = keys[step % keys.length];
  }
  if (slot === undefined || parent === null || typeof parent !== 'object') return m.op === 'replace' ? m.value : root;
  const container = parent as Record<string | number, Json>;
  if (m.op === 'delete') {
    if (Array.isArray(parent)) parent.splice(slot as number, 1);
    else delete container[slot];
  } else if (m.op === 'replace') container[slot] = m.value;
  else if (m.op === 'add' && !Array.isArray(parent)) container[m.key] = m.value;
  else if (m.op === 'rename' && !Array.isArray(parent)) {
    const v = container[slot] as Json;
    delete container[slot];
    container[m.key] = v;
  }
  return root;
}

const mutatedConfig = fc
  .tuple(fc.nat({ max: bases.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 3 }))
  .map(([i, ms]) => stringify(ms.reduce((doc, m) => mutate(doc, m), clone(bases[i] as Json))));

/** Text-level edits of the valid files: lines dropped, duplicated, re-indented; characters inserted. */
const editedText = fc
  .tuple(
    fc.nat({ max: validTexts.length - 1 }),
    fc.array(
      fc.tuple(
        fc.constantFrom('drop', 'dup', 'indent', 'dedent', 'insert'),
        fc.nat(),
        fc.constantFrom(':', '-', ' ', '\t', '"', '&a', '*a', '{', '[', '#', '\u0000', '\ufeff', '!!', '%'),
      ),
      { minLength: 1, maxLength: 4 },
    ),
  )
  .map(([i, edits]) => {
    const lines = (validTexts[i] as string).split('\n');
    for (const [op, at, ch] of edits) {
      const n = at % lines.length;
      const line = lines[n] as string;
      if (op === 'drop') lines.splice(n, 1);
      if (op === 'dup') lines.splice(n, 0, line);
      if (op === 'indent') lines[n] = ` ${line}`;
      if (op === 'dedent') lines[n] = line.replace(/^ /, '');
      if (op === 'insert') {
        const col = at % (line.length + 1);
        lines[n] = line.slice(0, col) + ch + line.slice(col);
      }
    }
    return lines.join('\n');
  });

t.test('mutations of the example and of the test configurations: load or ConfigError', async (t) => {
  fuzz(
    t,
    'config.mutated',
    [fc.oneof(mutatedConfig, editedText)],
    (text) => {
      load(text);
    },
    { runs: 300 },
  );
});

// ——— round trip ———

/** The loaded configuration as YAML again; "${" in a value is written "$${" so it stays literal. */
function toYaml(config: unknown): string {
  const escape = (v: unknown): unknown => {
    if (typeof v === 'string') return v.replace(/\$\{/g, '$${');
    if (Array.isArray(v)) return v.map(escape);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, escape(x)]));
    return v;
  };
  return stringify(escape(config));
}

t.test('round trip: a configuration that loads, written out and loaded again, is the same', async (t) => {
  for (const text of validTexts) {
    const first = load(text);
    t.ok('loaded' in first, 'the valid configurations load');
  }
  fuzz(
    t,
    'config.round_trip',
    [fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...validTexts) }, { weight: 4, arbitrary: mutatedConfig })],
    (text) => {
      const first = load(text);
      if (!('loaded' in first)) return;
      const again = load(toYaml(first.loaded.config));
      if (!('loaded' in again)) throw new Error(`written out, it no longer loads: ${again.error.message}`);
      if (!isDeepStrictEqual(again.loaded.config, first.loaded.config)) {
        throw new Error(`changed on the way:\n${toYaml(first.loaded.config)}\n→\n${toYaml(again.loaded.config)}`);
      }
    },
    { runs: 200 },
  );
});

t.test('regression: recursive aliases and alias bombs are ConfigErrors (were TypeError / ReferenceError)', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['a sequence containing itself', '&x [*x]\n', /^fuzz\/sidecar\.yaml:1: invalid YAML: alias \*x refers to a node that contains it$/],
    [
      'a field containing its parent',
      'upstream: &x\n  url: *x\n',
      /^fuzz\/sidecar\.yaml:2: invalid YAML: alias \*x refers to a node that contains it$/,
    ],
    [
      'billion laughs',
      'a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n',
      /^fuzz\/sidecar\.yaml: invalid YAML: Excessive alias count/,
    ],
  ];
  for (const [what, text, message] of cases) {
    const r = load(text);
    t.ok('error' in r, `${what}: refused`);
    if ('error' in r) t.match(r.error.message, message, what);
  }
  t.ok(
    'loaded' in load(`${testConfigs[0] as string}\nservice: &svc { name: shared }\n`.replace(/^service:.*\n {2}name: test\n/m, '')),
    'a plain anchor still loads',
  );
});
