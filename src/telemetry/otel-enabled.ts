/**
 * Whether OTLP export is configured: an endpoint in sidecar.yaml or in any of the four
 * OTEL_EXPORTER_OTLP_*ENDPOINT variables. Throws ConfigError on one that is not a usable URL
 * (otlp-endpoints.ts), rather than read it as on or off.
 */
import type { OtlpConfig } from '../config/types.js';
import { otlpTargets } from '../config/otlp-endpoints.js';

export function otelEnabled(cfg: OtlpConfig | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  return otlpTargets(cfg, env) !== undefined;
}
