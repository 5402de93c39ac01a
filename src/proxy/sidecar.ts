/**
 * The sidecar as a whole: compiles a configuration into a Generation, starts the inbound and admin
 * listeners, wires telemetry, reloads (swap one reference) and drains.
 */
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { ConfigError } from '../config/config-error.js';
import type { LoadedSidecarConfig } from '../config/load.js';
import type { SidecarConfig } from '../config/types.js';
import { compilePlan, PlanError } from '../pipeline/plan.js';
import { createRescue } from '../pipeline/rescue.js';
import { closeConnectionAfter, h1ConnectionOf } from './h1-connection.js';
import { metricsEventSink, pinoEventSink } from '../telemetry/event-sinks.js';
import { createAccessLog } from '../telemetry/access-log.js';
import { createEventBus, type EventBus } from '../telemetry/events.js';
import { createLogger, logLinesDropped, redactHeaders, setLogBufferBytes, type Logger } from '../telemetry/logger.js';
import { createMetrics, type Metrics, type RateLimitCounters } from '../telemetry/metrics.js';
import { createEventFeed } from '../console/event-feed.js';
import { createConsoleStatus } from '../console/status.js';
import { startOtelRuntime } from '../telemetry/otel-runtime.js';
import { TelemetryDrops } from '../telemetry/telemetry-drops.js';
import type { OtelIdentity } from '../telemetry/otel.js';
import { WARDEN_VERSION } from '../version.js';
import { startAdminServer, type AdminServer } from './admin.js';
import { createForwarder } from './forward.js';
import { createRequestHandler, type Generation, type RequestObserver } from './handler.js';
import { compileHeaderRules } from './headers.js';
import { startInboundListener, type InboundListener } from './listener.js';
import { startEgressListener, type EgressListener } from './egress.js';
import { inboundTlsSettings, meshTlsMaterial } from './inbound-tls.js';
import { restartOnlyChanges, withStartValues } from './restart-only.js';
import type { RevocationList } from '../mesh/revocation-list.js';
import type { CrlStatus, MeshIdentity } from '../mesh/identity.js';
import { trustDomainOf } from '../net/spiffe-id.js';
import type { TlsMaterial } from '../config/load.js';
import type { TokenRuntime } from '../identity/token-runtime.js';
import { DPOP_HEADER } from '../config/token-places.js';
import type { Operation } from '../openapi/operations.js';
import { loadOperations } from '../openapi/load-operations.js';
import { apiKeyNames } from '../openapi/security-requirements.js';
import { withoutUrlCredentials } from '../net/url-credentials.js';
import { createClamdClient, type ClamdClient } from '../threats/clamd-client.js';
import { createWafEngine, type WafEngine } from '../threats/waf.js';
import { wafRuleset } from '../stages/waf-rules/rules.js';
import { createRateLimitRuntime, type RateLimitRuntime } from '../traffic/rate-limit-runtime.js';
import { createRefusalMemo, type RefusalMemo } from '../traffic/refusal-memo.js';
import { rateLimitPrefixOf } from '../config/rate-limit-schema.js';
import { tokenAdminEndpoints, writeJwks } from './token-endpoints.js';
import { TokenDenylist } from '../identity/token-denylist.js';
import { pathAttribute } from '../telemetry/attribute-limits.js';
import { applyHeapGrowth } from './heap-growth.js';
import { warnIfUndiciUnpatched } from './undici-paused-finish.js';
import type { AdminEndpoint } from './admin.js';
import { describeClientCrl, type ClientCrl } from '../net/client-crl.js';
import { createClientCrlWatch } from './client-crl-watch.js';
import { onPatternEngineFailure, patternEngineFailure } from '../openapi/re2-runtime.js';

export interface SidecarGeneration extends Generation {
  readonly loaded: LoadedSidecarConfig;
  readonly config: SidecarConfig;
  /** Header fields an access line with headers must not show: internal ones, and those that carry a token here. */
  readonly secretHeader: (name: string) => boolean;
  readonly clientCrl: ClientCrl | undefined;
}

