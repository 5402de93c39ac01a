/**
 * compilePlan: configuration → an immutable routing table whose entries are per-route plans (stage
 * list, limits), built once at startup or reload. Nothing on the request path reads config again.
 */
import { METHODS, type IncomingHttpHeaders } from 'node:http';
import FindMyWay from 'find-my-way';
import type {
  AccessConfig,
  MtlsMode,
  PeersConfig,
  RateLimitConfig,
  RouteAuthnConfig,
  RouteConfig,
  ScopesConfig,
  SidecarConfig,
} from '../config/types.js';
import type { TokenRuntime } from '../identity/token-runtime.js';
import { configuredTokenPlaces } from '../config/token-places.js';
import { createAuthnStage } from '../stages/authn.js';
import { createAuthzScopesStage, isScopesNoop, type ScopeAlternatives } from '../stages/authz-scopes.js';
import type { Operation } from '../openapi/operations.js';
import { apiKeyNames, needsNoToken } from '../openapi/security-requirements.js';
import { declaredParamsOf } from '../openapi/path-parameter-names.js';
import { compileRequestValidator } from '../openapi/request-validator.js';
import { compileResponseCheck, type ResponseCheck } from '../openapi/response-validator.js';
import { OpenApiError } from '../openapi/document.js';
import { shownDocument } from '../openapi/shown-document.js';
import { createSchemaCompiler, type SchemaCompiler } from '../openapi/schema-compiler.js';
import { createBodyValidationStage, createParamsValidationStage, type ValidationMode } from '../stages/validate-request.js';
import type { EventBus } from '../telemetry/events.js';
import type { ClamdClient } from '../threats/clamd-client.js';
import { createMalwareScanStage, holdsFieldValues, scansFieldValues } from '../stages/malware-scan.js';
import { createMethodFieldMultipartStage, createMethodFieldStage } from '../stages/method-field.js';
import { isFieldBody } from '../net/media-type.js';
import { patternProblem } from '../net/pattern-form.js';
import { isBacktrackLinear } from '../openapi/backtrack-linear.js';
import {
  createWafBodyStage,
  createWafMultipartStage,
  createWafRequestStage,
  createWafUnheldVerdict,
  inspectedHeaders,
  readsOpeningOf,
  isWafBufferedBody,
  type WafStageOptions,
} from '../stages/waf.js';
import type { WafEngine } from '../threats/waf.js';
import { WAF_RULES } from '../stages/waf-rules/rules.js';

import { createMintTokenStage } from '../stages/mint-token.js';
import { createRateLimitStage, keysNeedPrincipal } from '../stages/rate-limit.js';
import { createFailedAuthnLimit, type FailedAuthnLimit } from '../stages/failed-authn-limit.js';
import type { RateLimitRuntime } from '../traffic/rate-limit-runtime.js';
import { createRefusalMemo, type RefusalMemo } from '../traffic/refusal-memo.js';
import { WardenError } from '../errors.js';
import type { RevocationList } from '../mesh/revocation-list.js';
import { createAccessStage, isAccessNoop } from '../stages/access.js';
import { createPeerAuthzStage } from '../stages/peer-authz.js';
import { createCacheScope } from '../net/cache-scope.js';
import type { RequestContext, RouteInfo, Stage, StreamingStage, Verdict } from './stage.js';
import type { RateLimitCounters } from '../telemetry/metrics.js';
import { preflightMethodOf, type PreflightCredentials } from './preflight.js';

const ALWAYS = () => true;
const NEVER = () => false;

const WAF_RULE_IDS = new Set(WAF_RULES.map((r) => r.id));

export interface RoutePlan extends RouteInfo {
  readonly stages: readonly Stage[];
  /**
   * Stages that run once the body has arrived (body validation, the waf on JSON/form/text, minting
   * last). They see `ctx.body` when `buffersBody` says the body is held in memory for them.
   */
  readonly bodyStages: readonly Stage[];
  /** Stages that see the body while it arrives (malware scan, the waf on multipart); their verdicts come first. */
  readonly bodyObservers: readonly StreamingStage[];
  /** Whether a body of this media type (lower case, no parameters) and method is held whole in memory for the body stages. */
  readonly buffersBody: (mime: string, method: string) => boolean;
  /**
   * On a waf route: the types whose bodies the waf reads only when they open like JSON (octet-stream,
   * images), decided by their first bytes — held for the body stages when they do, streamed
   * otherwise — and the verdict on one that does but is longer than limits.body_memory_bytes.
   */
  readonly jsonOpening?: { readonly types: (mime: string) => boolean; readonly unheld: (ctx: RequestContext) => Verdict } | undefined;
  /** Response validation (report mode): runs on a bounded copy once the response has been sent. */
  readonly responseCheck?: ResponseCheck | undefined;
  readonly maxBodyBytes: number;
  /**
   * Which requests carry a body the backend expects: `declared` (an OpenAPI operation with a
   * requestBody), `none` (one without), `by-method` (a route: any method but those whose content has
   * no defined semantics, RFC 9110 §9.3). Any other body goes on a backend connection not reused.
   */
  readonly body: 'declared' | 'none' | 'by-method';
  /**
   * The router's params under the names the operation declares, on an operation with a path
   * parameter routed under another name (`{user-id}` as `:user_id`, path-parameter-names.ts);
   * undefined on every other route, whose params are the router's as they are.
   */
  readonly declaredParams: ((params: RouteMatch['params']) => RouteMatch['params']) | undefined;
  /**
   * Whether a stage reads the query (the waf, OpenAPI validation, a query token source or API key):
   * only there is a Content-Type charset that a backend would decode the query in refused
   * (net/query-charset.ts); elsewhere the check protected nothing (review1 F3).
   */
  readonly readsQuery: boolean;
  /**
   * On the plan of a CORS preflight (routing.cors_preflight: forward): the route that takes the
   * method it announces, whose path readings it is held to, and its counter. Undefined on every other plan.
   */
  readonly preflight?: { readonly of: RoutePlan; counted(this: void): void } | undefined;
}

