/**
 * WardenError and the closed catalogue of error codes.
 *
 * Every refusal the sidecar makes is one of these codes. The catalogue fixes, per code, the HTTP
 * status, a short human title (sent to the client) and the security event it raises (DESIGN §4, §5).
 * The `cause` is for logs only and never reaches the client.
 */
import type { EventAttributes, EventName } from './telemetry/events.js';

interface ErrorSpec {
  readonly status: number;
  readonly title: string;
  /** The security event this refusal raises; undefined for failures that are not security decisions. */
  readonly event: EventName | undefined;
}

export const ERRORS = {
  // Request shape and limits (src/proxy/headers.ts, listener limits)
  ERR_REQUEST_MALFORMED: { status: 400, title: 'Malformed request', event: 'warden.http.malformed' },
  ERR_REQUEST_AMBIGUOUS: { status: 400, title: 'Ambiguous request framing', event: 'warden.http.smuggling' },
  ERR_REQUEST_OVERRIDE: { status: 400, title: 'Method or path override not accepted', event: 'warden.http.smuggling' },
  ERR_PATH_INVALID: { status: 400, title: 'Invalid request path', event: 'warden.http.path_invalid' },
  ERR_HEADERS_TOO_LARGE: { status: 431, title: 'Request header fields too large', event: 'warden.http.limit_exceeded' },
  ERR_BODY_TOO_LARGE: { status: 413, title: 'Request body too large', event: 'warden.http.limit_exceeded' },
  ERR_REQUEST_TIMEOUT: { status: 408, title: 'Request not received in time', event: 'warden.http.limit_exceeded' },
  // An Expect other than 100-continue (src/proxy/expectation.ts): RFC 9110 §10.1.1's 417.
  ERR_EXPECTATION_FAILED: { status: 417, title: 'Expectation not supported', event: 'warden.http.malformed' },
  // Never sent (the response has started): the connection or stream is cut, the event raised.
  ERR_SEND_TIMEOUT: { status: 408, title: 'Response not read in time', event: 'warden.http.limit_exceeded' },
  // Never sent either: an h2 session with open streams that answers no PING (h2-session-tracker.ts) is ended.
  ERR_CLIENT_UNRESPONSIVE: { status: 408, title: 'Client stopped answering', event: 'warden.http.limit_exceeded' },
  // Routing and policy
  ERR_ROUTE_NOT_FOUND: { status: 404, title: 'No such route', event: 'warden.route.unknown' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed on this route', event: 'warden.route.unknown' },
  ERR_REQUEST_INVALID: { status: 400, title: 'Request does not match the API description', event: 'warden.input.invalid' },
  ERR_MEDIA_TYPE_UNSUPPORTED: { status: 415, title: 'Unsupported media type for this operation', event: 'warden.input.invalid' },
  // The event is the attack class (warden.input.sqli, .xss, …), set per refusal by the waf stage.
  ERR_WAF_BLOCKED: { status: 403, title: 'Request blocked by the web application firewall', event: undefined },
  ERR_MALWARE_FOUND: { status: 422, title: 'Upload refused: malware detected', event: 'warden.input.malware' },
  // Past clamd's archive limits (AlertExceedsMax): the sender chose it, so never let through as a scanner failure.
  ERR_UPLOAD_UNSCANNABLE: { status: 422, title: 'Upload refused: it could not be scanned whole', event: 'warden.input.malware' },
  ERR_SCANNER_UNAVAILABLE: { status: 503, title: 'Upload could not be scanned', event: 'warden.scanner.unavailable' },
  ERR_ACCESS_DENIED: { status: 403, title: 'Access denied', event: 'warden.access.denied' },
  // Mutual TLS and peer identity (src/proxy/listener.ts, src/stages/peer-authz.ts)
  ERR_PEER_CERT_REQUIRED: { status: 401, title: 'Client certificate required', event: 'warden.tls.peer_denied' },
  ERR_PEER_CERT_INVALID: { status: 401, title: 'Client certificate not trusted', event: 'warden.tls.peer_denied' },
  ERR_PEER_REVOKED: { status: 401, title: 'Client certificate revoked', event: 'warden.tls.peer_revoked' },
  // client_crl in force and the certificate's path to client_ca not traced (src/proxy/client-trust.ts).
  ERR_PEER_REVOCATION_UNKNOWN: {
    status: 401,
    title: 'Client certificate could not be checked for revocation',
    event: 'warden.tls.peer_denied',
  },
  ERR_AUTHZ_PEER_DENIED: { status: 403, title: 'Calling workload not allowed', event: 'warden.tls.peer_denied' },
  // No CRL in force (src/mesh/identity.ts raises warden.mesh.crl_unavailable once, not per request).
  ERR_MESH_CRL_UNAVAILABLE: { status: 503, title: 'Client certificate could not be checked for revocation', event: undefined },
  // Tokens (src/stages/authn*.ts, authz-scopes.ts; src/identity/)
  ERR_AUTHN_TOKEN_MISSING: { status: 401, title: 'Access token required', event: 'warden.authn.token_missing' },
  ERR_AUTHN_TOKEN_MALFORMED: { status: 401, title: 'Malformed credentials', event: 'warden.authn.token_malformed' },
  ERR_AUTHN_TOKEN_INVALID: { status: 401, title: 'Access token not valid', event: 'warden.authn.token_invalid' },
  ERR_AUTHN_TOKEN_INACTIVE: { status: 401, title: 'Access token not active', event: 'warden.authn.token_inactive' },
  ERR_AUTHN_TOKEN_EXPIRED: { status: 401, title: 'Access token expired', event: 'warden.authn.token_expired' },
  // Sender-constrained tokens (src/identity/token-binding.ts, dpop-proof.ts): RFC 8705 / RFC 9449
  ERR_AUTHN_TOKEN_UNBOUND: { status: 401, title: 'Access token binding not proven', event: 'warden.authn.token_unbound' },
  ERR_AUTHN_DPOP_INVALID: { status: 401, title: 'DPoP proof not valid', event: 'warden.authn.dpop_invalid' },
  // The cache is full of many callers' proofs: capacity, like limits.max_in_flight, so shed.
  ERR_DPOP_REPLAY_FULL: { status: 503, title: 'DPoP proof could not be checked', event: 'warden.traffic.shed' },
  // One caller over its share of the DPoP replay cache: its own volume, so 429 and only for it.
  ERR_DPOP_REPLAY_SHARE: { status: 429, title: 'Too many recent DPoP proofs', event: 'warden.traffic.rate_limited' },
  ERR_AUTHZ_SCOPE_MISSING: { status: 403, title: 'Insufficient scope', event: 'warden.authz.scope_missing' },
  // The token minted for the backend is over tokens.mint.max_bytes (the claims of the caller's token): not forwarded.
  ERR_MINTED_TOKEN_TOO_LARGE: { status: 431, title: 'Access token too large to forward', event: 'warden.http.limit_exceeded' },
  ERR_IDP_UNAVAILABLE: { status: 503, title: 'Token could not be checked', event: 'warden.authn.idp_unavailable' },
  // Raised where it is refused (src/identity/token-runtime.ts): the admin listener has no rescue.
  ERR_REVOCATIONS_FULL: { status: 503, title: 'Too many revoked tokens', event: 'warden.token.revocation_refused' },
  // Traffic (src/stages/rate-limit.ts, src/proxy/handler.ts)
  ERR_RATE_LIMITED: { status: 429, title: 'Too many requests', event: 'warden.traffic.rate_limited' },
  ERR_OVERLOADED: { status: 503, title: 'Too many requests in flight', event: 'warden.traffic.shed' },
  ERR_RATELIMIT_STORE_UNAVAILABLE: { status: 503, title: 'Rate limit could not be checked', event: 'warden.ratelimit.store_unavailable' },
  // Admin listener (src/proxy/admin.ts)
  ERR_ADMIN_HOST_REFUSED: { status: 421, title: 'Host not served by the admin listener', event: 'warden.access.denied' },
  ERR_ADMIN_BROWSER_REFUSED: { status: 403, title: 'Admin actions are not taken from a browser', event: 'warden.access.denied' },
  // Egress (the backend calling other services through its sidecar)
  ERR_EGRESS_UNKNOWN_SERVICE: { status: 404, title: 'No such egress service', event: undefined },
  ERR_EGRESS_HOST_REFUSED: { status: 421, title: 'Host not served by the egress listener', event: 'warden.access.denied' },
  ERR_EGRESS_BROWSER_REFUSED: {
    status: 403,
    title: 'Browser requests are not accepted by the egress listener',
    event: 'warden.access.denied',
  },
  ERR_EGRESS_PEER_MISMATCH: { status: 502, title: 'Destination presented an unexpected identity', event: 'warden.tls.peer_denied' },
  // No CRL in force: the destination's certificate cannot be checked (warden.mesh.crl_unavailable is raised once).
  ERR_EGRESS_CRL_UNAVAILABLE: { status: 503, title: 'Destination certificate could not be checked for revocation', event: undefined },
  // Warden CA API (src/ca/)
  ERR_CA_TOKEN_MISSING: { status: 401, title: 'Bootstrap token required', event: 'warden.ca.token_rejected' },
  ERR_CA_TOKEN_UNKNOWN: { status: 401, title: 'Bootstrap token not recognised', event: 'warden.ca.token_rejected' },
  ERR_CA_TOKEN_USED: { status: 401, title: 'Bootstrap token already used', event: 'warden.ca.token_rejected' },
  ERR_CA_TOKEN_EXPIRED: { status: 401, title: 'Bootstrap token expired', event: 'warden.ca.token_rejected' },
  ERR_CA_IDENTITY_MISMATCH: { status: 403, title: 'Requested identity not allowed', event: 'warden.ca.token_rejected' },
  ERR_CA_CSR_INVALID: { status: 400, title: 'Invalid certificate signing request', event: 'warden.ca.csr_rejected' },
  ERR_CA_KEY_REJECTED: { status: 400, title: 'Key type or size not accepted', event: 'warden.ca.csr_rejected' },
  ERR_CA_CLIENT_CERT_REQUIRED: { status: 401, title: 'A valid client certificate is required', event: 'warden.ca.auth_failed' },
  ERR_CA_CERT_REVOKED: { status: 403, title: 'Certificate revoked', event: 'warden.ca.auth_failed' },
  ERR_CA_ADMIN_REQUIRED: { status: 403, title: 'Administrator identity required', event: 'warden.ca.auth_failed' },
  ERR_CA_NOT_FOUND: { status: 404, title: 'No such resource', event: undefined },
  ERR_CA_REQUEST_INVALID: { status: 400, title: 'Invalid request', event: undefined },
  ERR_CA_ISSUER_EXPIRED: { status: 503, title: 'The issuing CA certificate has expired', event: undefined },
  ERR_CA_STORE_UNAVAILABLE: { status: 503, title: 'The CA database is unavailable', event: undefined },
  ERR_CA_IDENTITY_LIMIT: { status: 429, title: 'Too many valid certificates for this identity', event: undefined },
  // Revoking every valid administrator certificate would lock the admin API for good: issue a new one first (`warden ca admin issue`).
  ERR_CA_LAST_ADMIN: { status: 409, title: 'The last valid administrator certificate cannot be revoked', event: undefined },
  // Never sent: `warden ca serve` refuses to start on a database that fails PRAGMA integrity_check (store.ts).
  ERR_CA_DATABASE_DAMAGED: { status: 503, title: 'The CA database is damaged', event: undefined },
  // Never sent: `warden ca serve` refuses a database older than what the CA published (published-record.ts).
  ERR_CA_DATABASE_RESTORED: { status: 503, title: 'The CA database is older than what the CA published', event: undefined },
  // Upstream (the backend behind the sidecar)
  ERR_UPSTREAM_UNAVAILABLE: { status: 502, title: 'Backend unavailable', event: 'warden.upstream.failed' },
  ERR_UPSTREAM_TIMEOUT: { status: 504, title: 'Backend did not answer in time', event: 'warden.upstream.failed' },
  ERR_UPSTREAM_PROTOCOL: { status: 502, title: 'Backend sent an invalid response', event: 'warden.upstream.failed' },
  // RE2 (the linear-time pattern engine, src/openapi/re2-runtime.ts) cannot be instantiated any more: /readyz says not ready.
  ERR_PATTERN_ENGINE_UNAVAILABLE: { status: 503, title: 'Request could not be validated', event: undefined },
  // Defects
  ERR_INTERNAL: { status: 500, title: 'Internal error', event: undefined },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export interface WardenErrorOptions {
  /** Logged, never sent: what exactly went wrong (library error, offending value). */
  cause?: unknown;
  /** Short detail safe to send to the client (no secrets, no echoed input beyond names). */
  detail?: string;
  /** Which rule or check fired (e.g. `access.clients.deny`, `llhttp:HPE_INVALID_HEADER_TOKEN`). */
  rule?: string;
  /** Extra response headers (e.g. Allow on 405, Retry-After on 429). */
  headers?: Readonly<Record<string, string>>;
  /** Extra attributes for the security event (issuer, client id, token hash); never sent to the client. */
  attributes?: EventAttributes;
  /** The security event, when it depends on the refusal rather than the code (the WAF's attack class). */
  event?: EventName;
  /** Each violation of the API description (pointer + message), sent in the problem's `errors`. */
  violations?: readonly { pointer: string; message: string }[];
}

export class WardenError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly title: string;
  readonly detail: string | undefined;
  readonly rule: string | undefined;
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly attributes: EventAttributes | undefined;
  readonly violations: readonly { pointer: string; message: string }[] | undefined;
  readonly #event: EventName | undefined;

  constructor(code: ErrorCode, options: WardenErrorOptions = {}) {
    // Refusals can arrive at attack rates; a stack trace per refusal is wasted work, so none is taken.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(ERRORS[code].title, options.cause === undefined ? undefined : { cause: options.cause });
    Error.stackTraceLimit = limit;
    this.name = 'WardenError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.title = ERRORS[code].title;
    this.detail = options.detail;
    this.rule = options.rule;
    this.headers = options.headers;
    this.attributes = options.attributes;
    this.violations = options.violations;
    this.#event = options.event;
  }

  get event(): EventName | undefined {
    return this.#event ?? ERRORS[this.code].event;
  }
}

export function isWardenError(value: unknown): value is WardenError {
  return value instanceof WardenError;
}
