/**
 * A YAML file parsed with positions kept, so that any later finding (schema, semantics, unreadable
 * certificate) can be reported at its line. Also performs `${ENV}`, `${ENV:-default}` and
 * `${file:path}` substitution on scalar values — on parsed values, never on raw text, so a
 * substituted secret cannot inject YAML.
 */
import { isUtf8 } from 'node:buffer';
import { dirname, resolve } from 'node:path';
import {
  LineCounter,
  parseDocument,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  visit,
  type Alias,
  type Document,
  type Node as YamlNode,
} from 'yaml';
import { ConfigError, formatFieldPath, type ConfigIssue } from './config-error.js';
import { MAX_CONFIG_BYTES, MAX_SECRET_FILE_BYTES, readFailure, readFileBounded } from './bounded-file.js';

export interface YamlSource {
  file: string;
  baseDir: string;
  data: unknown;
  /** Line of the value at `segments`, or of its nearest ancestor that exists. */
  lineOf: (segments: readonly (string | number)[]) => number | undefined;
  /**
   * Whether the value at `segments` holds a `${…}` substitution: an error never shows it, since a
   * secret put in the wrong field (`port: ${file:db-password}`) was echoed into `config check`,
   * the logs and `warden.config.reload_failed` (docs/adversarial.md 278).
   */
  substituted?: (segments: readonly (string | number)[]) => boolean;
  /** The values `${…}` placeholders were replaced with, for masking in error messages (withSubstitutionsMasked). */
  substitutedValues?: readonly string[];
}

const PLACEHOLDER = /\$(\$)?\{([^}]*)\}/g;

/**
 * All `${…}` values of one file together. A configuration substitutes a few secrets, passphrases
 * and perhaps a key or a certificate chain (kilobytes each); 4 MiB is four files at the 1 MiB
 * bound of one, and keeps a load (a reload runs beside the serving configuration) to megabytes
 * however many placeholders a small file holds.
 */
export const MAX_SUBSTITUTED_BYTES = 4 * 1024 * 1024;
const SUBSTITUTIONS_TOO_LARGE = `\${file:…} and \${NAME} substitutions exceed 4 MiB in total (a value counts each time it is used): substitute secrets, and name keys and certificates by their path`;

