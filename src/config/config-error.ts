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
export function shownValue(value: unknown): string {
  return withoutUrlCredentials(JSON.stringify(value) ?? String(value));
}