export interface Sidecar {
  readonly inbound: AddressInfo;
  readonly admin: AddressInfo;
  /** The egress listener, when configured. */
  readonly egress: AddressInfo | undefined;
  /** The workload identity, with mesh. */
  readonly mesh: MeshIdentity | undefined;
  /** Token translation's state, with `tokens`. */
  readonly tokens: TokenRuntime | undefined;
  readonly events: EventBus;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly current: SidecarGeneration;
  /** Loads and applies a new configuration; on any problem the current one stays in force. */
  reload(load: () => LoadedSidecarConfig): Promise<boolean>;
  /** Graceful stop: no new connections, in-flight requests finish within lifecycle.drain_timeout. */
  drain(): Promise<void>;
}

export interface SidecarOptions {
  logger?: Logger;
  events?: EventBus;
  /** Process-wide metrics (CPU, memory, event loop); off when several sidecars share a process. */
  processMetrics?: boolean;
}

export interface GenerationDeps {
  revocations?: RevocationList | undefined;
  tokens?: TokenRuntime | undefined;
  rateLimits?: RateLimitRuntime | undefined;
  /** Kept with `rateLimits` across reloads; a plan makes its own without it. */
  refusals?: RefusalMemo | undefined;
  rateLimitCounters?: ((route: string) => RateLimitCounters) | undefined;
  preflightCounter?: ((route: string) => () => void) | undefined;
  /** The OpenAPI document's operations (loadOperations), when `openapi` is configured. */
  operations?: readonly Operation[] | undefined;
  events?: EventBus | undefined;
}

/**
 * libddwaf compiles a ruleset once; engines are kept per (paranoia, budget, excluded rules) for
 * the life of the process, so a reload that keeps the waf settings reuses them and in-flight
 * requests of the old generation never see a disposed engine.
 */
const wafEngines = new Map<string, WafEngine>();

function wafEnginesFor(config: SidecarConfig): ((excluded: ReadonlySet<string>) => WafEngine) | undefined {
  const cfg = config.threats?.waf;
  if (!cfg) return undefined;
  return (excluded) => {
    const key = `${cfg.paranoia}|${cfg.budget}|${cfg.remember_clean}|${[...excluded].sort().join(',')}`;
    let engine = wafEngines.get(key);
    if (!engine) {
      engine = createWafEngine({
        rules: wafRuleset(cfg.paranoia, excluded),
        budgetMicros: cfg.budget * 1000,
        cleanStrings: cfg.remember_clean,
      });
      wafEngines.set(key, engine);
    }
    return engine;
  };
}

/** clamd clients per settings, kept across reloads with their pooled connections. */
const scanners = new Map<string, ClamdClient>();

function scannerFor(config: SidecarConfig): ClamdClient | undefined {
  const m = config.threats?.malware;
  if (!m) return undefined;
  const options = {
    address: m.clamd,
    timeout: m.timeout,
    maxConcurrent: m.max_concurrent,
    streamMaxLength: m.stream_max_length,
    idleConnections: m.idle_connections,
  };
  const key = JSON.stringify(options);
  let client = scanners.get(key);
  if (!client) scanners.set(key, (client = createClamdClient(options)));
  return client;
}