export interface RouteMatch {
  readonly route: RoutePlan;
  /** The path parameters, by the names the route declares (an OpenAPI operation's, as in its document). */
  readonly params: Readonly<Record<string, string | undefined>>;
}

export interface Plan {
  /**
   * The route plan for a request, or the refusal (404 / 405) when no route takes it. `preflightFor`:
   * the method an exact CORS preflight announces (`preflightMethod`); under routing.cors_preflight:
   * forward, the preflight plan of the route that takes that method, unless the path has an OPTIONS
   * route of its own (another route than that one).
   */
  resolve(method: string, path: string, preflightFor?: string): RouteMatch | WardenError;
  /** The method an OPTIONS request announces when it is an exact CORS preflight and they are forwarded; else undefined. */
  preflightMethod(headers: IncomingHttpHeaders, search: string): string | undefined;
  /**
   * The declared route `path` names when read case-insensitively, as Express and ASP.NET Core
   * route by default (src/proxy/path-readings.ts); undefined when it names none.
   */
  declaredCaseless(method: string, path: string): RoutePlan | undefined;
  /**
   * Whether a declared pattern spells a literal part in upper case (`/Admin`): then a path in lower
   * case may name it too, case-insensitively, and its case reading is taken as well.
   */
  readonly declaresUpperCase: boolean;
  /** The declared route `path` names as sent; undefined for none, or the passthrough route. */
  declared(method: string, path: string): RoutePlan | undefined;
  /**
   * The declared route `path + "/"` names, when that slash is where a declared pattern ends: the
   * root of a subtree (`/secret` for `/secret/*`) or a pattern with a trailing slash (`/orders/`,
   * `/orders/:id/`), which Express serves without it. Undefined otherwise: for `/pets` beside
   * `/pets/:id`, and for a path that names a route of its own other than by a wildcard (`/orders`
   * declared beside `/orders/*`). Costs one lookup that fails on the first differing character,
   * none when no pattern ends in a slash. `caseless`: read case-insensitively, as `declaredCaseless`.
   */
  declaredWithSlash(method: string, path: string, caseless: boolean): RoutePlan | undefined;
  readonly routes: readonly RoutePlan[];
  /** How many routes the configuration declares (`routes`, or the OpenAPI document's operations). */
  readonly declaredRoutes: number;
  /**
   * Header names whose value this plan reads (lower case): the waf's, and every operation's declared
   * header parameters. Their underscored spellings never reach the backend (headers.ts).
   */
  readonly headersRead: ReadonlySet<string>;
}

/** A configuration problem found while compiling, located by its field path. */
export class PlanError extends Error {
  constructor(
    readonly field: readonly (string | number)[],
    message: string,
  ) {
    super(message);
    this.name = 'PlanError';
  }
}

const UPPER_IN_LITERALS = /[A-Z]/;
/** `:name` parts of a find-my-way pattern (with any `(regex)`): names, not text a path spells. */
const PARAMETER_NAMES = /:[^/]+/g;
/**
 * find-my-way's bound on a parameter's length, set past any path a listener takes (limits.max_header_bytes,
 * at most 1 MiB): a parameter over its bound is no match for that route, and the router went on to
 * the next, so `/orders/<1 025 characters>` fell to a `/*` route (or passthrough) and out of
 * `/orders/:id`'s policy, to a backend with no such bound (docs/adversarial.md 304).
 */
const UNBOUNDED_PARAM = 2 ** 30;
const NO_PARAMS: Readonly<Record<string, string | undefined>> = Object.freeze({});
const ANY_METHOD = '*';
/**
 * What `*` routes: every method but TRACE. A TRACE reaching a backend that echoes it (Apache's
 * default `TraceEnable On`) hands the caller the request as the backend got it — the token Warden
 * minted, X-Forwarded-Client-Cert; nginx refuses TRACE by default too. A route listing TRACE gets it.
 */
const ANY_BUT_TRACE = METHODS.filter((m) => m !== 'TRACE') as FindMyWay.HTTPMethod[];
/** The methods a refused TRACE's Allow header is made of. */
const COMMON_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
/** TRACE where `*` (or the default route) would have taken it. */
const traceRefused = () =>
  new WardenError('ERR_METHOD_NOT_ALLOWED', { headers: { allow: COMMON_METHODS.join(', ') }, rule: 'routing.trace' });

/** What the plan's stages need from outside the configuration (the sidecar's live state). */
export interface PlanDeps {
  /** The CRL in force (mesh); undefined without mesh. */
  revocations?: RevocationList | undefined;
  /** Token translation's live state; required when the configuration has `tokens`. */
  tokens?: TokenRuntime | undefined;
  /** The rate-limit store; required when any route has a rate limit. */
  rateLimits?: RateLimitRuntime | undefined;
  /** A route's rate-limit decision counters (metrics). */
  rateLimitCounters?: ((route: string) => RateLimitCounters) | undefined;
  /** A route's counter of preflights taken under routing.cors_preflight: forward (metrics). */
  preflightCounter?: ((route: string) => () => void) | undefined;
  /** Buckets found empty by failed authentications (failed-authn-limit.ts); one per plan unless given. */
  refusals?: RefusalMemo | undefined;
  /** The OpenAPI document's operations, when `openapi` is configured: they are the routes. */
  operations?: readonly Operation[] | undefined;
  /** For stages that report without refusing (validation in report mode, malware in detect mode). */
  events?: EventBus | undefined;
  /** clamd, when threats.malware is configured. */
  scanner?: ClamdClient | undefined;
  /** A WAF engine without the given rules (cached per set), when threats.waf is configured. */
  wafEngine?: ((excludedRules: ReadonlySet<string>) => WafEngine) | undefined;
}