/** `reload`: the file is read again by a running process, which a FIFO must not block (bounded-file.ts). */
export function readYamlSource(file: string, env: NodeJS.ProcessEnv = process.env, reload = false): YamlSource {
  let bytes: Buffer;
  try {
    bytes = readFileBounded(file, MAX_CONFIG_BYTES, { allowFifo: !reload });
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError([{ file, line: undefined, field: '', message: `cannot read the configuration (${reason})` }]);
  }
  // Read as UTF-8, a UTF-16 file (Windows editors, PowerShell's `>`) was one string: "must be
  // object, got a string (not shown: a secret)".
  const utf16 = (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
  if (utf16 || bytes.includes(0))
    throw new ConfigError([
      {
        file,
        line: undefined,
        field: '',
        message: `the configuration is not UTF-8 text (${utf16 ? 'it starts with a UTF-16 byte-order mark' : 'it holds NUL bytes'}): save it as UTF-8`,
      },
    ]);
  const text = bytes.toString('utf8');
  // A Latin-1 or Windows-1252 byte (`inf\xf6`) was shown as `got "inf\ufffd"`, with no word of why.
  if (!isUtf8(bytes)) {
    const bad = text.indexOf('\ufffd');
    let line = 1;
    for (let i = text.indexOf('\n'); i !== -1 && i < bad; i = text.indexOf('\n', i + 1)) line++;
    throw new ConfigError([
      {
        file,
        line: bad === -1 ? undefined : line,
        field: '',
        message: 'the configuration is not UTF-8 text (a byte here is not UTF-8: Latin-1 or Windows-1252?): save it as UTF-8',
      },
    ]);
  }
  return parseYamlSource(file, text, env, reload);
}

/** `reload`: as for readYamlSource: a `${file:…}` FIFO (`/dev/fd/N` at startup) is read only when false. */
export function parseYamlSource(file: string, text: string, env: NodeJS.ProcessEnv = process.env, reload = false): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const baseDir = dirname(resolve(file));
  const lineAt = (offset: number | undefined) => (offset === undefined ? undefined : lineCounter.linePos(offset).line);

  if (doc.errors.length > 0) {
    // One line per YAML line: a single slip (an unquoted `${X}` in a flow map) makes the parser
    // stumble several times on the same line.
    const lines = text.split('\n');
    const seen = new Set<number | undefined>();
    const first = doc.errors.filter((e) => {
      const line = e.linePos?.[0].line;
      if (seen.has(line)) return false;
      seen.add(line);
      return true;
    });
    throw new ConfigError(
      first.map((e) => {
        const line = e.linePos?.[0].line;
        return {
          file,
          line,
          field: '',
          message: yamlProblem(e.message, e.linePos?.[0].col, line === undefined ? '' : (lines[line - 1] ?? '')),
        };
      }),
    );
  }

  const issues: ConfigIssue[] = [];
  for (const { node, field, tag } of unreadTags(doc))
    issues.push({
      file,
      line: lineAt(node.range?.[0]),
      field,
      message: `the YAML tag ${tag} is not read in this file: remove it (a value is read by its field; quote one to make it a string)`,
    });
  const substitutedNodes = new Set<unknown>();
  const substitutedValues: string[] = [];
  substitute(doc, env, baseDir, reload, substitutedNodes, substitutedValues, (node, field, message) =>
    issues.push({ file, line: lineAt(node.range?.[0]), field, message }),
  );
  const loop = recursiveAlias(doc);
  if (loop)
    issues.push({
      file,
      line: lineAt(loop.range?.[0]),
      field: '',
      message: `invalid YAML: alias *${loop.source} refers to a node that contains it`,
    });
  if (issues.length > 0) throw new ConfigError(issues);

  const data = toData(doc, file);
  // Said here, before the schema, whose reading hid the value as a secret (the root holds secrets).
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new ConfigError([
      {
        file,
        line: undefined,
        field: '',
        message: `the configuration must be a mapping of settings (lines of "key: value"), got ${Array.isArray(data) ? `a list of ${data.length}` : `a single ${typeof data === 'string' ? 'string' : typeof data} (no "key: value" line)`}`,
      },
    ]);
  return {
    file,
    baseDir,
    data,
    lineOf: (segments) => {
      // The line of the key that names the field (for list items: the item); when the field is
      // absent, its nearest present ancestor's.
      for (let n = segments.length; n > 0; n--) {
        const line = lineAt(keyOffset(doc, segments.slice(0, n)));
        if (line !== undefined) return line;
      }
      return undefined;
    },
    substituted: (segments) => substitutedNodes.size > 0 && substitutedNodes.has(nodeAt(doc, segments)),
    substitutedValues,
  };
}

/** The node at `segments`, following aliases on the way (`doc.getIn` stops at one). */
function nodeAt(doc: Document, segments: readonly (string | number)[]): unknown {
  let node: unknown = doc.contents;
  for (const segment of segments) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) node = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment))?.value;
    else if (isSeq(node) && typeof segment === 'number') node = node.items[segment];
    else return undefined;
  }
  return isAlias(node) ? node.resolve(doc) : node;
}