/** Compiles everything the request path needs from one configuration. Throws ConfigError. */
export function compileGeneration(loaded: LoadedSidecarConfig, deps: GenerationDeps = {}): SidecarGeneration {
  const { config } = loaded;
  let plan;
  try {
    plan = compilePlan(config, { ...deps, scanner: scannerFor(config), wafEngine: wafEnginesFor(config) });
  } catch (err) {
    if (err instanceof PlanError) throw new ConfigError([loaded.issue(err.field, err.message)]);
    throw err;
  }
  // A token may come in a header of any name (tokens.sources), and the minted one goes in mint.header;
  // a DPoP proof (RFC 9449) is for the sidecar only.
  const tokenHeaders = new Set([
    ...(config.tokens ? [DPOP_HEADER] : []),
    ...(config.tokens?.sources ?? []).flatMap((src) => (src.from === 'header' ? [src.name.toLowerCase()] : [])),
    ...(config.tokens?.mint.enabled ? [config.tokens.mint.header.toLowerCase()] : []),
  ]);
  // The API keys the OpenAPI document's apiKey schemes name in a header are credentials too.
  const apiKeyHeaders = apiKeyNames(deps.operations ?? [], 'header');
  const mintHeader = config.tokens?.mint.enabled ? config.tokens.mint.header : undefined;
  const rules = compileHeaderRules(config.headers, config.upstream, tokenHeaders, plan.headersRead, mintHeader);
  const runtime = deps.tokens;
  const jwksPath = config.tokens?.mint.jwks_path;
  const localEndpoints =
    runtime && jwksPath ? new Map([[jwksPath, (res: Parameters<typeof writeJwks>[1]) => writeJwks(runtime, res)]]) : undefined;
  return {
    loaded,
    config,
    secretHeader: (name) => tokenHeaders.has(name) || apiKeyHeaders.has(name) || rules.isInternal(name),
    plan,
    rules,
    forwarder: createForwarder(config.upstream, rules, config.limits.send_timeout),
    limits: config.limits,
    localEndpoints,
    clientCrl: config.mesh ? undefined : loaded.tls?.clientCrl,
  };
}

/** The rate-limit store for a configuration: the current one while its store settings are unchanged (buckets survive a reload). */
async function rateLimitRuntimeFor(
  config: SidecarConfig,
  current: { runtime: RateLimitRuntime; refusals: RefusalMemo; key: string } | undefined,
  events: EventBus,
): Promise<{ runtime: RateLimitRuntime; refusals: RefusalMemo; key: string }> {
  const { store, redis, on_store_failure, max_keys } = config.rate_limits;
  const prefix = rateLimitPrefixOf(config.rate_limits.prefix, config.service.name);
  const key = JSON.stringify([store, redis, prefix, on_store_failure, max_keys]);
  if (current && current.key === key) return current;
  // The addresses held for failed authentications go with the buckets they were charged to: a memo
  // per plan let each reload release them, and their next wave reached the IdP again.
  return {
    runtime: await createRateLimitRuntime({ ...config.rate_limits, prefix }, { events }),
    refusals: createRefusalMemo(max_keys),
    key,
  };
}

/**
 * Token translation's state for a configuration: the current one when `tokens` did not change (its
 * caches and keys survive a reload). Otherwise a new one, which keeps the revocations, the minting
 * keys, and each unchanged issuer's discovered endpoints and key set; not its answer caches.
 */
async function tokenRuntimeFor(
  config: SidecarConfig,
  current: { runtime: TokenRuntime | undefined; key: string } | undefined,
  deps: { events: EventBus; logger: Logger; metrics: Metrics; selfId: string | undefined; denylist: TokenDenylist },
): Promise<{ runtime: TokenRuntime | undefined; key: string }> {
  const key = JSON.stringify([config.tokens ?? null, config.service.name]);
  if (current && current.key === key) return current;
  if (!config.tokens) return { runtime: undefined, key };
  // Loaded only with tokens: sidecars without token translation skip jose, ioredis and the IdP code.
  const { createTokenRuntime } = await import('../identity/token-runtime.js');
  const runtime = await createTokenRuntime(config.tokens, {
    serviceName: config.service.name,
    selfId: deps.selfId,
    events: deps.events,
    logger: deps.logger,
    metrics: deps.metrics.tokens,
    denylist: deps.denylist,
    keyRing: current?.runtime?.keyRing(),
    replayCache: current?.runtime?.replayCache(),
    // What the current runtime discovered and fetched: an IdP down during the reload does not undo it.
    issuers: current?.runtime?.issuerState(),
  });
  await runtime.prefetch();
  return { runtime, key };
}