interface RoutePolicy {
  access: AccessConfig;
  peers: PeersConfig;
  mtls: MtlsMode | undefined;
  authn: Partial<RouteAuthnConfig> | undefined;
  scopes: ScopesConfig | ScopeAlternatives | undefined;
  rateLimit: RateLimitConfig | undefined;
  /** The OpenAPI operation behind the route, and how strictly requests are checked against it. */
  operation?: { op: Operation; mode: ValidationMode } | undefined;
  malwareScan: boolean;
  waf: boolean;
}

function buildStages(
  config: SidecarConfig,
  route: { id: string; methods: readonly string[] },
  policy: RoutePolicy,
  maxBodyBytes: number,
  deps: PlanDeps,
  schemas: SchemaCompiler,
): Pick<RoutePlan, 'stages' | 'bodyStages' | 'bodyObservers' | 'buffersBody' | 'jsonOpening'> &
  CallerDecisions & { preflightStages: Stage[] } {
  const routeId = route.id;
  // Canonical stage order (DESIGN §2): network-level access first, then the caller's identity, the
  // rate limit (before authn, so floods never reach the IdP — unless it is keyed by token
  // identity: then failed authentications are charged to the address, refused before authn once
  // it is out of tokens), the token, its scopes, and the minted token last.
  const stages: Stage[] = [];
  // What a CORS preflight for this route runs: the stages that need no credentials (address,
  // certificate, rate limit, the waf on the head), in the same order; never authn, scopes,
  // validation (the parameters are the announced request's) or minting.
  const preflightStages: Stage[] = [];
  // Whether the answer depends on who the caller is (a stage below decides by address, certificate,
  // token or API key): then its responses are private to shared caches (net/cache-scope.ts).
  let decidesCaller = false;
  if (!isAccessNoop(policy.access)) {
    const access = createAccessStage(policy.access);
    stages.push(access);
    preflightStages.push(access);
    decidesCaller = true;
  }
  const peerPolicy = peerPolicyOf(config, policy);
  if (peerPolicy) {
    const peers = createPeerAuthzStage(peerPolicy, { revocations: deps.revocations });
    stages.push(peers);
    preflightStages.push(peers);
    decidesCaller = true;
  }
  // Whether a stage reads the query: the token from it, an API key in it, validation, the waf (below).
  let readsQuery = false;
  const rateLimit = rateLimitStageOf(config, routeId, policy, deps);
  const limitAfterAuthn = rateLimit !== undefined && config.tokens !== undefined && keysNeedPrincipal(config.rate_limits.key);
  if (rateLimit && !limitAfterAuthn) stages.push(rateLimit);
  // Keyed by token identity, a preflight (no principal) is keyed by its address (keyKindOf).
  if (rateLimit) preflightStages.push(rateLimit);
  if (config.tokens) {
    const runtime = deps.tokens;
    if (!runtime) throw new Error('compilePlan: tokens configured but no token runtime given');
    const authn: RouteAuthnConfig = { ...config.tokens.authn, ...policy.authn };
    const authnStage = createAuthnStage(authn, runtime);
    // Optional authn too: a response to a caller without a token would be served to those with one.
    if (authn.mode !== 'off') decidesCaller = true;
    // With authn off too: the stage still strips a query token source's name (authn.ts), read as UTF-8 (review rt29-3).
    if (config.tokens.sources.some((source) => source.from === 'query')) readsQuery = true;
    if (limitAfterAuthn && authn.mode !== 'off') {
      const failed = failedAuthnLimitOf(config, routeId, policy, deps);
      stages.push(failed.check, failed.charging(authnStage));
    } else stages.push(authnStage);
    if (rateLimit && limitAfterAuthn) stages.push(rateLimit);
    if (!isScopesNoop(policy.scopes, authn.optional || authn.mode === 'off')) {
      stages.push(
        createAuthzScopesStage(policy.scopes as ScopesConfig | ScopeAlternatives, runtime.realm, configuredTokenPlaces(config.tokens)),
      );
      decidesCaller = true;
    }
    if (readsQueryKey(policy.scopes)) readsQuery = true;
  } else if (!isScopesNoop(policy.scopes)) {
    if (readsQueryKey(policy.scopes)) readsQuery = true;
    // Without tokens only operations whose every alternative needs none get here (operationEntries).
    stages.push(createAuthzScopesStage(policy.scopes as ScopeAlternatives, config.service.name));
    decidesCaller = true;
  }
  // Parameters are checked before the body is read; the body only once the caller is authorised.
  const bodyStages: Stage[] = [];
  const bodyObservers: StreamingStage[] = [];
  let buffersBody: (mime: string, method: string) => boolean = NEVER;
  let jsonOpening: RoutePlan['jsonOpening'];
  if (policy.operation && policy.operation.mode !== 'off') {
    const { op, mode } = policy.operation;
    const unknownQuery = config.openapi?.validation.unknown_query ?? 'allow';
    const readOnly = config.openapi?.validation.read_only ?? 'refuse';
    const validator = documentProblem(config, () => compileRequestValidator(op, { unknownQuery, readOnly }, schemas));
    stages.push(createParamsValidationStage(validator, mode, deps.events));
    // Declared parameters, unknown keys, keys a merging backend reads as body properties.
    readsQuery = true;
    if (validator.hasBody || op.requestBody?.required) {
      bodyStages.push(createBodyValidationStage(validator, mode, deps.events));
      buffersBody = ALWAYS;
    }
  }
  const waf = wafOptionsOf(config, routeId, policy, deps);
  if (waf) {
    const wafHead = createWafRequestStage(waf);
    stages.push(wafHead);
    preflightStages.push(wafHead);
    readsQuery = true;
    bodyStages.push(createWafBodyStage(waf));
    bodyObservers.push(createWafMultipartStage(waf, maxBodyBytes));
    if (buffersBody === NEVER) buffersBody = isWafBufferedBody;
    jsonOpening = { types: readsOpeningOf, unheld: createWafUnheldVerdict(waf) };
  }
  const malware = config.threats?.malware;
  if (policy.malwareScan && malware) {
    if (!deps.scanner) throw new Error('compilePlan: malware scanning configured but no scanner given');
    bodyObservers.push(createMalwareScanStage(malware, deps.scanner, deps.events));
    // Form and JSON bodies are scanned value by value once they have arrived: held in memory.
    if (buffersBody !== ALWAYS) {
      const others = buffersBody;
      buffersBody = (mime, method) => others(mime, method) || (holdsFieldValues(mime) && scansFieldValues(malware, mime));
    }
  }
  // First of the body stages: a method override is refused whatever else the route reads. A POST's
  // body on every route (held for it); any other method's where the stages above read it anyway
  // (method-override with `methods: null` applies a PUT's `_method` too; red team 28, F3).
  const posts = route.methods.includes('POST') || route.methods.includes(ANY_METHOD);
  const readsBodies = bodyStages.length > 0 || bodyObservers.length > 0;
  if (config.headers.overrides === 'refuse' && (posts || readsBodies)) {
    bodyStages.unshift(createMethodFieldStage());
    bodyObservers.unshift(createMethodFieldMultipartStage(maxBodyBytes, readsBodies));
    if (posts && buffersBody !== ALWAYS) {
      const others = buffersBody;
      buffersBody = (mime, method) => others(mime, method) || (method === 'POST' && isFieldBody(mime));
    }
  }
  let mintHeader: string | undefined;
  if (config.tokens) {
    const runtime = deps.tokens as TokenRuntime;
    const authn: RouteAuthnConfig = { ...config.tokens.authn, ...policy.authn };
    // Minting is the last step: after the body checks when there are any, so refused bodies cost no signature.
    const last = bodyStages.length > 0 || bodyObservers.length > 0 ? bodyStages : stages;
    if (authn.mode !== 'off' && runtime.minter && runtime.mintHeader) {
      last.push(createMintTokenStage(runtime.minter, runtime.mintHeader));
      mintHeader = runtime.mintHeader.name;
    }
  }
  return { stages, bodyStages, bodyObservers, buffersBody, jsonOpening, decidesCaller, readsQuery, mintHeader, preflightStages };
}

