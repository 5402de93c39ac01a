/**
 * The security event catalogue (DESIGN §5) and the bus that fans each event out to its sinks
 * (pino line, Prometheus counter; OpenTelemetry log record and span event join in the telemetry issue).
 *
 * An event never carries a token, a secret or a full body: attributes are names, ids, codes and
 * truncated values only — emit cuts every string to its bound (attribute-limits.ts).
 */
import type { Context } from '@opentelemetry/api';
import { boundEventAttributes } from './attribute-limits.js';

export type Severity = 'debug' | 'info' | 'warn' | 'error';

interface EventSpec {
  readonly severity: Severity;
  readonly description: string;
}

export const EVENTS = {
  'warden.http.malformed': {
    severity: 'warn',
    description: 'A request the HTTP parser or header checks refused (invalid characters, obs-fold, bad framing).',
  },
  'warden.http.smuggling': {
    severity: 'warn',
    description:
      'A request with ambiguous framing (Content-Length with Transfer-Encoding, duplicate lengths, unsupported codings) was refused.',
  },
  'warden.http.path_invalid': {
    severity: 'warn',
    description: 'A request path that cannot be normalised safely (encoded slash, NUL, dot-segments above the root).',
  },
  'warden.http.limit_exceeded': {
    severity: 'warn',
    description: 'A request exceeded a configured limit (header size or count, body size, a timeout).',
  },
  'warden.route.unknown': { severity: 'info', description: 'A request for a path or method no route declares.' },
  'warden.access.denied': {
    severity: 'warn',
    description:
      'A request was refused by who or where it came from: the access stage (route denied, client address not allowed), or the admin or egress listener (a Host it does not serve, a browser request).',
  },
  'warden.upstream.failed': { severity: 'error', description: 'The backend could not be reached or did not answer in time.' },
  'warden.tls.handshake_failed': {
    severity: 'info',
    description: 'A TLS handshake on the inbound listener failed (no, expired, untrusted or revoked client certificate; protocol error).',
  },
  'warden.tls.handshake_throttled': {
    severity: 'warn',
    description:
      'A client network that failed too many TLS handshakes (limits.handshake_failures) had new connections closed before the handshake; raised once per throttled period, when it ends, with how many were closed (`warden.count`).',
  },
  'warden.tls.peer_revoked': { severity: 'warn', description: 'A caller presented a certificate that the current CRL lists as revoked.' },
  'warden.tls.client_crl_stale': {
    severity: 'error',
    description:
      'A CRL of listeners.inbound.tls.client_crl passed its nextUpdate and the file was not replaced; it stays in force (the certificates it lists are still refused).',
  },
  'warden.tls.peer_denied': {
    severity: 'warn',
    description: 'A caller was refused for its identity: no or untrusted client certificate, or a SPIFFE ID the route does not allow.',
  },
  'warden.authn.token_missing': { severity: 'info', description: 'A route that requires a token got a request without one.' },
  'warden.authn.token_malformed': {
    severity: 'warn',
    description: 'Credentials that cannot be a bearer token: wrong scheme, bad characters, several tokens at once, oversized.',
  },
  'warden.authn.token_invalid': {
    severity: 'warn',
    description:
      'A token that failed validation: bad signature, unknown key, disallowed algorithm or header, wrong issuer, audience or type, not yet valid.',
  },
  'warden.authn.token_inactive': {
    severity: 'warn',
    description: 'The identity provider answered `active: false` (revoked, unknown or expired at the IdP), or the token is known revoked.',
  },
  'warden.authn.token_expired': { severity: 'info', description: 'A token whose `exp` has passed (beyond the configured leeway).' },
  'warden.authn.token_unbound': {
    severity: 'warn',
    description:
      'A sender-constrained token (cnf: a DPoP key, RFC 9449, or a client certificate, RFC 8705) whose binding was not proven: sent as a bearer token, on a connection without its certificate, with a proof of another key, or with a cnf the sidecar cannot check.',
  },
  'warden.authn.dpop_invalid': {
    severity: 'warn',
    description:
      'A DPoP proof (RFC 9449) that failed its checks: missing, malformed, typ, alg, jwk, signature, htm, htu, iat, ath, or replayed.',
  },
  'warden.authn.idp_unavailable': {
    severity: 'error',
    description:
      'The identity provider could not be asked (unreachable, 5xx, timeout, circuit open, no keys yet): the request got 503, not 401.',
  },
  'warden.authz.scope_missing': {
    severity: 'warn',
    description: 'A valid token without the scopes the route requires (403 insufficient_scope).',
  },
  'warden.token.minted': {
    severity: 'debug',
    description: 'The sidecar minted an internal token for the backend (a cache miss: one per source token and caller, not per request).',
  },
  'warden.token.revoked': {
    severity: 'info',
    description: 'A token was marked revoked through the admin API or learnt inactive, and (with shared state) published to all replicas.',
  },
  'warden.token.revocation_unshared': {
    severity: 'error',
    description:
      'A token revoked through this replica could not be written to the shared token state (Redis down, out of memory, read-only): only this replica refuses it until a write-back (every `tokens.shared.write_back`) stores it.',
  },
  'warden.token.revocation_refused': {
    severity: 'error',
    description:
      'A revocation through POST /tokens/revoke was refused (ERR_REVOCATIONS_FULL): the sidecar already holds 100 000 revoked tokens whose end has not come (it never drops one early). The token is not revoked here; revoke it at its IdP.',
  },
  'warden.token.shared_rejected': {
    severity: 'error',
    description:
      "Entries in the shared token state (Redis) without this service's tag were ignored: a forged or another service's introspection answer, revocation mark or message (`warden.rule`), `warden.count` of them. Raised at most once per 10 s.",
  },
  'warden.input.invalid': {
    severity: 'info',
    description:
      'A request that does not match the OpenAPI description (parameters, body, media type): refused with 400/415 (enforce) or reported and forwarded (report).',
  },
  'warden.response.invalid': {
    severity: 'warn',
    description:
      'A backend response that does not match the OpenAPI description (status, media type or JSON body); reported only, the response was sent unchanged.',
  },
  'warden.input.sqli': {
    severity: 'warn',
    description: 'The waf stage found SQL injection (`warden.rule` = rule id, `warden.detail` = the parameter path, never the value).',
  },
  'warden.input.xss': { severity: 'warn', description: 'The waf stage found cross-site scripting (rule id and parameter path).' },
  'warden.input.traversal': {
    severity: 'warn',
    description: 'The waf stage found path traversal or a local-file path (rule id and parameter path).',
  },
  'warden.input.cmdi': { severity: 'warn', description: 'The waf stage found OS command injection (rule id and parameter path).' },
  'warden.input.ssrf': {
    severity: 'warn',
    description: 'The waf stage found an SSRF-style URL: internal address, metadata service, non-web scheme (rule id and parameter path).',
  },
  'warden.input.nosqli': { severity: 'warn', description: 'The waf stage found NoSQL operator injection (rule id and parameter path).' },
  'warden.input.xxe': {
    severity: 'warn',
    description:
      'An XML body declares a document type with an internal subset or an external identifier (XXE, entity expansion; rule waf.xml_doctype): refused (block) or reported (detect).',
  },
  'warden.input.prototype_pollution': {
    severity: 'warn',
    description:
      'The waf stage found a key path into a JavaScript prototype: `__proto__`, `constructor.prototype` (rule id and parameter path).',
  },
  'warden.input.malware': {
    severity: 'error',
    description:
      'clamd found malware in an upload (`warden.rule` = clamd:<signature>, `warden.detail` = the part), or could not scan it whole (rule malware.limits): refused (block) or forwarded (detect).',
  },
  'warden.scanner.unavailable': {
    severity: 'error',
    description:
      'clamd could not scan an upload (unreachable, connection lost, timeout, overloaded): refused (fail-closed; fail-open too, except unreachable) or forwarded unscanned (fail-open, clamd unreachable).',
  },
  'warden.traffic.rate_limited': {
    severity: 'info',
    description:
      'A request over its rate limit (client × route), or a DPoP proof past its caller’s share of the replay cache (dpop.replay_share), was refused with 429.',
  },
  'warden.traffic.shed': {
    severity: 'warn',
    description:
      'A request was refused with 503 because limits.max_in_flight requests were already in the sidecar, its body did not fit in limits.max_buffered_bytes or a full limits.spool_dir, or the DPoP replay cache was full (rule dpop.replay_cache) (load shedding); or the admin console had no event-feed place left (rule console.clients).',
  },
  'warden.ratelimit.store_unavailable': {
    severity: 'error',
    description:
      'The shared rate-limit store (Redis) could not be asked: per policy the request was refused (fail-closed) or limited locally (fail-open). Raised at most once per 10 s per sidecar in fail-open mode.',
  },
  'warden.ca.enrolled': { severity: 'info', description: 'The CA issued a first certificate to a workload against a bootstrap token.' },
  'warden.ca.renewed': {
    severity: 'info',
    description: 'The CA issued a renewed certificate to a workload authenticated by its current one.',
  },
  'warden.ca.revoked': { severity: 'warn', description: 'Certificates were revoked (by serial or by identity).' },
  'warden.ca.token_created': { severity: 'info', description: 'A bootstrap token was created for a SPIFFE ID.' },
  'warden.ca.token_revoked': {
    severity: 'warn',
    description: 'Unused bootstrap tokens were revoked (one by id, or every one of a SPIFFE ID, also by revoking the identity).',
  },
  'warden.ca.token_rejected': {
    severity: 'warn',
    description:
      'An enrollment was refused for its bootstrap token: unknown or forged, already used, expired, or bound to another identity.',
  },
  'warden.ca.csr_rejected': {
    severity: 'warn',
    description: 'An enrollment or renewal was refused for its CSR (signature, key type, names).',
  },
  'warden.ca.database_restored': {
    severity: 'error',
    description:
      'The CA started on a database older than what it had published (a restored backup), accepted with --accept-restored-database: revocations and token revocations made after that copy are lost until made again.',
  },
  'warden.ca.auth_failed': {
    severity: 'warn',
    description: 'A CA API call that needs a client certificate came without a valid one (missing, revoked, not an administrator).',
  },
  'warden.mesh.enrolled': { severity: 'info', description: 'This sidecar obtained its first workload certificate from the CA.' },
  'warden.mesh.rotated': {
    severity: 'info',
    description: 'This sidecar renewed its workload certificate and serves new handshakes with it; open connections are untouched.',
  },
  'warden.mesh.renewal_failed': {
    severity: 'warn',
    description: 'A renewal attempt failed (CA down or refusing); the current certificate stays in use and the next attempt is scheduled.',
  },
  'warden.mesh.cert_expiring': {
    severity: 'error',
    description: 'The workload certificate is close to expiry and could not be renewed.',
  },
  'warden.mesh.trust_updated': { severity: 'info', description: 'A new trust bundle or CRL was fetched from the CA and applied.' },
  'warden.mesh.crl_unavailable': {
    severity: 'error',
    description:
      'No CRL is in force (none in mesh.state_dir or a damaged one, and none could be fetched): requests from mesh peers are refused with 503 until one is.',
  },
  'warden.mesh.crl_stale': {
    severity: 'error',
    description:
      'The CRL in force passed its nextUpdate and no newer one could be fetched; it stays in force (known-revoked peers are still refused).',
  },
  'warden.mesh.dns_names_ignored': {
    severity: 'warn',
    description:
      'mesh.dns_names differs from the certificate in mesh.state_dir and no bootstrap token enrolled the new names; the current names are kept.',
  },
  'warden.config.reloaded': { severity: 'info', description: 'A new configuration was loaded and is now in force.' },
  'warden.config.reload_failed': {
    severity: 'error',
    description: 'A configuration reload was refused; the previous configuration stays in force.',
  },
} as const satisfies Record<string, EventSpec>;