/** The log line when dropping a client CA closes open connections (each also raised warden.tls.peer_denied). */
/** The /readyz detail of the `crl` check: what is in force, or why nothing is. */
export function crlReadiness(crl: CrlStatus, caUrl: string): string {
  if (!crl.inForce)
    return `no CRL in force: ${crl.lastError ?? `the CA at ${caUrl} has not answered yet`}; requests from mesh peers are refused (503 ERR_MESH_CRL_UNAVAILABLE)`;
  const which = `CRL${crl.number !== undefined ? ` number ${crl.number}` : ''}`;
  if (crl.secondsPastNextUpdate > 0)
    return `${which} past its nextUpdate ${crl.nextUpdate ?? ''} by ${crl.secondsPastNextUpdate} s${crl.lastError ? ` (${crl.lastError})` : ''}: still in force, known-revoked peers are refused, revocations since are not known`;
  return `${which}${crl.nextUpdate ? `, next update ${crl.nextUpdate}` : ''}${crl.lastError ? ` (refresh failing: ${crl.lastError})` : ''}`;
}

/** The /readyz detail of the `client_crl` check: each CRL in force, and how long past its nextUpdate. */
export function clientCrlReadiness(crl: ClientCrl, now = Date.now()): string {
  const each = crl.crls.map((c) => {
    const past = c.nextUpdate === undefined ? 0 : Math.floor((now - c.nextUpdate.getTime()) / 1000);
    return past > 0 ? `${describeClientCrl(c)}: past its nextUpdate by ${past} s, still in force` : describeClientCrl(c);
  });
  return `${crl.file}: ${each.join('; ')}`;
}

function closedByTrustChange(closed: number, where: string): string {
  return `a CA was removed from ${where}: closing ${closed} open connection(s) whose client certificate chains to it`;
}

/** The resource OpenTelemetry reports the sidecar as. */
function otelIdentity(config: SidecarConfig): OtelIdentity {
  return {
    serviceName: config.service.name,
    version: WARDEN_VERSION,
    attributes: config.mesh
      ? { 'warden.spiffe_id': config.mesh.spiffe_id, 'warden.trust_domain': trustDomainOf(config.mesh.spiffe_id) }
      : {},
  };
}