/** An OpenAPI security alternative asks for an API key in the query (authz-scopes.ts reads it). */
function readsQueryKey(scopes: RoutePolicy['scopes']): boolean {
  return scopes !== undefined && 'alternatives' in scopes && scopes.alternatives.some((a) => a.apiKeys.some((key) => key.in === 'query'));
}

interface CallerDecisions {
  /** A stage decides by the caller's address, certificate, token or API key. */
  readonly decidesCaller: boolean;
  /** A stage reads the query (RoutePlan.readsQuery). */
  readonly readsQuery: boolean;
  /** The header the route's minted token goes in (lower case); undefined when it mints none. */
  readonly mintHeader: string | undefined;
}

/** Where a caller's credential may come besides Authorization and Cookie: token sources and OpenAPI API keys. */
function preflightCredentialsOf(config: SidecarConfig, operations: readonly Operation[] = []): PreflightCredentials {
  const places = configuredTokenPlaces(config.tokens);
  return {
    headers: [...(places?.headers ?? []), ...apiKeyNames(operations, 'header')],
    queryNames: [...(places?.query ?? []), ...apiKeyNames(operations, 'query')],
  };
}

/** The request headers a caller's token may come in (lower case): what a cache in front sees of it. */
function tokenHeadersOf(config: SidecarConfig): string[] {
  const names = new Set<string>();
  for (const s of config.tokens?.sources ?? []) {
    if (s.from === 'authorization') names.add('authorization');
    else if (s.from === 'header') names.add(s.name.toLowerCase());
    else if (s.from === 'cookie') names.add('cookie');
  }
  return [...names];
}

