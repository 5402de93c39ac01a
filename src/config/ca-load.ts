/**
 * Loads ca.yaml: YAML with positions → ${…} substitution → schema (defaults, durations, paths) →
 * checks that need the CA material (it loads, the passphrase decrypts it, the trust domain matches,
 * the certificate lifetime fits the intermediate). Problems are ConfigIssues at FILE:LINE field.
 */
import { join } from 'node:path';
import type { ErrorObject } from 'ajv';
import {
  ConfigError,
  formatFieldPath,
  isSecretValue,
  never,
  shownValue,
  withSubstitutionsMasked,
  type Hidden,
  type ConfigIssue,
} from './config-error.js';
import { caSchema, type CaConfig } from './ca-schema.js';
import { createConfigAjv, type ContextValidator } from './validator.js';
import { BLANK_VALUE_MESSAGE, blankValues, parseYamlSource, readYamlSource, type YamlSource } from './yaml-source.js';
import { endpointFieldProblem } from './otlp-endpoints.js';
import {
  CA_FILES,
  loadIssuingMaterial,
  missingAdminFile,
  readAdminCertificate,
  type AdminCertificate,
  type CaMaterial,
  type IssuingMaterial,
} from '../ca/layout.js';

export interface LoadedCaConfig {
  file: string;
  config: CaConfig;
  material: CaMaterial;
  issue: (segments: readonly (string | number)[], message: string) => ConfigIssue;
}

/** ca.yaml with the CA material but for admin.crt, which may be missing: `warden ca admin issue` replaces it. */
export interface LoadedCaConfigForAdminIssue {
  config: CaConfig;
  material: IssuingMaterial;
}

let validateCa: ContextValidator | undefined;

export async function loadCaConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedCaConfig> {
  const source = readYamlSource(file, env);
  return withAdminCertificate(source.file, await fromSource(source));
}

/** The checked ca.yaml with its admin.crt, which `warden ca serve` and the admin commands need. */
function withAdminCertificate(file: string, { config, material, admin, issue }: CheckedCaConfig): LoadedCaConfig {
  if (admin === 'missing') throw new ConfigError([issue(['dir'], missingAdminFile(join(config.dir, CA_FILES.adminCert), file))]);
  return { file, config, material: { ...material, ...admin }, issue };
}

/**
 * ca.yaml and the CA material for `warden ca admin issue`: admin.crt may be missing (lost), the
 * trust domain then being ca.yaml's alone, which the CA database's stamp checks (store.ts
 * stampTrustDomain); one admin.crt holds must be ca.yaml's, as for `warden ca serve`.
 */