export async function startSidecar(loaded: LoadedSidecarConfig, options: SidecarOptions = {}): Promise<Sidecar> {
  const config = loaded.config;
  const logger =
    options.logger ??
    createLogger({ level: config.log.level, base: { service: config.service.name }, bufferBytes: config.log.buffer_bytes });
  const metrics = createMetrics({
    serviceName: config.service.name,
    processMetrics: options.processMetrics ?? true,
    warn: (fields, msg) => logger.warn(fields, msg),
  });
  metrics.trackLogDrops(logLinesDropped);
  onPatternEngineFailure((reason) =>
    logger.error(
      { 'warden.detail': reason },
      'RE2 (the pattern engine) cannot run any more: requests reaching an RE2 pattern get 503, /readyz says not ready; restart the sidecar',
    ),
  );
  // What OTLP export drops: on /metrics and in a warning line, which need no collector.
  const telemetryDrops = new TelemetryDrops((fields, msg) => logger.warn(fields, msg));
  metrics.trackTelemetryDrops(telemetryDrops.counts);
  const events = options.events ?? createEventBus();
  events.addSink(pinoEventSink(logger));
  events.addSink(metricsEventSink(metrics));
  const rescue = createRescue({
    events,
    logger,
    realm: config.service.name,
    connections: { closeAfter: closeConnectionAfter, responseTo: (socket, req) => h1ConnectionOf(socket)?.responseTo(req) },
  });
  applyHeapGrowth(config.limits.heap_growth, undefined);
  warnIfUndiciUnpatched(logger);
  // OpenTelemetry: process-wide (global providers); restarted by a reload that changes it.
  // Its identity (service.name, the mesh identity) changes only on restart: a reload passes this one.
  const identity = otelIdentity(config);
  const otel = await startOtelRuntime(config.telemetry.otlp, identity, {
    registry: metrics.registry,
    requestDurations: metrics.requestDurations,
    events,
    drops: telemetryDrops,
  });
  // Where each signal goes (a signal without an endpoint is not exported: otlp-endpoints.ts).
  if (otel.targets) logger.info({ otlp: otel.targets }, 'OTLP export');
  const consoleFeed = createEventFeed(events);
  events.addSink(consoleFeed.sink);

  // The workload identity comes first: without a certificate there is nothing to listen with.
  // Loaded only with mesh: file-mode sidecars skip the X.509 and enrollment code entirely.
  const mesh: MeshIdentity | undefined = config.mesh
    ? await (await import('../mesh/identity.js')).startMeshIdentity(config.mesh, { events, logger })
    : undefined;
  const revocations = mesh?.revocations;
  if (mesh) metrics.trackCertificateExpiry(() => mesh.status().secondsToExpiry);
  if (mesh) metrics.trackCrl(() => mesh.crl());
  const tlsMaterial = (gen: LoadedSidecarConfig): TlsMaterial => {
    if (mesh) return meshTlsMaterial(mesh);
    if (!gen.tls) throw new Error('listeners.inbound.tls has no certificate'); // the loader refuses such files
    return gen.tls;
  };

  // Revoked tokens outlive any one token runtime: a reload that changes `tokens` keeps them.
  const tokenDeps = { events, logger, metrics, selfId: config.mesh?.spiffe_id, denylist: new TokenDenylist() };
  let tokenState = await tokenRuntimeFor(config, undefined, tokenDeps);
  let limitState = await rateLimitRuntimeFor(config, undefined, events);
  let current = compileGeneration(loaded, {
    revocations,
    tokens: tokenState.runtime,
    rateLimits: limitState.runtime,
    refusals: limitState.refusals,
    rateLimitCounters: metrics.rateLimitCounters,
    preflightCounter: metrics.preflightCounter,
    operations: await loadOperations(loaded, (line) => logger.warn(line)),
    events,
  });
  /** The configuration as the last file applied reads (the generation's has the start values of some restart-only settings). */
  let lastRead = config;
  let draining = false;
  // client_crl (file mode): a CRL past its nextUpdate is said once and counted; it stays in force.
  const crlWatch = createClientCrlWatch({ events, logger });
  crlWatch.apply(current.clientCrl);
  let clientCrlGauges = false;
  const trackClientCrl = () => {
    if (mesh || clientCrlGauges || current.clientCrl === undefined) return;
    clientCrlGauges = true; // from the first client_crl on (at start or by a reload): the mesh's gauges, as the two never meet
    metrics.trackCrl(() => ({
      inForce: current.clientCrl !== undefined,
      secondsPastNextUpdate: Math.max(0, current.clientCrl?.secondsPastNextUpdate() ?? 0),
    }));
  };
  trackClientCrl();

  const accessLog = createAccessLog(logger, config.service.name);
  const observe: RequestObserver<SidecarGeneration> = (ctx, status, completed, gen) => {
    const seconds = (performance.now() - ctx.startedAt) / 1000;
    metrics.observeRequest(ctx.route.id, ctx.method, status, seconds);
    // The request's own generation: a reload while it ran (a token header dropped from
    // tokens.sources) wrote its token into the access line in full.
    const log = gen.config.log;
    if (!log.access) return;
    const secret = gen === current ? gen.secretHeader : (name: string) => gen.secretHeader(name) || current.secretHeader(name);
    const headers = log.access_headers ? redactHeaders(ctx.headers, secret) : undefined;
    accessLog(ctx, status, seconds * 1e3, completed, headers);
  };

  const handler = createRequestHandler({
    current: () => current,
    rescue,
    observe,
    tracing: () => otel.tracing,
    skipResponseCheck: (reason) => metrics.countSkippedResponseCheck(reason),
    reportResponse(ctx, status, v) {
      events.emit(
        'warden.response.invalid',
        {
          'warden.action': 'detect',
          'http.route': ctx.route.id,
          'http.request.method': ctx.method,
          'url.path': pathAttribute(ctx.path),
          'http.response.status_code': status,
          'warden.rule': `openapi.response${v.pointer.split('/').slice(0, 2).join('.')}`,
          'warden.detail': `${v.pointer} ${v.message}`.slice(0, 256),
        },
        ctx,
      );
    },
  });
  const inboundCfg = config.listeners.inbound;
  const inbound: InboundListener = await startInboundListener({
    host: inboundCfg.host,
    port: inboundCfg.port,
    tls: inboundTlsSettings(config),
    material: tlsMaterial(loaded),
    limits: config.limits,
    onRequest: handler,
    rescue,
    events,
    peers: { trustDomain: config.mesh ? trustDomainOf(config.mesh.spiffe_id) : undefined, revocations },
  });
  const egress: EgressListener | undefined =
    config.egress && mesh
      ? await startEgressListener(config.egress, { mesh, revocations, rules: () => current.rules, rescue, events, limits: config.limits })
      : undefined;
  mesh?.onChange((what) => {
    // Inbound checks the (already current) revocation list on every request; egress checks a
    // destination at connect time, so its kept-alive connections are re-made on any change.
    if (what !== 'crl') {
      const closed = inbound.setSecureContext(
        inboundTlsSettings(current.config),
        meshTlsMaterial(mesh),
        current.config.lifecycle.drain_timeout,
      );
      if (closed > 0) logger.warn({ connections: closed }, closedByTrustChange(closed, 'the trust bundle'));
    }
    egress?.refresh();
  });
  let adminEndpoints: ReadonlyMap<string, AdminEndpoint> = tokenState.runtime ? tokenAdminEndpoints(tokenState.runtime) : new Map();
  const admin: AdminServer = await startAdminServer({
    host: config.listeners.admin.host,
    port: config.listeners.admin.port,
    hosts: config.listeners.admin.hosts.map((name) => name.toLowerCase()),
    registry: metrics.registry,
    endpoints: () => adminEndpoints,
    rescue,
    console: {
      feed: consoleFeed,
      status: createConsoleStatus({
        registry: metrics.registry,
        service: config.service.name,
        version: WARDEN_VERSION,
        identity: () => mesh?.status(),
      }),
    },
    readiness: [
      { name: 'inbound', check: async () => ({ ok: !draining, ...(draining ? { detail: 'draining' } : {}) }) },
      {
        // Listed only once RE2 cannot be instantiated any more (re2-runtime.ts): every request
        // reaching an RE2 pattern is refused 503, and only a restart brings it back.
        name: 'pattern_engine',
        check: async () => {
          const failure = patternEngineFailure();
          return failure === undefined ? undefined : { ok: false, detail: failure };
        },
      },
      {
        name: 'backend',
        check: async () => {
          const ok = await current.forwarder.probe(1000);
          return ok ? { ok } : { ok, detail: `cannot reach ${current.config.upstream.url}` };
        },
      },
      ...(mesh
        ? [
            {
              name: 'certificate',
              check: async () => {
                const status = mesh.status();
                const state = status.revoked
                  ? `certificate ${status.serial} revoked by the CA`
                  : status.untrusted
                    ? `certificate ${status.serial} does not chain to the trust bundle (its root was removed before it renewed under the new one): no peer accepts it; enroll again with a bootstrap token`
                    : status.stateLockLost !== undefined
                      ? `lost the lock of mesh.state_dir: ${status.stateLockLost}; nothing is saved there any more`
                      : `expires in ${status.secondsToExpiry} s`;
                const detail = `${status.spiffeId} ${state}${status.lastError ? ` (renewal failing: ${status.lastError})` : ''}`;
                const ok =
                  status.secondsToExpiry > 0 && status.revoked !== true && status.untrusted !== true && status.stateLockLost === undefined;
                return { ok, detail };
              },
            },
            {
              // Not ready without a CRL (mesh peers are refused); a stale one is a detail, not a failure:
              // failing readiness everywhere for a CA outage would take the whole mesh down.
              name: 'crl',
              check: async () => ({ ok: mesh.crl().inForce, detail: crlReadiness(mesh.crl(), config.mesh?.ca.url ?? '') }),
            },
          ]
        : [
            {
              // Not a failure past its nextUpdate (the CRL stays in force; every replica failing
              // together because a file was not refreshed would be the outage): a detail, and the gauge.
              name: 'client_crl',
              check: async () => (current.clientCrl ? { ok: true, detail: clientCrlReadiness(current.clientCrl) } : undefined),
            },
          ]),
    ],
  });
  logger.info(
    {
      inbound: `${inbound.address.address}:${inbound.address.port}`,
      admin: `${admin.address.address}:${admin.address.port}`,
      ...(egress ? { egress: `${egress.address.address}:${egress.address.port}` } : {}),
      ...(mesh ? { spiffe_id: mesh.spiffeId } : {}),
      upstream: config.upstream.url,
      // The OpenAPI document's operations when it is configured: config.routes is empty then.
      routes: current.plan.declaredRoutes,
    },
    'warden proxy listening',
  );

  /** Reads and applies the configuration once (Sidecar.reload runs these one after another). */
  let reloads: Promise<unknown> = Promise.resolve();
  async function reloadNow(load: () => LoadedSidecarConfig): Promise<boolean> {
    const file = current.loaded.file;
    let read: LoadedSidecarConfig | undefined;
    let next: SidecarGeneration;
    let nextTokens: typeof tokenState | undefined;
    let nextLimits: typeof limitState | undefined;
    try {
      read = load();
      const nextLoaded = withStartValues(read, config);
      // Building has no effect on what is in force (the key ring is copied, the replay cache's
      // limits wait for putInForce): a reload that fails below leaves everything as it was.
      nextTokens = await tokenRuntimeFor(nextLoaded.config, tokenState, tokenDeps);
      nextLimits = await rateLimitRuntimeFor(nextLoaded.config, limitState, events);
      next = compileGeneration(nextLoaded, {
        revocations,
        tokens: nextTokens.runtime,
        rateLimits: nextLimits.runtime,
        refusals: nextLimits.refusals,
        rateLimitCounters: metrics.rateLimitCounters,
        preflightCounter: metrics.preflightCounter,
        operations: await loadOperations(nextLoaded, (line) => logger.warn(line)),
        events,
      });
    } catch (err) {
      if (nextTokens && nextTokens !== tokenState) void nextTokens.runtime?.close();
      if (nextLimits && nextLimits !== limitState) void nextLimits.runtime.close();
      // A ConfigError's issues are masked already (load.ts); any other error of a file that loaded
      // may name what was substituted into it (red team 28 §3).
      const message = (err as Error).message;
      const detail = err instanceof ConfigError || read === undefined ? withoutUrlCredentials(message) : read.mask(message);
      // One line: a library's message can carry a stack (emscripten's abort did, red team 25).
      events.emit('warden.config.reload_failed', {
        'warden.config.file': file,
        'warden.detail': detail.replace(/\s*\n\s*/g, '; ').slice(0, 2000),
      });
      return false;
    }
    const notApplied = restartOnlyChanges(config, lastRead, read.config);
    if (notApplied.length > 0) {
      logger.warn(
        { 'warden.config.file': file, 'warden.config.restart_only': notApplied },
        `${notApplied.join(', ')} ${notApplied.length === 1 ? 'changes' : 'change'} only on restart: still running with the old value${notApplied.length === 1 ? '' : 's'}`,
      );
    }
    const closed = inbound.setSecureContext(inboundTlsSettings(next.config), tlsMaterial(next.loaded), next.config.lifecycle.drain_timeout);
    if (closed > 0) logger.warn({ connections: closed, 'warden.config.file': file }, closedByTrustChange(closed, 'client_ca'));
    applyHeapGrowth(next.config.limits.heap_growth, current.config.limits.heap_growth);
    logger.level = next.config.log.level;
    if (options.logger === undefined) setLogBufferBytes(next.config.log.buffer_bytes);
    const previous = current;
    const previousTokens = tokenState;
    const previousLimits = limitState;
    current = next;
    lastRead = read.config;
    crlWatch.apply(next.clientCrl);
    trackClientCrl();
    if (nextLimits !== limitState) {
      limitState = nextLimits;
      setTimeout(() => void previousLimits.runtime.close(), previous.config.lifecycle.drain_timeout).unref();
    }
    if (nextTokens !== tokenState) {
      tokenState = nextTokens;
      tokenState.runtime?.putInForce();
      adminEndpoints = tokenState.runtime ? tokenAdminEndpoints(tokenState.runtime) : new Map();
      // In-flight requests may still be in the old runtime's IdP calls: close it after the grace.
      setTimeout(() => void previousTokens.runtime?.close(), previous.config.lifecycle.drain_timeout).unref();
    }
    // Requests in flight hold the old generation (some may still be in a stage, not yet forwarded):
    // its pool closes after the drain grace, and close() itself waits for running requests.
    setTimeout(() => void previous.forwarder.close(), previous.config.lifecycle.drain_timeout).unref();
    const grace = previous.config.lifecycle.drain_timeout;
    const telemetry = await otel.apply(next.config.telemetry.otlp, identity, grace).then(
      (changed) => {
        if (changed && otel.targets) logger.info({ otlp: otel.targets }, 'OTLP export');
        return changed ? '; telemetry restarted' : '';
      },
      (err: unknown) => {
        // Masked as a reload's failure is: the message of a library may quote a URL whole (red team 29 F2).
        const message = next.loaded.mask(err instanceof Error ? err.message : String(err));
        logger.error(
          { err: { type: err instanceof Error ? err.name : typeof err, message } },
          'telemetry could not be restarted with the new settings; export is off until the next reload',
        );
        return '; telemetry could not restart, export is off';
      },
    );
    events.emit('warden.config.reloaded', {
      'warden.config.file': file,
      'warden.detail': `${next.plan.declaredRoutes} ${next.config.openapi ? 'operations' : 'routes'}${telemetry}${closed > 0 ? `; ${closed} connection(s) of a client CA no longer trusted closed` : ''}`,
    });
    return true;
  }

  return {
    inbound: inbound.address,
    admin: admin.address,
    egress: egress?.address,
    mesh,
    get tokens() {
      return tokenState.runtime;
    },
    events,
    logger,
    metrics,
    get current() {
      return current;
    },
    reload(load) {
      // One at a time, in the order asked: a slow reload (an IdP slow to answer its prefetch) must
      // not commit after a later one, leaving the older file in force. Each reads the file when it runs.
      const run = reloads.then(() => reloadNow(load));
      reloads = run.catch(() => undefined);
      return run;
    },
    async drain() {
      if (draining) return;
      draining = true;
      logger.info({ grace_ms: current.config.lifecycle.drain_timeout }, 'draining: no new connections, finishing in-flight requests');
      await inbound.drain(current.config.lifecycle.drain_timeout);
      await current.forwarder.close();
      await egress?.close();
      consoleFeed.close();
      await admin.close();
      await tokenState.runtime?.close();
      await limitState.runtime.close();
      await mesh?.stop();
      crlWatch.stop();
      await otel.shutdown();
      logger.info('drained');
    },
  };
}