export type EventName = keyof typeof EVENTS;

/** Attribute names follow OpenTelemetry semantic conventions, plus `warden.*` ones. */
export interface EventAttributes {
  'http.request.method'?: string;
  'http.route'?: string;
  'http.response.status_code'?: number;
  'url.path'?: string;
  'client.address'?: string;
  'user_agent.original'?: string;
  'network.protocol.version'?: string;
  'enduser.id'?: string;
  'error.type'?: string;
  'warden.request.id'?: string;
  'warden.peer.id'?: string;
  'warden.peer.presented_id'?: string;
  'warden.action'?: 'block' | 'detect';
  'warden.rule'?: string;
  'warden.code'?: string;
  'warden.detail'?: string;
  'warden.config.file'?: string;
  'warden.spiffe.id'?: string;
  'warden.cert.serial'?: string;
  'warden.cert.not_after'?: string;
  'warden.count'?: number;
  'warden.token.issuer'?: string;
  'warden.token.client_id'?: string;
  /** First 16 hex digits of SHA-256(issuer ‖ token): correlates events without revealing the token. */
  'warden.token.hash'?: string;
  'warden.scope.required'?: string;
  /** The rate-limit key kind that identified the client (peer, client_id, sub, ip). */
  'warden.ratelimit.key'?: string;
}

