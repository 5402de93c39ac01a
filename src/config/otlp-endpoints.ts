/**
 * Where each OTLP signal goes, decided by Warden and handed to the exporters as an explicit URL.
 * Left to them, the OTel library parsed OTEL_EXPORTER_OTLP_*_ENDPOINT itself and, on a value it
 * could not parse (a port over 65535, a space in the host), fell back to http://localhost:4318 with
 * the OTEL_EXPORTER_OTLP_HEADERS credential, saying so only to a diag logger nobody registers (red
 * team 29 F1). Here an unusable value refuses the start (and `config check`), and a signal with
 * no endpoint of its own and no generic one is not exported at all (F4): never a default.
 *
 * Runs when telemetry starts (start, a reload that changes `telemetry.otlp`): not per request.
 */
import { ConfigError } from './config-error.js';
import type { OtlpConfig } from './types.js';
import { withoutUrlCredentials } from '../net/url-credentials.js';

export type OtlpSignal = 'traces' | 'logs' | 'metrics';
export const OTLP_SIGNALS: readonly OtlpSignal[] = ['traces', 'logs', 'metrics'];

/** The URL each signal is exported to; a signal without one is not exported. */
export type OtlpTargets = Partial<Record<OtlpSignal, string>>;

const SIGNAL_VARIABLE: Record<OtlpSignal, string> = {
  traces: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  logs: 'OTEL_EXPORTER_OTLP_LOGS_ENDPOINT',
  metrics: 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT',
};
const GENERIC_VARIABLE = 'OTEL_EXPORTER_OTLP_ENDPOINT';

/**
 * Why `text` is not a collector URL Warden exports to, or undefined. `base`: a base URL that
 * `/v1/<signal>` is added to (telemetry.otlp.endpoint, OTEL_EXPORTER_OTLP_ENDPOINT), where a query
 * would end up before the added path (F3). The message never repeats the value.
 */
export function otlpEndpointProblem(text: string, base: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'is not a URL (a port over 65535, a space or another character a host name cannot hold?)';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must start with http:// or https://';
  if (url.port === '0') return 'has port 0';
  // As upstream.url: a URL is logged and shown; the exporters would not send it anyway.
  if (url.username !== '' || url.password !== '')
    return 'holds a user:password@, which is not sent to the collector: put credentials in headers (telemetry.otlp.headers or OTEL_EXPORTER_OTLP_HEADERS)';
  if (text.includes('#')) return 'holds a #fragment, which is not sent';
  if (base && text.includes('?'))
    return 'holds a ?query: /v1/traces, /v1/logs and /v1/metrics are added to the path, so a base URL takes none (a per-signal variable such as OTEL_EXPORTER_OTLP_LOGS_ENDPOINT is used as written)';
  return undefined;
}

/** `base` with `/v1/<signal>` added to its path (a URL without query or fragment: otlpEndpointProblem). */
export function signalUrl(base: string, signal: OtlpSignal): string {
  const url = new URL(base);
  let end = url.pathname.length;
  while (end > 0 && url.pathname.charCodeAt(end - 1) === 0x2f) end--; // trailing `/`s
  url.pathname = `${url.pathname.slice(0, end)}/v1/${signal}`;
  return url.href;
}

/** Characters of an endpoint a message shows. */
const SHOWN_MAX_CHARS = 200;

/**
 * An endpoint as a log line or error message shows it: user name and password masked (first, so a
 * password holding `?` is masked whole), then without query and fragment (an `api_key=`), cut.
 */
export function shownEndpoint(text: string): string {
  const masked = withoutUrlCredentials(text);
  const end = /[?#]/.exec(masked)?.index ?? masked.length;
  const shown = masked.slice(0, Math.min(end, SHOWN_MAX_CHARS));
  return end > SHOWN_MAX_CHARS ? `${shown}…` : shown;
}

/**
 * telemetry.otlp.endpoint's issue message at load (sidecar.yaml, ca.yaml), or undefined: it passed
 * `config check` with a port over 65535 and then stopped the start, printing its password (F2).
 */
export function endpointFieldProblem(endpoint: string | undefined): string | undefined {
  const problem = endpoint === undefined ? undefined : otlpEndpointProblem(endpoint, true);
  return problem === undefined ? undefined : `${JSON.stringify(shownEndpoint(endpoint!))} ${problem}`;
}

/** An OTEL_* value as set: the spec reads an empty one as unset. */
function variable(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/**
 * The URL of each exported signal, or undefined when export is off (OTEL_SDK_DISABLED, or no
 * endpoint anywhere). `telemetry.otlp.endpoint` sends all three signals there and the variables are
 * not read; otherwise a signal's own variable is used as written, else the generic one with
 * `/v1/<signal>` added, else the signal is off. Throws ConfigError, one issue per unusable value
 * (masked), rather than let the exporters fall back to localhost.
 */
export function otlpTargets(cfg: OtlpConfig | undefined, env: NodeJS.ProcessEnv = process.env): OtlpTargets | undefined {
  if (env.OTEL_SDK_DISABLED === 'true') return undefined;
  const problems: { name: string; value: string; problem: string }[] = [];
  const checked = (name: string, value: string, base: boolean): string | undefined => {
    const problem = otlpEndpointProblem(value, base);
    if (problem !== undefined) problems.push({ name, value, problem });
    return problem === undefined ? value : undefined;
  };
  const targets: OtlpTargets = {};
  if (cfg?.endpoint !== undefined) {
    // Checked at load already (load.ts); again here for a configuration built in code.
    const base = checked('telemetry.otlp.endpoint', cfg.endpoint, true);
    if (base !== undefined) for (const signal of OTLP_SIGNALS) targets[signal] = signalUrl(base, signal);
  } else {
    const genericValue = variable(env, GENERIC_VARIABLE);
    const generic = genericValue === undefined ? undefined : checked(GENERIC_VARIABLE, genericValue, true);
    let any = genericValue !== undefined;
    for (const signal of OTLP_SIGNALS) {
      const own = variable(env, SIGNAL_VARIABLE[signal]);
      any ||= own !== undefined;
      if (own !== undefined) {
        const url = checked(SIGNAL_VARIABLE[signal], own, false);
        if (url !== undefined) targets[signal] = new URL(url).href;
      } else if (generic !== undefined) targets[signal] = signalUrl(generic, signal);
    }
    if (!any) return undefined;
  }
  if (problems.length > 0)
    throw new ConfigError(
      problems.map(({ name, value, problem }) => ({
        file: name,
        line: undefined,
        field: '',
        message: `${JSON.stringify(shownEndpoint(value))} ${problem}; OTLP export is not started with it${name.startsWith('OTEL_') ? ' (the OTel library would send to http://localhost:4318 instead)' : ''}`,
      })),
    );
  return targets;
}

/** Where each signal goes, for the start line: its URL without query, or "off". */
export function describeTargets(targets: OtlpTargets): Record<OtlpSignal, string> {
  const out = {} as Record<OtlpSignal, string>;
  for (const signal of OTLP_SIGNALS) {
    const url = targets[signal];
    out[signal] = url === undefined ? 'off (no endpoint for it)' : shownEndpoint(url);
  }
  return out;
}