/** An alias inside the node it names (`a: &x { b: *x }`): an endless structure no schema can check. */
function recursiveAlias(doc: Document): Alias | undefined {
  let found: Alias | undefined;
  visit(doc, {
    Alias(_key, node, path) {
      const target = node.resolve(doc);
      if (target && path.includes(target)) {
        found = node;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return found;
}

/**
 * A YAML syntax error as one line: the parser's sentence without its "at line L, column C:" (the
 * line leads the report; its excerpt, which followed that colon, does not fit one line), the column,
 * and the likely fix when the line holds an unquoted `${…}` inside `{ }` or `[ ]`, which YAML reads
 * as the start of a flow map.
 */
export function yamlProblem(message: string, column: number | undefined, sourceLine: string): string {
  let sentence = (message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
  // The parser's RangeError, caught as a syntax error: 5 000 "[" said only "Maximum call stack size exceeded".
  if (/Maximum call stack size exceeded/i.test(sentence))
    sentence = 'nested too deeply for the parser (hundreds of levels of [ ] or { }); a configuration nests a few levels';
  // "Map keys must be unique" named neither the key nor where it was (red team 28 §7).
  if (sentence.startsWith('Map keys must be unique') && column !== undefined) {
    const key = duplicateKey(sourceLine.slice(column - 1, column - 1 + 200));
    if (key !== undefined) sentence = `key ${key} appears twice in one mapping (the second here): keep one`;
  }
  const flowPlaceholder = placeholderInFlow(sourceLine);
  const hint = flowPlaceholder ? '; quote a ${…} value inside { } or [ ], e.g. "${CLIENT_SECRET}"' : '';
  return `invalid YAML: ${sentence}${column === undefined ? '' : ` (column ${column})`}${hint}`;
}

/** The key at the start of `text` (quoted as written, or plain, in JSON quotes), or undefined. */
function duplicateKey(text: string): string | undefined {
  const quoted = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*')/.exec(text);
  if (quoted) return quoted[1];
  const end = text.search(/:(\s|$)|[,{}[\]#]/);
  const plain = (end === -1 ? text : text.slice(0, end)).trim();
  return plain === '' ? undefined : JSON.stringify(plain);
}

/**
 * Whether an unquoted `${` follows a `{` or `[` with no `#` between them, in one pass: the regular
 * expression it replaces backtracked quadratically on a run of brackets, and a 120 000-character
 * line held a SIGHUP reload (and every request with it) 11.5 s (docs/adversarial.md 277).
 */
function placeholderInFlow(line: string): boolean {
  let inFlow = false;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 0x23 /* # */) inFlow = false;
    else if (inFlow && c === 0x24 /* $ */ && line.charCodeAt(i + 1) === 0x7b) {
      const before = line.charCodeAt(i - 1);
      if (before !== 0x22 && before !== 0x27) return true;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) inFlow = true;
  }
  return false;
}

/** The document as plain data; yaml refuses alias expansion past its limit ("billion laughs"). */
function toData(doc: Document, file: string): unknown {
  try {
    return doc.toJS() ?? {};
  } catch (err) {
    throw new ConfigError([{ file, line: undefined, field: '', message: yamlProblem((err as Error).message, undefined, '') }]);
  }
}

function keyOffset(doc: Document, path: readonly (string | number)[]): number | undefined {
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  const last = path[path.length - 1];
  if (isMap(parent)) {
    const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(last));
    return (pair?.key as YamlNode | undefined)?.range?.[0];
  }
  if (isSeq(parent) && typeof last === 'number') return (parent.items[last] as YamlNode | undefined)?.range?.[0];
  return undefined;
}

function substitute(
  doc: Document,
  env: NodeJS.ProcessEnv,
  baseDir: string,
  reload: boolean,
  substituted: Set<unknown>,
  values: string[],
  reportAt: (node: YamlNode, field: string, message: string) => void,
): void {
  // Each file is read once per load, and every substituted value counts towards one total: 300
  // lines of `- ${file:big.txt}` (1 MiB) under an unknown key read 300 MiB before the schema saw
  // the key, and a SIGHUP with it ran the serving proxy out of heap.
  const files = new Map<string, string | Error>();
  let total = 0;
  let overBudget = false;
  const kept = (value: string): string => {
    values.push(value);
    return value;
  };
  const within = (value: string, at: YamlNode, field: () => string): boolean => {
    if (overBudget) return false;
    total += Buffer.byteLength(value);
    if (total <= MAX_SUBSTITUTED_BYTES) return true;
    overBudget = true;
    reportAt(at, field(), SUBSTITUTIONS_TOO_LARGE);
    return false;
  };
  const fileValue = (path: string): string | Error => {
    let value = files.get(path);
    if (value === undefined) {
      try {
        value = readFileBounded(path, MAX_SECRET_FILE_BYTES, { allowFifo: !reload })
          .toString('utf8')
          .replace(/\r?\n$/, '');
      } catch (err) {
        value = err as Error;
      }
      files.set(path, value);
    }
    return value;
  };
  visit(doc, {
    Scalar(key, node, path) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return;
      // Computed only for a report: indexOf per list item is quadratic over a long list.
      const field = () => fieldOf(path, node);
      const report = (at: YamlNode, message: string) => reportAt(at, field(), message);
      node.value = node.value.replace(PLACEHOLDER, (whole, escaped: string | undefined, expr: string) => {
        if (escaped) return whole.slice(1); // "$${X}" is a literal "${X}"
        substituted.add(node);
        if (overBudget) return '';
        if (expr.startsWith('file:')) {
          const path = resolve(baseDir, expr.slice(5));
          const value = fileValue(path);
          if (value instanceof Error) {
            report(node, `cannot read ${path} for \${${expr}} (${readFailure(value)})`);
            return '';
          }
          return within(value, node, field) ? kept(value) : '';
        }
        const [name = '', fallback] = expr.split(/:-(.*)/s, 2);
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
          report(node, `"\${${expr}}" is not a valid placeholder; use \${NAME}, \${NAME:-default} or \${file:path}`);
          return '';
        }
        const value = env[name];
        if (value !== undefined && value !== '') return within(value, node, field) ? kept(value) : '';
        if (fallback !== undefined) return within(fallback, node, field) ? kept(fallback) : '';
        report(
          node,
          `environment variable ${name} is ${value === '' ? 'empty' : 'not set'} (write \${${name}:-default} to give a default)`,
        );
        return '';
      });
    },
  });
}

/** Tags whose value the schema reads as it would the value untagged. */
const READ_TAGS = new Set(['str', 'int', 'float', 'bool', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`));

/**
 * Explicit tags other than the plain types: `!foo deny` and `!!null deny` were read as "deny"
 * without a word (the parser's "Unresolved tag" warnings were dropped), `!!set` as `{}`, `!!binary`
 * as a Buffer's JSON (red team 28 §7).
 */
function unreadTags(doc: Document): { node: YamlNode; field: string; tag: string }[] {
  const found: { node: YamlNode; field: string; tag: string }[] = [];
  visit(doc, {
    Node(_key, node, path) {
      if (node.tag === undefined || READ_TAGS.has(node.tag)) return undefined;
      found.push({ node, field: fieldOf(path, node), tag: node.tag.replace(/^tag:yaml\.org,2002:/, '!!') });
      return undefined;
    },
  });
  return found;
}

/** The dotted field path (`upstream.url`, `routes[2].path`) of a scalar, from the visitor's ancestors. */
function fieldOf(ancestors: readonly unknown[], node: unknown): string {
  const segments: (string | number)[] = [];
  const chain = [...ancestors, node];
  for (let i = 0; i < chain.length - 1; i++) {
    const parent = chain[i];
    const child = chain[i + 1];
    if (isPair(parent) && isScalar(parent.key)) segments.push(String(parent.key.value));
    else if (isSeq(parent)) segments.push(parent.items.indexOf(child));
  }
  return formatFieldPath(segments);
}

/**
 * Where the file leaves a value blank (`port:` with nothing after it, a `-` alone in a list):
 * YAML reads that as null, which the schema's type coercion turned into 0, false or "" — a blank
 * `listeners.inbound.port:` listened on a random port, a blank `tokens.mint.enabled:` turned
 * minting off, though leaving the key out gives 8443 and true. Each is refused instead.
 */
export function blankValues(data: unknown): (string | number)[][] {
  const found: (string | number)[][] = [];
  // An anchor's value is one object however many aliases name it: walked once, at its first path
  // (a tree walk of `l1: [*l0 ×10]`, `l2: [*l1 ×10]`, … took seconds for a 200-byte file).
  const walked = new Set<object>();
  const walk = (value: unknown, at: (string | number)[]) => {
    if (value === null) found.push(at);
    if (typeof value !== 'object' || value === null || walked.has(value)) return;
    walked.add(value);
    if (Array.isArray(value)) value.forEach((item, i) => walk(item, [...at, i]));
    else for (const [key, item] of Object.entries(value as Record<string, unknown>)) walk(item, [...at, key]);
  };
  walk(data, []);
  return found;
}

export const BLANK_VALUE_MESSAGE = 'has no value (a blank YAML value is null): give one, or remove the key for its default';