/** Exclusions name real rules and routes: a typo must not silently leave a false positive in place. */
function checkWafExclusions(config: SidecarConfig, entries: readonly RouteEntry[]): void {
  const exclusions = config.threats?.waf?.exclusions ?? [];
  const routeIds = new Set(entries.map((e) => e.id));
  exclusions.forEach((exclusion, i) => {
    const field = ['threats', 'waf', 'exclusions', i];
    if (exclusion.route !== undefined && !routeIds.has(exclusion.route))
      throw new PlanError(
        [...field, 'route'],
        `no route or operation "${exclusion.route}"; use one of: ${[...routeIds].join(', ') || '(none)'}`,
      );
    (exclusion.rules ?? []).forEach((rule, j) => {
      if (!WAF_RULE_IDS.has(rule))
        throw new PlanError([...field, 'rules', j], `no waf rule "${rule}"; the rules are listed in docs/threats.md`);
    });
    (exclusion.parameters ?? []).forEach((parameter, j) => {
      // A `#` in a name is `~2` in its path; a `#` here could only be one the waf never writes.
      if (parameter.replace(/#(?:name|text|pi)$/, '').includes('#'))
        throw new PlanError(
          [...field, 'parameters', j],
          `"${parameter.slice(0, 80)}" has a "#" that is not a final #name, #text or #pi; a "#" in a name is written ~2 (as ~ is ~0 and / is ~1)`,
        );
    });
    if (!exclusion.rules?.length && !exclusion.parameters?.length)
      throw new PlanError(field, 'an exclusion needs rules, parameters or both');
  });
}

function wafOptionsOf(config: SidecarConfig, routeId: string, policy: RoutePolicy, deps: PlanDeps): WafStageOptions | undefined {
  const cfg = config.threats?.waf;
  if (!cfg || !policy.waf) return undefined;
  if (!deps.wafEngine) throw new Error('compilePlan: a waf is configured but no engine given');
  const applies = cfg.exclusions.filter((e) => e.route === undefined || e.route === routeId);
  const rules = new Set(applies.filter((e) => !e.parameters?.length).flatMap((e) => e.rules ?? []));
  // A rule excluded for some parameters only: those parameters are not inspected on this route.
  const skippedParameters = applies.flatMap((e) => e.parameters ?? []);
  const declaredHeaders = (policy.operation?.op.parameters ?? []).filter((p) => p.in === 'header').map((p) => p.name);
  return { cfg, engine: deps.wafEngine(rules), skippedParameters, headers: inspectedHeaders(declaredHeaders), events: deps.events };
}

function rateLimitStageOf(config: SidecarConfig, routeId: string, policy: RoutePolicy, deps: PlanDeps): Stage | undefined {
  if (!policy.rateLimit) return undefined;
  if (!deps.rateLimits) throw new Error('compilePlan: a rate limit is configured but no rate-limit store given');
  return createRateLimitStage(
    { routeId, bucket: policy.rateLimit, keys: config.rate_limits.key, counters: deps.rateLimitCounters?.(routeId) },
    deps.rateLimits,
  );
}

function failedAuthnLimitOf(config: SidecarConfig, routeId: string, policy: RoutePolicy, deps: PlanDeps): FailedAuthnLimit {
  const bucket = policy.rateLimit as RateLimitConfig;
  const cfg = { routeId, bucket, keys: config.rate_limits.key, counters: deps.rateLimitCounters?.(routeId) };
  return createFailedAuthnLimit(cfg, deps.rateLimits as RateLimitRuntime, deps.refusals as RefusalMemo);
}

/**
 * With mesh, every route checks the caller's certificate (required unless the route says
 * `mtls: optional`). Without mesh, routes with a `peers.allow` list do, and so do operations that
 * accept a `mutualTLS` scheme: there a certificate is optional (the scheme is one alternative, its
 * check authz-scopes'), but one presented must be valid, and the backend, whose business
 * fine-grained authorization is, is told who called (X-Forwarded-Client-Cert); it was not. A
 * `peers.allow` list always requires a certificate (peer-authz.ts): without one the caller is not
 * on any list.
 */
function peerPolicyOf(config: SidecarConfig, policy: RoutePolicy) {
  const allow = policy.peers.allow;
  if (config.mesh) return { mtls: policy.mtls ?? config.mesh.mtls, allow, ownId: config.mesh.spiffe_id };
  if (allow.length > 0) return { mtls: 'require' as const, allow, ownId: undefined };
  const scopes = policy.scopes;
  if (scopes !== undefined && 'alternatives' in scopes && scopes.alternatives.some((a) => a.peer))
    return { mtls: 'optional' as const, allow, ownId: undefined };
  return undefined;
}

/** A schema of the document that cannot be used (OpenApiError) as a PlanError on `openapi.document`, with the document and the pointer. */
function documentProblem<T>(config: SidecarConfig, compile: () => T): T {
  try {
    return compile();
  } catch (err) {
    if (err instanceof OpenApiError)
      throw new PlanError(['openapi', 'document'], err.describeIn(shownDocument(config.openapi?.document ?? '')));
    throw err;
  }
}

function routePlan(
  route: { id: string; methods: readonly string[] },
  config: SidecarConfig,
  policy: RoutePolicy,
  maxBodyBytes: number,
  deps: PlanDeps,
  schemas: SchemaCompiler,
  preflights: Map<RoutePlan, RoutePlan> | undefined,
): RoutePlan {
  const { id } = route;
  const { stages, bodyStages, bodyObservers, buffersBody, jsonOpening, decidesCaller, readsQuery, mintHeader, preflightStages } =
    buildStages(config, route, policy, maxBodyBytes, deps, schemas);
  const op = policy.operation?.op;
  const responseCheck =
    op && config.openapi?.validation.responses === 'report' ? documentProblem(config, () => compileResponseCheck(op, schemas)) : undefined;
  const plan: RoutePlan = Object.freeze({
    id,
    idJson: JSON.stringify(id),
    stages: Object.freeze(stages),
    bodyStages: Object.freeze(bodyStages),
    bodyObservers: Object.freeze(bodyObservers),
    buffersBody,
    jsonOpening,
    maxBodyBytes,
    responseCheck,
    cacheScope: decidesCaller ? createCacheScope({ mintHeader, tokenHeaders: tokenHeadersOf(config) }) : undefined,
    body: op === undefined ? 'by-method' : op.requestBody !== undefined ? 'declared' : 'none',
    declaredParams: op?.routedNames === undefined ? undefined : declaredParamsOf(op.routedNames),
    readsQuery,
  });
  preflights?.set(plan, preflightPlan(plan, preflightStages, deps));
  return plan;
}

/**
 * The plan a CORS preflight for `of` runs under (routing.cors_preflight: forward): its stages that
 * need no credentials, no body (one is refused before routing goes on: handler.ts), nothing
 * validated or minted. Under the route's id: its access line and durations are the route's, as OPTIONS.
 */
function preflightPlan(of: RoutePlan, stages: readonly Stage[], deps: PlanDeps): RoutePlan {
  const counted = deps.preflightCounter?.(of.id) ?? (() => undefined);
  return Object.freeze({
    id: of.id,
    idJson: of.idJson,
    stages: Object.freeze([...stages]),
    bodyStages: Object.freeze([]),
    bodyObservers: Object.freeze([]),
    buffersBody: NEVER,
    jsonOpening: undefined,
    maxBodyBytes: 0,
    responseCheck: undefined,
    // Responses to OPTIONS are not cacheable (RFC 9110 §9.3.7), and a preflight carries no credentials.
    cacheScope: undefined,
    body: 'none',
    declaredParams: of.declaredParams,
    // Of its own stages only the waf on the head reads the query (not the route's validation or
    // token sources, which a preflight does not run).
    readsQuery: stages.some((stage) => stage.id === 'waf'),
    preflight: Object.freeze({ of, counted }),
  });
}

export function compilePlan(config: SidecarConfig, given: PlanDeps = {}): Plan {
  const deps: PlanDeps = { ...given, refusals: given.refusals ?? createRefusalMemo(config.rate_limits.max_keys) };
  // This plan's ajv instances: its validators are collected with it once it is replaced and drained.
  const schemas = createSchemaCompiler();
  const globalPolicy: RoutePolicy = {
    access: config.access,
    peers: config.peers,
    mtls: undefined,
    authn: undefined,
    scopes: undefined,
    rateLimit: config.rate_limits.default,
    malwareScan: false,
    waf: true,
  };
  // The preflight plan of each route, under routing.cors_preflight: forward.
  const preflights = config.routing.cors_preflight === 'forward' ? new Map<RoutePlan, RoutePlan>() : undefined;
  const defaultRoute = routePlan(
    { id: '_default', methods: [ANY_METHOD] },
    config,
    globalPolicy,
    config.limits.max_body_bytes,
    deps,
    schemas,
    preflights,
  );
  const credentials = preflightCredentialsOf(config, deps.operations);
  const preflightMethod = (headers: IncomingHttpHeaders, search: string) =>
    preflights === undefined ? undefined : preflightMethodOf(headers, search, credentials);
  const routes: RoutePlan[] = [];

  const entries = deps.operations ? operationEntries(config, deps.operations) : configEntries(config);
  checkWafExclusions(config, entries);
  const headersRead = new Set(
    inspectedHeaders((deps.operations ?? []).flatMap((op) => op.parameters.filter((p) => p.in === 'header').map((p) => p.name))),
  );
  if (entries.length === 0) {
    const match: RouteMatch = Object.freeze({ route: defaultRoute, params: NO_PARAMS });
    // Every method but TRACE is the default route's: so are preflights for them.
    const preflightMatch: RouteMatch | undefined =
      preflights && Object.freeze({ route: preflights.get(defaultRoute) as RoutePlan, params: NO_PARAMS });
    const none = () => undefined;
    return {
      resolve: (method, _path, preflightFor) =>
        method === 'TRACE'
          ? traceRefused()
          : preflightMatch && preflightFor !== undefined && preflightFor !== 'TRACE'
            ? preflightMatch
            : match,
      preflightMethod,
      declared: none,
      declaredCaseless: none,
      declaredWithSlash: none,
      declaresUpperCase: false,
      routes: [defaultRoute],
      declaredRoutes: 0,
      headersRead,
    };
  }

  const router = FindMyWay({ caseSensitive: true, ignoreTrailingSlash: false, maxParamLength: UNBOUNDED_PARAM });
  const caseless = FindMyWay({ caseSensitive: false, ignoreTrailingSlash: false, maxParamLength: UNBOUNDED_PARAM });
  // The patterns that end in a slash, without it ("/secret/*" → "/secret", "/orders/:id/" →
  // "/orders/:id"): which paths `declaredWithSlash` looks up. Any method; the routers above decide.
  const slashRoots = FindMyWay({ caseSensitive: true, ignoreTrailingSlash: false, maxParamLength: UNBOUNDED_PARAM });
  const slashRootsCaseless = FindMyWay({ caseSensitive: false, ignoreTrailingSlash: false, maxParamLength: UNBOUNDED_PARAM });
  let hasSlashRoots = false;
  let declaresUpperCase = false;
  const declaredMethods = new Set<string>();
  const headFollowsGet: [RouteEntry, RoutePlan][] = [];
  const shapes = new Map<string, { entry: RouteEntry; path: string }>();
  for (const entry of entries) {
    const plan = routePlan(entry, config, entry.policy, entry.maxBodyBytes ?? config.limits.max_body_bytes, deps, schemas, preflights);
    routes.push(plan);
    for (const path of entry.paths) {
      claimShape(shapes, entry, path);
      register(router, { path, methods: entry.methods }, plan, entry.field);
      registerCaseless(caseless, { path, methods: entry.methods }, plan, entry.field);
      if (UPPER_IN_LITERALS.test(path.replace(PARAMETER_NAMES, ''))) declaresUpperCase = true;
      const root = slashRootOf(path);
      if (root !== undefined) {
        hasSlashRoots = true;
        for (const r of [slashRoots, slashRootsCaseless]) registerSlashRoot(r, root);
      }
    }
    for (const m of entry.methods) declaredMethods.add(m);
    if (entry.methods.includes('GET')) declaredMethods.add('HEAD');
    if (entry.methods.includes('GET') && !entry.methods.includes('HEAD')) headFollowsGet.push([entry, plan]);
  }
  // HEAD is GET without a body (RFC 9110 §9.3.2): a route that allows GET allows HEAD too, unless its
  // path has a HEAD route of its own (an OpenAPI `head` operation), registered above so it wins.
  for (const [entry, plan] of headFollowsGet) {
    for (const path of entry.paths) {
      if (!router.hasRoute('HEAD', path)) register(router, { path, methods: ['HEAD'] }, plan, entry.field);
      if (!caseless.hasRoute('HEAD', path)) registerCaseless(caseless, { path, methods: ['HEAD'] }, plan, entry.field);
    }
  }
  router.compile();
  caseless.compile();
  slashRoots.compile();
  slashRootsCaseless.compile();
  const declaredIn = (r: typeof router, method: string, path: string) =>
    (r.find(method as FindMyWay.HTTPMethod, path)?.store ?? undefined) as RoutePlan | undefined;

  const passthrough = config.routing.unmatched === 'passthrough';
  const methods = [...declaredMethods].filter((m) => m !== ANY_METHOD);
  /**
   * A preflight's match: the preflight plan of the route that would take the request it announces
   * (the default route's under passthrough), unless the path's OPTIONS route is another one (an
   * OpenAPI `options` operation, a route listing OPTIONS): the operator declared what OPTIONS is there.
   */
  const preflightOf = (asked: string, path: string, own: ReturnType<typeof router.find>): RouteMatch | undefined => {
    const found = router.find(asked as FindMyWay.HTTPMethod, path);
    // The default route only for a path no route declares: a declared path's preflight for a method
    // it lacks (`get`, `BREW`) took the default route's stages over its own (review rt29-3).
    const route =
      found !== null
        ? (found.store as RoutePlan)
        : passthrough && asked !== 'TRACE' && !methods.some((m) => router.find(m as FindMyWay.HTTPMethod, path) !== null)
          ? defaultRoute
          : undefined;
    if (route === undefined || (own !== null && own.store !== route)) return undefined;
    const params = found === null ? NO_PARAMS : route.declaredParams === undefined ? found.params : route.declaredParams(found.params);
    return { route: (preflights as Map<RoutePlan, RoutePlan>).get(route) as RoutePlan, params };
  };

  return {
    routes: passthrough ? [...routes, defaultRoute] : routes,
    declaredRoutes: entries.length,
    headersRead,
    declared: (method, path) => declaredIn(router, method, path),
    declaredCaseless: (method, path) => declaredIn(caseless, method, path),
    declaresUpperCase,
    declaredWithSlash(method, path, folded) {
      if (!hasSlashRoots || path.length < 2 || (folded ? slashRootsCaseless : slashRoots).find('GET', path) === null) return undefined;
      const r = folded ? caseless : router;
      const own = r.find(method as FindMyWay.HTTPMethod, path);
      if (own !== null && own.params['*'] === undefined) return undefined; // a route of its own, not a wildcard's
      return declaredIn(r, method, path + '/');
    },
    preflightMethod,
    resolve(method, path, preflightFor) {
      const found = router.find(method as FindMyWay.HTTPMethod, path);
      if (preflightFor !== undefined && preflights !== undefined) {
        const preflight = preflightOf(preflightFor, path, found);
        if (preflight !== undefined) return preflight;
      }
      if (found) {
        const route = found.store as RoutePlan;
        return { route, params: route.declaredParams === undefined ? found.params : route.declaredParams(found.params) };
      }
      if (passthrough && method !== 'TRACE') return { route: defaultRoute, params: NO_PARAMS };
      if (passthrough) return traceRefused();
      const candidates = method === 'TRACE' ? COMMON_METHODS : methods;
      const allowed = candidates.filter((m) => m !== method && router.find(m as FindMyWay.HTTPMethod, path) !== null);
      if (allowed.length > 0) {
        const rule = method === 'TRACE' ? 'routing.trace' : 'routing.methods';
        return new WardenError('ERR_METHOD_NOT_ALLOWED', { headers: { allow: allowed.join(', ') }, rule });
      }
      return new WardenError('ERR_ROUTE_NOT_FOUND', { rule: 'routing.unmatched' });
    },
  };
}

interface RouteEntry {
  id: string;
  paths: string[];
  methods: string[];
  policy: RoutePolicy;
  maxBodyBytes: number | undefined;
  /** Where the route is declared, for errors. */
  field: (string | number)[];
}

type RouteSettings = Omit<RouteConfig, 'id' | 'path' | 'methods'>;
type OperationSettings = RouteSettings & { validation?: ValidationMode };

function policyOf(config: SidecarConfig, route: RouteSettings): RoutePolicy {
  return {
    access: route.access ?? config.access,
    peers: route.peers ?? config.peers,
    mtls: route.mtls,
    authn: route.authn,
    scopes: route.scopes,
    rateLimit: route.rate_limit === false ? undefined : (route.rate_limit ?? config.rate_limits.default),
    malwareScan: route.malware_scan === true,
    waf: route.waf !== false,
  };
}

function configEntries(config: SidecarConfig): RouteEntry[] {
  return config.routes.map((route, index) => {
    // A pattern requests never match (`/files/my%20docs/*`, `/internal//*`) passed and protected nothing.
    const problem = patternProblem(route.path, 'route', isBacktrackLinear);
    if (problem !== undefined) throw new PlanError(['routes', index, 'path'], problem);
    return {
      id: route.id,
      paths: [route.path],
      methods: route.methods,
      policy: policyOf(config, route),
      maxBodyBytes: route.limits?.max_body_bytes,
      field: ['routes', index, 'path'],
    };
  });
}

/**
 * Routes from the OpenAPI document: its security requirements become the scopes (unless
 * openapi.operations overrides them), `x-warden-rate-limit` the bucket. An operation the document
 * declares public needs no token only when openapi.allow_public says so; otherwise it gets the
 * default authn like any other.
 */
function operationEntries(config: SidecarConfig, operations: readonly Operation[]): RouteEntry[] {
  const settings = config.openapi?.operations ?? {};
  const known = new Set(operations.map((o) => o.id));
  for (const id of Object.keys(settings)) {
    if (!known.has(id))
      throw new PlanError(
        ['openapi', 'operations', id],
        `names no operation of the document (operationIds: ${[...known].slice(0, 20).join(', ')})`,
      );
  }
  return operations.map((op) => {
    const own: OperationSettings = settings[op.id] ?? {};
    const policy = policyOf(config, { ...own, rate_limit: own.rate_limit ?? op.rateLimit });
    const isPublic = op.security !== undefined && op.security.length === 0;
    // Alternatives met by an API key or a client certificate alone need no tokens section.
    if (op.security !== undefined && !isPublic && !config.tokens && !op.security.every(needsNoToken)) {
      throw new PlanError(['openapi', 'document'], `${op.pointer} requires security, so a tokens section is needed to check it`);
    }
    // Public by the document, unless the operator's own scopes replace its requirement (they need a caller).
    if (isPublic && config.openapi?.allow_public && own.authn === undefined && own.scopes === undefined) policy.authn = { mode: 'off' };
    if (own.scopes === undefined && op.security && op.security.length > 0) {
      policy.scopes = { alternatives: op.security };
      // An alternative met without a bearer token (an API key, a client certificate) makes the token
      // optional here: one sent is still verified, and authz-scopes holds each alternative to all it
      // names. Before, such a caller got 401 ERR_AUTHN_TOKEN_MISSING unless the operator set
      // authn.optional for the operation (docs/adversarial.md 217).
      if (own.authn === undefined && op.security.some(needsNoToken)) policy.authn = { optional: true };
      // Authn off where the document needs a token: no principal, so the requirement was either
      // skipped (`[{bearer: []}]` served anyone) or unmeetable (401 to every caller).
      const mode = own.authn?.mode ?? config.tokens?.authn.mode;
      if (mode === 'off' && op.security.every((a) => a.token))
        throw new PlanError(
          own.authn?.mode === 'off' ? ['openapi', 'operations', op.id, 'authn', 'mode'] : ['tokens', 'authn', 'mode'],
          `is "off", but ${op.pointer} requires a token (its security): leave authn on for it, or make the operation public in the document (security: []) with openapi.allow_public`,
        );
    }
    policy.operation = { op, mode: own.validation ?? config.openapi?.validation.mode ?? 'enforce' };
    return {
      id: op.id,
      paths: [...op.paths],
      methods: [op.method],
      policy,
      maxBodyBytes: own.limits?.max_body_bytes,
      field: ['openapi', 'document'],
    };
  });
}

/**
 * Refuses a route whose pattern differs from an earlier one only in its parameters' names (`/a/:id`
 * and `/a/:name`) for a method both take, naming that route: the router's own refusal ("already
 * declares '/a/:' with constraints '{}'") named neither.
 */
function claimShape(shapes: Map<string, { entry: RouteEntry; path: string }>, entry: RouteEntry, path: string): void {
  // `::` is a literal colon to the router (src/openapi/operations.ts), not a parameter.
  const shape = path.replace(/(?<!:):[A-Za-z0-9_]+/g, ':');
  const methods = entry.methods.includes(ANY_METHOD) ? [ANY_METHOD] : entry.methods;
  for (const method of methods) {
    const other =
      method === ANY_METHOD
        ? [...shapes.entries()].find(([key]) => key.endsWith(` ${shape}`))?.[1]
        : (shapes.get(`${method} ${shape}`) ?? shapes.get(`${ANY_METHOD} ${shape}`));
    if (other !== undefined && other.entry !== entry) {
      const named =
        other.entry.field[0] === 'routes'
          ? `routes[${String(other.entry.field[1])}] (id ${other.entry.id})`
          : `operation ${other.entry.id}`;
      throw new PlanError(
        entry.field,
        `cannot route "${path}": ${named} already takes ${method === ANY_METHOD ? 'its methods' : method} on ${other.path === path ? 'the same path' : `"${other.path}" (patterns that differ only in parameter names are the same route)`}`,
      );
    }
    shapes.set(`${method} ${shape}`, { entry, path });
  }
}

function register(
  router: FindMyWay.Instance<FindMyWay.HTTPVersion.V1>,
  route: { path: string; methods: readonly string[] },
  plan: RoutePlan,
  field: (string | number)[],
): void {
  const handler = () => undefined;
  try {
    if (route.methods.includes(ANY_METHOD)) router.on(ANY_BUT_TRACE, route.path, handler, plan);
    else router.on(route.methods as FindMyWay.HTTPMethod[], route.path, handler, plan);
  } catch (err) {
    const reason = (err as Error).message.replace(/^Method '.*' already declared for route /, 'another route already declares ');
    throw new PlanError(field, `cannot route "${route.path}": ${reason}`);
  }
}

/** A pattern's path without the slash it ends in ("/secret/*" → "/secret"); undefined for none, and for the root. */
function slashRootOf(path: string): string | undefined {
  const end = path.endsWith('/*') ? path.length - 2 : path.endsWith('/') ? path.length - 1 : -1;
  return end > 0 ? path.slice(0, end) : undefined;
}

/** Patterns of one shape (`/a/:x`, `/A/:y`) are one root: the first stands for them. */
function registerSlashRoot(roots: FindMyWay.Instance<FindMyWay.HTTPVersion.V1>, root: string): void {
  try {
    if (!roots.hasRoute('GET', root)) roots.on('GET', root, () => undefined);
  } catch {
    /* declared again in another spelling */
  }
}

/** Routes that differ only in case are one route to a case-insensitive backend: the first stands for them. */
function registerCaseless(
  caseless: FindMyWay.Instance<FindMyWay.HTTPVersion.V1>,
  route: { path: string; methods: readonly string[] },
  plan: RoutePlan,
  field: (string | number)[],
): void {
  try {
    register(caseless, route, plan, field);
  } catch {
    /* declared again in another case */
  }
}