/**
 * `context`: the trace context of the request the event is about (its `traceContext`), as an
 * OpenTelemetry log record carries one: the event's log record is correlated with that request's
 * span and becomes one of its span events (request-tracing.ts).
 */
export type EventSink = (name: EventName, severity: Severity, attributes: EventAttributes, context?: Context) => void;

/** The request an event is about (the pipeline's RequestContext is one; so are the CA's callers). */
export interface EventRequest {
  readonly requestId?: string | undefined;
  readonly traceContext?: Context | undefined;
}

export interface EventBus {
  /** `request`: its id becomes the event's `warden.request.id`, its trace context the event's context. */
  emit(name: EventName, attributes: EventAttributes, request?: EventRequest): void;
  addSink(sink: EventSink): () => void;
}

export function createEventBus(initialSinks: readonly EventSink[] = []): EventBus {
  let sinks: EventSink[] = [...initialSinks];
  return {
    emit(name, attributes, request) {
      const severity = EVENTS[name].severity;
      if (request?.requestId !== undefined) attributes['warden.request.id'] = request.requestId;
      boundEventAttributes(name, attributes as Record<string, unknown>);
      const context = request?.traceContext;
      for (const sink of sinks) {
        try {
          sink(name, severity, attributes, context);
        } catch {
          // A broken sink must never break the request that raised the event.
        }
      }
    },
    addSink(sink) {
      sinks = [...sinks, sink];
      return () => {
        sinks = sinks.filter((s) => s !== sink);
      };
    },
  };
}