export async function loadCaConfigForAdminIssue(file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedCaConfigForAdminIssue> {
  const { config, material } = await fromSource(readYamlSource(file, env));
  return { config, material };
}

/** ca.yaml validated against the schema only, without loading the CA material (the admin CLI). */
export function readCaConfig(file: string, env: NodeJS.ProcessEnv = process.env): CaConfig {
  const source = readYamlSource(file, env);
  return validate(source, issueAt(source));
}

export async function parseCaConfig(file: string, text: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedCaConfig> {
  return withAdminCertificate(file, await fromSource(parseYamlSource(file, text, env)));
}

/**
 * ca.yaml's shape from an object (snake_case keys as in the file), with defaults and units applied —
 * for starting a CA in-process (tests, `warden dev`). Relative paths resolve against `baseDir`.
 */
export function resolveCaConfig(input: Record<string, unknown>, baseDir = process.cwd()): CaConfig {
  const source: YamlSource = { file: '<ca config>', baseDir, data: structuredClone(input), lineOf: () => undefined };
  return validate(source, issueAt(source));
}

function issueAt(source: YamlSource) {
  return (segments: readonly (string | number)[], message: string): ConfigIssue => ({
    file: source.file,
    line: source.lineOf(segments),
    field: formatFieldPath(segments),
    message,
  });
}

function validate(source: YamlSource, issue: ReturnType<typeof issueAt>): CaConfig {
  validateCa ??= createConfigAjv().compile(caSchema) as ContextValidator;
  const blanks = blankValues(source.data);
  if (blanks.length > 0) throw new ConfigError(blanks.map((at) => issue(at, BLANK_VALUE_MESSAGE)));
  if (!validateCa.call({ baseDir: source.baseDir }, source.data)) {
    throw new ConfigError(schemaIssues(validateCa.errors ?? [], issue, source.substituted ?? never));
  }
  const config = source.data as CaConfig;
  const outOfRange = durationIssues(config, issue);
  const endpointProblem = endpointFieldProblem(config.telemetry.otlp?.endpoint);
  if (endpointProblem !== undefined) outOfRange.push(issue(['telemetry', 'otlp', 'endpoint'], endpointProblem));
  if (outOfRange.length > 0) throw new ConfigError(outOfRange);
  config.database.path ??= join(config.dir, CA_FILES.database);
  return config;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * The CA's durations, bounded where a value breaks it at run time rather than at load: a CRL with
 * next_update 0 was signed (and its number written) on every anonymous GET; a server lifetime of
 * 1 ms issued the CA an already expired certificate, every second; a token ttl above the API's 7
 * days, or not whole seconds, failed every `ca token create`.
 */
const DURATION_BOUNDS: readonly [path: readonly [string, string], min: number, max: number, range: string][] = [
  // Seconds are allowed: rotation is tested (and may be run) with very short-lived certificates.
  [['certificates', 'lifetime'], 1 * SECOND, 365 * DAY, 'from 1s to 365d'],
  [['certificates', 'backdate'], 0, 1 * HOUR, 'from 0 to 1h'],
  [['tokens', 'ttl'], 1 * SECOND, 7 * DAY, 'whole seconds from 1s to 7d (the token API takes seconds)'],
  [['crl', 'next_update'], 1 * MINUTE, 7 * DAY, 'from 1m to 7d'],
  [['server', 'lifetime'], 1 * MINUTE, 365 * DAY, 'from 1m to 365d'],
  // At least an hour: `keep_expired: 1` (1 ms) would delete rows as they expire. Ten years is "keep".
  [['database', 'keep_expired'], 1 * HOUR, 3650 * DAY, 'from 1h to 87600h (10 years)'],
];

function durationIssues(config: CaConfig, issue: ReturnType<typeof issueAt>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const [[section, key], min, max, range] of DURATION_BOUNDS) {
    const ms = (config as unknown as Record<string, Record<string, number>>)[section]?.[key] as number;
    const wholeSeconds = section !== 'tokens' || ms % SECOND === 0;
    if (ms < min || ms > max || !wholeSeconds) issues.push(issue([section, key], `must be ${range}, got ${ms} ms`));
  }
  return issues;
}

interface CheckedCaConfig {
  config: CaConfig;
  material: IssuingMaterial;
  admin: AdminCertificate | 'missing';
  issue: ReturnType<typeof issueAt>;
}

async function fromSource(source: YamlSource): Promise<CheckedCaConfig> {
  try {
    return await checked(source);
  } catch (err) {
    throw withSubstitutionsMasked(err, source.substitutedValues ?? []);
  }
}

async function checked(source: YamlSource): Promise<CheckedCaConfig> {
  const issue = issueAt(source);
  const config = validate(source, issue);
  let material: IssuingMaterial;
  let admin: AdminCertificate | 'missing';
  try {
    material = await loadIssuingMaterial(config.dir, config.passphrase);
    admin = readAdminCertificate(config.dir);
  } catch (err) {
    const message = (err as Error).message;
    throw new ConfigError([issue([/passphrase|encrypted|decrypt/.test(message) ? 'passphrase' : 'dir'], message)]);
  }
  const issues: ConfigIssue[] = [];
  if (admin !== 'missing' && admin.trustDomain !== config.trust_domain) {
    issues.push(issue(['trust_domain'], `is "${config.trust_domain}" but the CA in ${config.dir} is for "${admin.trustDomain}"`));
  }
  // Certificates are capped at the chain's end: the intermediate's, or its root's when that comes first.
  const rootFirst = material.issuingRoot.notAfter < material.intermediate.notAfter;
  const chainEnd = rootFirst ? material.issuingRoot.notAfter : material.intermediate.notAfter;
  const left = chainEnd.getTime() - Date.now();
  if (config.certificates.lifetime > left) {
    issues.push(
      issue(
        ['certificates', 'lifetime'],
        `${config.certificates.lifetime} ms is longer than the ${rootFirst ? 'root' : 'intermediate'} has left (until ${chainEnd.toISOString()})`,
      ),
    );
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return { config, material, admin, issue };
}

/** ajv errors → one issue per field, phrased with the schema's `x-expect`. */
function schemaIssues(errors: readonly ErrorObject[], issue: ReturnType<typeof issueAt>, substituted: Hidden): ConfigIssue[] {
  const out = new Map<string, ConfigIssue>();
  for (const e of errors) {
    const at = e.instancePath
      ? e.instancePath
          .slice(1)
          .split('/')
          .map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/~1/g, '/').replace(/~0/g, '~')))
      : [];
    const expect = (e.parentSchema as { 'x-expect'?: string } | undefined)?.['x-expect'];
    let found: ConfigIssue;
    if (e.keyword === 'required') {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      const props = (e.parentSchema as { properties?: Record<string, { 'x-expect'?: string }> } | undefined)?.properties;
      const hint = props?.[missing]?.['x-expect'];
      found = { ...issue(at, `"${missing}" is required${hint ? ` (${hint})` : ''}`), field: formatFieldPath([...at, missing]) };
    } else if (e.keyword === 'additionalProperties') {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      found = issue([...at, extra], `unknown key (allowed: ${known.join(', ')})`);
    } else {
      const got = shownValue(e.data, isSecretValue(caSchema, e.schemaPath, e.parentSchema), substituted(at));
      found = issue(at, expect ? `must be ${expect}, got ${got}` : `${e.message ?? 'is invalid'}, got ${got}`);
    }
    if (!out.has(found.field)) out.set(found.field, found);
  }
  return [...out.values()].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}
