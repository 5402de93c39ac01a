/** `warden config check -c FILE`: validate a configuration without starting anything. */
import { loadSidecarConfig, type LoadedSidecarConfig } from '../config/load.js';
import type { Operation } from '../openapi/operations.js';
import { compileGeneration } from '../proxy/sidecar.js';
import { EXIT, parseCommandArgs, UsageError } from './args.js';
import type { SidecarConfig } from '../config/types.js';
import { createEventBus } from '../telemetry/events.js';
import { createLogger } from '../telemetry/logger.js';
import { createMetrics } from '../telemetry/metrics.js';
import { describeClientCrl, staleCrls } from '../net/client-crl.js';
import { shownDocument } from '../openapi/shown-document.js';
import { ConfigError } from '../config/config-error.js';
import { otlpTargets } from '../config/otlp-endpoints.js';

/** Token translation built without contacting the IdP or Redis, so the plan compiles as the proxy would. */
async function offlineTokenRuntime(config: SidecarConfig) {
  const { createTokenRuntime } = await import('../identity/token-runtime.js');
  return createTokenRuntime(config.tokens!, {
    serviceName: config.service.name,
    selfId: config.mesh?.spiffe_id,
    events: createEventBus(),
    logger: createLogger({ level: 'silent' }),
    metrics: createMetrics({ serviceName: config.service.name, processMetrics: false }).tokens,
    offline: true,
  });
}

/**
 * Everything `warden config check` verifies beyond loading: the plan compiles as the proxy would
 * build it (token translation offline, the memory store standing in for Redis, the OpenAPI
 * document loaded). Throws ConfigError. Connects to nothing.
 */
export async function checkSidecarConfig(
  loaded: LoadedSidecarConfig,
  warn?: (line: string) => void,
): Promise<{ operations: readonly Operation[] | undefined }> {
  const tokens = loaded.config.tokens ? await offlineTokenRuntime(loaded.config) : undefined;
  const { createMemoryRateLimitRuntime } = await import('../traffic/rate-limit-runtime.js');
  const { loadOperations } = await import('../openapi/load-operations.js');
  try {
    const operations = await loadOperations(loaded, warn);
    const generation = compileGeneration(loaded, { tokens, rateLimits: createMemoryRateLimitRuntime(1), operations });
    await generation.forwarder.close();
    return { operations };
  } catch (err) {
    // A ConfigError's issues are masked already (load.ts); any other error may name what was
    // substituted into the file (red team 28 §3), as the reload_failed event masks it.
    if (err instanceof Error && !(err instanceof ConfigError)) {
      err.message = loaded.mask(err.message);
      const detail = (err as { detail?: unknown }).detail;
      if (typeof detail === 'string') Object.assign(err, { detail: loaded.mask(detail) });
    }
    throw err;
  } finally {
    await tokens?.close();
  }
}

const configCheckHelp = `Usage: warden config check -c FILE

Validates a sidecar configuration: YAML syntax, \${ENV} and \${file:...} substitution, the schema,
route patterns, the OpenAPI document (with its JSON pointer on error), and that the TLS certificate
and key load and belong together. Nothing is started.
Each problem is printed as one line: FILE:LINE field: what is wrong and what is expected.

Options:
  -c, --config FILE   the file to check
  -h, --help          show this help
Exit codes: 0 valid, 2 invalid`;

export async function runConfigCheck(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('config check', argv, { config: { type: 'string', short: 'c' } });
  if (values.help) {
    console.log(configCheckHelp);
    return EXIT.ok;
  }
  if (!values.config) throw new UsageError('warden config check: missing -c FILE (see warden config check --help)');
  const loaded = loadSidecarConfig(values.config);
  const { operations } = await checkSidecarConfig(loaded, (line) => console.error(`warning: ${line}`));
  // The OTEL_EXPORTER_OTLP_*ENDPOINT variables as the proxy reads them: one it cannot use refuses its start.
  otlpTargets(loaded.config.telemetry.otlp, process.env);
  const { config } = loaded;
  const routes = operations
    ? `${operations.length} operations from ${shownDocument(config.openapi?.document ?? '')}`
    : config.routes.length === 0
      ? 'no routes (every request uses the top-level policy)'
      : `${config.routes.length} routes`;
  const crl = loaded.tls?.clientCrl;
  for (const c of crl ? staleCrls(crl) : [])
    console.error(
      `warning: listeners.inbound.tls.client_crl: ${crl?.file ?? ''}: the ${describeClientCrl(c)} is past its nextUpdate; it would stay in force, and revocations made since are not known`,
    );
  const crls = crl
    ? `, client CRL ${crl.file} (${crl.crls.length === 1 ? '1 CRL' : `${crl.crls.length} CRLs`}, ${crl.crls.reduce((n, c) => n + c.revoked, 0)} revoked)`
    : '';
  console.log(
    `${values.config}: valid — inbound ${config.listeners.inbound.host}:${config.listeners.inbound.port}, upstream ${config.upstream.url}, ${routes}${crls}`,
  );
  return EXIT.ok;
}
