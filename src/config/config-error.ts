/** Configuration problems: each names the file, the line, the field and what is expected. */
import { withoutUrlCredentials } from '../net/url-credentials.js';

export interface ConfigIssue {
  file: string;
  line: number | undefined;
  /** Dotted field path, e.g. `listeners.inbound.port` or `routes[2].path`; empty for the whole file. */
  field: string;
  message: string;
}

export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}`;
  return issue.field ? `${where} ${issue.field}: ${issue.message}` : `${where}: ${issue.message}`;
}

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG_INVALID';
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
  }
}

/** Substituted values shorter than this are left in messages: masking `true` or `8443` would garble them, and a secret is longer. */
const MASKED_MIN_CHARS = 8;
const MASK = '[a ${…} value]';

/**
 * `err` with every substituted value (`${ENV}`, `${file:…}`) of at least MASKED_MIN_CHARS masked in
 * its messages, as written and as JSON writes it: the backstop behind `shownValue`, for the checks
 * across fields, file reads and nested values that show what they refuse (a secret in
 * `tls.key`'s place was shown as the file name not found; docs/adversarial.md 278).
 */
export function withSubstitutionsMasked(err: unknown, values: readonly string[]): unknown {
  if (!(err instanceof ConfigError) || values.length === 0) return err;
  const mask = substitutionMask(values);
  return new ConfigError(err.issues.map((issue) => ({ ...issue, message: mask(issue.message) })));
}

/**
 * A function masking each substituted value of at least MASKED_MIN_CHARS in a text, as written and
 * as JSON writes it: for every message made from a loaded file after it loaded (an OpenAPI document
 * that cannot be read names its URL, `${…}` query included: red team 28 §3).
 */
export function substitutionMask(values: readonly string[]): (text: string) => string {
  const spellings = new Set<string>();
  for (const value of values) {
    if (value.length < MASKED_MIN_CHARS) continue;
    spellings.add(value);
    spellings.add(JSON.stringify(value).slice(1, -1));
  }
  if (spellings.size === 0) return (text) => text;
  // Longest first: a value inside another is masked with it.
  const ordered = [...spellings].sort((a, b) => b.length - a.length);
  return (text) => ordered.reduce((out, spelling) => out.replaceAll(spelling, MASK), text);
}

/** `['routes', 2, 'path']` → `routes[2].path` */
export function formatFieldPath(segments: readonly (string | number)[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number' || /^\d+$/.test(s)) out += `[${s}]`;
    else out += out ? `.${s}` : s;
  }
  return out;
}

/**
 * A refused value as an error line may show it: JSON, with the credentials of a URL masked (a Redis
 * URL that fails its pattern carries its password into `config check` output and reload events).
 */
/** Whether the value at a field must not be shown (it came from a `${…}` substitution). */
export type Hidden = (segments: readonly (string | number)[]) => boolean;
export const never: Hidden = () => false;

export function shownValue(value: unknown, secret = false, substituted = false): string {
  if (secret) return shapeOf(value);
  if (substituted) return `a ${typeof value} from a \${…} substitution (not shown: it may be a secret)`;
  // JSON has no infinity or NaN: `max_body_bytes: .inf` (or 1e400) was reported as "got null".
  if (typeof value === 'number' && !Number.isFinite(value)) return Number.isNaN(value) ? '.nan' : value > 0 ? '.inf' : '-.inf';
  return cut(withoutUrlCredentials(JSON.stringify(value) ?? String(value)));
}

/** Characters of a refused value an error line shows: a base64 blob or PEM body pasted into the wrong field is megabytes. */
const SHOWN_MAX_CHARS = 200;

/**
 * Cut after masking (masking is linear: url-credentials.ts), so a URL whose `@` lies past the cut
 * still has its password masked.
 */
function cut(shown: string): string {
  return shown.length <= SHOWN_MAX_CHARS ? shown : `${shown.slice(0, SHOWN_MAX_CHARS)}… (${shown.length} characters)`;
}

/** What a secret (or a value holding one) was, without its text. */
function shapeOf(value: unknown): string {
  if (Array.isArray(value)) return `a list of ${value.length} (not shown: it holds a secret)`;
  if (value === null) return 'null';
  if (typeof value === 'object') return 'a mapping (not shown: it holds a secret)';
  return `a ${typeof value} (not shown: a secret)`;
}

/**
 * Whether an ajv error's value must not be shown: a schema node on its way (`schemaPath`, from
 * `root`) is `x-secret`, or the failing node holds one (an `introspection` written as a list carries
 * its client secret). Config errors reach `config check`, logs, the console and the collector.
 */
export function isSecretValue(root: object, schemaPath: string, parentSchema: unknown): boolean {
  let node: unknown = root;
  for (const segment of schemaPath.replace(/^#\/?/, '').split('/')) {
    if (typeof node !== 'object' || node === null) break;
    if ((node as Record<string, unknown>)['x-secret'] === true) return true;
    node = (node as Record<string, unknown>)[segment.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return holdsSecret(parentSchema);
}

// Keyed by the configuration schemas' objects: module constants, as many as the schemas have.
const holding = new Map<object, boolean>();

function holdsSecret(schema: unknown): boolean {
  if (typeof schema !== 'object' || schema === null) return false;
  let known = holding.get(schema);
  if (known === undefined) {
    holding.set(schema, false); // a schema that contains itself
    known =
      (schema as Record<string, unknown>)['x-secret'] === true ||
      Object.values(schema).some((v) => (Array.isArray(v) ? v.some(holdsSecret) : holdsSecret(v)));
    holding.set(schema, known);
  }
  return known;
}
