/**
 * Header hygiene in both directions.
 *
 * Requests: framing checks that stop smuggling shapes the parser let through, hop-by-hop headers
 * (RFC 9110 §7.6.1, including those the Connection header names) and internal headers removed,
 * h2 pseudo-headers mapped to Host, X-Forwarded-For/-Proto/-Host set (an incoming X-Forwarded-For
 * believed only from trusted proxies, -Proto and -Host only when headers.trusted_proxy_headers lists
 * them too), X-Real-IP naming the client Warden computed. Responses:
 * hop-by-hop and internal headers removed.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { HeadersConfig, UpstreamConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { UpstreamHeaders } from '../pipeline/stage.js';
import { createIpSet, type IpSet } from '../net/ip-set.js';
import { withoutPort } from '../net/client-network.js';
import { repeatedParameter } from '../net/media-type.js';
import { FORWARDING, HOP_BY_HOP, internalHeaderMatcher } from '../net/sidecar-headers.js';
import { proxyAsserted } from '../net/proxy-asserted.js';

/** Set for the backend by the sidecar (besides FORWARDING); a client's copy is replaced. */
const SET_BY_SIDECAR = new Set(['host', 'x-request-id', 'traceparent', 'tracestate', 'authorization']);

/**
 * CGI and WSGI servers (and some Rack servers) turn both `X-Warden-User` and `X_Warden_User` into
 * `HTTP_X_WARDEN_USER`, so an underscored spelling of a header the sidecar removes or sets would
 * reach such a backend as that header, and one of a header the sidecar reads (a declared header
 * parameter, one the waf inspects) would reach it unvalidated and uninspected. Those spellings are
 * removed, as is the dashed (or mixed) spelling of a header declared with `_` (`X_Report_Scope`):
 * PHP reads whichever comes last. Other names with `_` pass.
 */
function spellsControlled(name: string, rules: HeaderRules): boolean {
  const dashed = name.replaceAll('_', '-');
  const read = rules.readSpellings.get(dashed);
  return (
    (read !== undefined && !read.has(name)) ||
    // CGI's CONTENT_TYPE and CONTENT_LENGTH: `php -S` let `Content_Type` set the one PHP reads.
    dashed.startsWith('content-') ||
    HOP_BY_HOP.has(dashed) ||
    FORWARDING.has(dashed) ||
    proxyAsserted(dashed) ||
    SET_BY_SIDECAR.has(dashed) ||
    rules.tokenHeaders.has(dashed) ||
    rules.isInternal(dashed)
  );
}

/**
 * A name with a character other than a letter, digit, `-` or `_` (names arrive lower-cased). RFC 9110
 * allows `!#$%&'*+.^`|~` too, but lighttpd's CGI/FastCGI mapping folds every such character into
 * `_` and `php -S` folds `.`: `X.Warden.User` reached PHP as HTTP_X_WARDEN_USER, `User.Agent` as the
 * user agent the waf never read. Dropped, as nginx drops them by default (`ignore_invalid_headers`):
 * no client sends one for a reason.
 */
const FOLDED_NAME = /[^a-z0-9_-]/;

/** Fields that must appear once; a second copy is a request the backend may read differently. */
const SINGLETONS = new Set(['host', 'content-length', 'transfer-encoding', 'authorization', 'content-type']);

export interface HeaderRules {
  readonly trustedProxies: IpSet;
  /** headers.trusted_proxy_headers as a test of a proxy-asserted name: believed from a trusted proxy. */
  believedFromProxy: (name: string) => boolean;
  /** headers.trusted_proxy_headers lists `forwarded`: a trusted proxy's Forwarded passes as received. */
  readonly believesForwarded: boolean;
  /**
   * headers.trusted_proxy_headers lists `x-forwarded-host` / `x-forwarded-proto` (by name or
   * `x-forwarded-*`): a trusted proxy's passes, once believed-forwarding.ts has checked its form.
   */
  readonly believesForwardedHost: boolean;
  readonly believesForwardedProto: boolean;
  /**
   * headers.trusted_proxy_headers lists `x-request-id`: a trusted proxy's well-formed id is kept.
   * Not by default: a front that neither sets nor strips it (Go's ReverseProxy, HAProxy, nginx
   * without `proxy_set_header X-Request-ID`) passed the client's own, which could give its refused
   * requests someone else's id (red team 29). A verified mesh peer's is kept either way.
   */
  readonly believesRequestId: boolean;
  isInternal: (name: string) => boolean;
  readonly upstreamHost: string | undefined;
  /** Headers that carry a caller's token (tokens.sources) or the minted one (mint.header), lower case. */
  readonly tokenHeaders: ReadonlySet<string>;
  /** Whether method and path overrides are refused (overrides.ts). */
  readonly refuseOverrides: boolean;
  /** Headers whose value the plan reads (Plan.headersRead), lower case. */
  readonly headersRead: ReadonlySet<string>;
  /**
   * The same, keyed by the name with `_` read as `-` (as CGI readers fold both into `HTTP_…`): the
   * spellings declared. Another spelling of the name reaches the backend as the header read, unvalidated.
   */
  readonly readSpellings: ReadonlyMap<string, ReadonlySet<string>>;
  /** Read headers declared only with `_` (`x_report_scope`), as their dashed spelling, which is dropped. */
  readonly dashedUnread: ReadonlySet<string>;
  /**
   * `tokens.mint.header` when it is not `authorization`, lower case: the backend's minted token,
   * which egress never carries to another service (nothing there verifies it, and its sidecar
   * passes a header of that name to its own backend). In `authorization` the destination's sidecar
   * takes it as the caller's token and removes it.
   */
  readonly mintHeader: string | undefined;
  /**
   * `tokens.mint.header` (`authorization` included), lower case, when minting: a response header of
   * that name is dropped — a backend echoing its request headers would hand the client the
   * internal token minted for it.
   */
  readonly mintedIn: string | undefined;
}

export function compileHeaderRules(
  headers: HeadersConfig,
  upstream: UpstreamConfig,
  tokenHeaders: ReadonlySet<string> = new Set(),
  headersRead: ReadonlySet<string> = new Set(),
  mintHeader?: string,
): HeaderRules {
  const upstreamHost = upstream.host_header === 'upstream' ? upstreamAuthority(upstream.url) : undefined;
  const readSpellings = new Map<string, Set<string>>();
  for (const name of headersRead) {
    const dashed = name.replaceAll('_', '-');
    readSpellings.set(dashed, (readSpellings.get(dashed) ?? new Set()).add(name));
  }
  const dashedUnread = new Set([...readSpellings].filter(([dashed, spellings]) => !spellings.has(dashed)).map(([dashed]) => dashed));
  // Same form as headers.internal: exact names, and prefixes ending in `*`.
  const believedFromProxy = internalHeaderMatcher(headers.trusted_proxy_headers);
  return {
    trustedProxies: createIpSet(headers.trusted_proxies),
    believedFromProxy,
    believesForwarded: headers.trusted_proxy_headers.includes('forwarded'),
    believesForwardedHost: believedFromProxy('x-forwarded-host'),
    believesForwardedProto: believedFromProxy('x-forwarded-proto'),
    believesRequestId: headers.trusted_proxy_headers.includes('x-request-id'),
    upstreamHost,
    tokenHeaders,
    headersRead,
    readSpellings,
    dashedUnread,
    mintHeader: mintHeader === undefined || mintHeader.toLowerCase() === 'authorization' ? undefined : mintHeader.toLowerCase(),
    mintedIn: mintHeader?.toLowerCase(),
    refuseOverrides: headers.overrides === 'refuse',
    isInternal: internalHeaderMatcher(headers.internal),
  };
}

function upstreamAuthority(url: string): string {
  return url.startsWith('unix:') ? 'localhost' : new URL(url).host;
}

/**
 * Framing checks for HTTP/1.1 requests. llhttp already refuses most smuggling shapes; these close
 * the rest and make the refusal explicit: Transfer-Encoding together with Content-Length, any
 * coding but a lone "chunked", a malformed Content-Length, duplicated singleton fields, and a
 * Content-Type parameter given twice (a multipart boundary read two ways).
 */
export function checkFraming(headers: IncomingHttpHeaders, rawHeaders: readonly string[]): WardenError | undefined {
  const te = headers['transfer-encoding'];
  const cl = headers['content-length'];
  if (te !== undefined) {
    if (cl !== undefined) return ambiguous('Content-Length and Transfer-Encoding together', 'framing.cl_te');
    if (te.toLowerCase() !== 'chunked') return ambiguous('Transfer-Encoding other than "chunked"', 'framing.te_coding');
  }
  if (cl !== undefined && !/^\d{1,15}$/.test(cl)) return ambiguous('a Content-Length that is not a single number', 'framing.cl_value');
  const connection = headers.connection;
  if (connection !== undefined) {
    const named = checkedFieldNamed(connection);
    if (named !== undefined)
      return ambiguous(`a Connection header that names ${named}, a field the sidecar checks`, 'framing.connection_names');
  }
  const ct = headers['content-type'];
  const repeated = ct === undefined ? undefined : repeatedParameter(ct);
  if (repeated !== undefined)
    return ambiguous(`a Content-Type that gives its ${repeated} parameter twice`, 'framing.content_type_parameter');
  // Node keeps the first of duplicated singletons silently; refuse instead of guessing.
  if (rawHeaders.length / 2 > countKeys(headers)) {
    const seen = new Set<string>();
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = (rawHeaders[i] as string).toLowerCase();
      if (!SINGLETONS.has(name)) continue;
      if (seen.has(name)) return ambiguous(`more than one ${name} header`, `framing.duplicate_${name.replace('-', '_')}`);
      seen.add(name);
    }
  }
  return undefined;
}

/**
 * A proxy removes the fields a Connection header names (RFC 9110 §7.6.1). Naming one the sidecar
 * decides on — the body's type, length or coding, credentials, the target host — would have the
 * backend get a request other than the one checked (a JSON body validated as JSON arriving untyped,
 * which Rack and PHP then read as a form), so such a request is refused, not trimmed.
 */
const CHECKED_FIELDS = new Set(['host', 'authorization', 'cookie']);

function checkedFieldNamed(connection: string): string | undefined {
  // The usual values name no field at all.
  if (connection.length <= 10 && /^(?:keep-alive|close)$/i.test(connection)) return undefined;
  for (const token of connection.split(',')) {
    const name = token.trim().toLowerCase();
    if (name.startsWith('content-') || CHECKED_FIELDS.has(name)) return name;
  }
  return undefined;
}

/**
 * Removes from the request, before any stage reads it, the fields its Connection header names (the
 * ones a proxy removes: RFC 9110 §7.6.1), so that stages check what the backend gets. They were
 * removed only from what went upstream: an OpenAPI `X-Tenant` header parameter (required) was
 * validated, then dropped — the backend got none. Called once the framing checks have passed (they
 * read Transfer-Encoding as sent). Kept: fields whose naming is refused (checkFraming), the
 * framing itself, and the forwarding fields, which the sidecar reads for the client's address
 * behind trusted proxies and then sets itself (removed here, a client named its own X-Forwarded-For
 * and was taken for the proxy: out of `access.clients.deny`). HTTP/1.1 only: h2 has no Connection.
 */
export function dropConnectionNamed(headers: IncomingHttpHeaders): void {
  const connection = headers.connection;
  if (connection === undefined) return;
  const value = String(connection);
  if (value.length <= 10 && /^(?:keep-alive|close)$/i.test(value)) return;
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === 'connection' || name.startsWith('content-') || CHECKED_FIELDS.has(name)) continue;
    if (name === 'transfer-encoding' || FORWARDING.has(name)) continue;
    // Rarely taken: a delete turns the object into a dictionary (see removeField).
    if (Object.hasOwn(headers, name)) delete headers[name];
  }
}

function ambiguous(what: string, rule: string): WardenError {
  return new WardenError('ERR_REQUEST_AMBIGUOUS', { detail: `The request has ${what}.`, rule });
}

function countKeys(headers: IncomingHttpHeaders): number {
  let n = 0;
  for (const _ in headers) n++;
  return n;
}

/**
 * The client's address for policy: the socket peer, or — when the peer is a trusted proxy — the
 * nearest address in X-Forwarded-For that is not itself a trusted proxy, without the port or
 * brackets a proxy may write around it. A hop that is no IP address is not believed: the client is
 * UNKNOWN_CLIENT then (a 6 000-character hop went whole into every event and access line, and
 * each made-up string was a rate-limit bucket of its own); and with the port kept (Azure
 * Application Gateway writes `ip:port`) no `access.clients.deny` entry ever matched and each
 * source port was a bucket (docs/adversarial.md 275).
 */
export function clientAddressOf(socketAddress: string, headers: IncomingHttpHeaders, rules: HeaderRules): string {
  const xff = headers['x-forwarded-for'];
  if (xff === undefined || !rules.trustedProxies.has(socketAddress)) return socketAddress;
  const hops = String(xff).split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = (hops[i] as string).trim();
    if (!hop) continue;
    // A trusted proxy's own hop may carry a port too (`10.2.2.2:443`, `[::ffff:10.3.3.3]:80`): read
    // raw, it was taken for the client, and every client behind it shared one bucket.
    // A zone (`fe80::1%eth0`) names an interface of the proxy's, not the client: 6 KB of it passed isIP.
    const address = withoutZone(withoutPort(hop));
    if (rules.trustedProxies.has(address)) continue;
    return isIP(address) !== 0 ? address : UNKNOWN_CLIENT;
  }
  return socketAddress;
}

/**
 * The client behind a trusted proxy that wrote no address for it (`unknown`, nginx's `unix:`, an
 * obfuscated `_hidden`, junk): matches no `access.clients` entry, allow or deny, and such clients
 * share one rate-limit bucket. Taken for the proxy's own address, they passed an allow list naming
 * the proxies' range (review of docs/adversarial.md 275).
 */
export const UNKNOWN_CLIENT = 'unknown';

function withoutZone(address: string): string {
  const zone = address.indexOf('%');
  return zone === -1 ? address : address.slice(0, zone);
}

/**
 * The header set sent to the backend. From a trusted proxy, X-Forwarded-For is appended to;
 * X-Forwarded-Proto/-Host, Forwarded and the other proxy-asserted fields are believed only when
 * headers.trusted_proxy_headers names them (a client behind an ordinary front writes its own: red
 * team 28; Varnish, Squid, HAProxy and nginx's plain proxy_pass pass a client's X-Forwarded-Host
 * and -Proto: red team 29 F1). Otherwise Warden sets them: `https` (its inbound listener is TLS
 * only) and the authority the request reached it with. X-Real-IP names the client Warden computed
 * (`clientAddress`), so a backend reading it (nginx-style X-Real-IP readers) agrees with the
 * address its policy used.
 */
export function upstreamRequestHeaders(
  headers: IncomingHttpHeaders,
  socketAddress: string,
  authority: string | undefined,
  rules: HeaderRules,
  clientAddress: string = clientAddressOf(socketAddress, headers, rules),
): UpstreamHeaders {
  const out: UpstreamHeaders = {};
  const trusted = rules.trustedProxies.has(socketAddress);
  for (const name in headers) {
    if (name.charCodeAt(0) === 0x3a /* : pseudo-header */ || name === 'host') continue;
    if (HOP_BY_HOP.has(name) || FORWARDING.has(name) || rules.isInternal(name)) continue;
    if (proxyAsserted(name) && !(trusted && rules.believedFromProxy(name))) continue;
    if (name.includes('_') ? spellsControlled(name, rules) : rules.dashedUnread.has(name)) continue;
    if (FOLDED_NAME.test(name)) continue;
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  removeConnectionNamed(out, headers.connection);

  const xff = headers['x-forwarded-for'];
  out['x-forwarded-for'] = trusted && xff !== undefined ? `${String(xff)}, ${socketAddress}` : socketAddress;
  // A believed one in another form than one scheme, one host is refused before any stage runs
  // (believed-forwarding.ts), so these never reach the backend.
  const proto = headers['x-forwarded-proto'];
  // Lower-cased: a scheme is case-insensitive, a backend comparing it with "https" is not.
  out['x-forwarded-proto'] = trusted && rules.believesForwardedProto && typeof proto === 'string' ? proto.toLowerCase() : 'https';
  const fwdHost = headers['x-forwarded-host'];
  const sentHost = trusted && rules.believesForwardedHost && typeof fwdHost === 'string' ? fwdHost : authority;
  if (sentHost !== undefined) out['x-forwarded-host'] = sentHost;
  // A trusted proxy's Forwarded only when listed. Warden writes none of its own: one naming only the
  // client it computed contradicted X-Forwarded-For's chain, and Symfony (Drupal's default) answers
  // 400 to a request whose trusted Forwarded and X-Forwarded-For differ (review rt28, F1).
  const forwarded = headers.forwarded;
  if (trusted && rules.believesForwarded && forwarded !== undefined) out.forwarded = forwarded;
  // clientAddressOf gives an IP address, UNKNOWN_CLIENT, or a socket already gone's '': no parse here.
  if (clientAddress !== UNKNOWN_CLIENT && clientAddress !== '') out['x-real-ip'] = clientAddress;
  const host = rules.upstreamHost ?? authority;
  if (host !== undefined) out.host = host;
  return out;
}

/** Response headers from the backend, minus hop-by-hop and internal ones. */
export function downstreamResponseHeaders(headers: IncomingHttpHeaders, rules: HeaderRules): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || rules.isInternal(name) || name === rules.mintedIn) continue;
    // `x_warden_user` is `X-Warden-User` to a CGI-style reader (spellsControlled): internal either
    // way; so is `x_internal_token` for a minted token in `x-internal-token`.
    if (name.includes('_')) {
      const dashed = name.replaceAll('_', '-');
      if (rules.isInternal(dashed) || dashed === rules.mintedIn) continue;
    }
    out[name] = headers[name];
  }
  removeConnectionNamed(out, headers.connection);
  return out;
}

/**
 * The backend's outgoing request through the egress listener: hop-by-hop and internal headers never
 * leave (an internal token must not reach another service), and no Host: the connection to the
 * destination sets its own. Egress is the first hop and the backend no proxy, so what only a proxy
 * asserts — forwarding fields, the caller's address, certificate or user (FORWARDING,
 * proxyAsserted), in any spelling with `_` — is dropped too: a destination whose trusted_proxies
 * cover the calling sidecars would believe them.
 */
export function egressRequestHeaders(headers: IncomingHttpHeaders, rules: HeaderRules): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const name in headers) {
    if (name === 'host' || HOP_BY_HOP.has(name) || rules.isInternal(name) || FORWARDING.has(name) || proxyAsserted(name)) continue;
    if (name === rules.mintHeader || FOLDED_NAME.test(name)) continue;
    if (name.includes('_')) {
      const dashed = name.replaceAll('_', '-');
      if (rules.isInternal(dashed) || FORWARDING.has(dashed) || proxyAsserted(dashed) || dashed === rules.mintHeader) continue;
    }
    out[name] = headers[name];
  }
  removeConnectionNamed(out, headers.connection);
  return out;
}

/** Removes the fields a Connection header names (RFC 9110 §7.6.1). */
function removeConnectionNamed(out: Record<string, unknown>, connection: string | string[] | undefined): void {
  if (connection === undefined) return;
  const value = String(connection);
  // Most values name one field (keep-alive, close): nothing to split.
  if (!value.includes(',')) return removeField(out, value);
  for (const token of value.split(',')) removeField(out, token);
}

/**
 * Deletes a field only when it is there: a `delete` turns the object into a dictionary, slower for
 * every later write and for undici's walk over it. The fields named are mostly hop-by-hop ones,
 * removed already.
 */
function removeField(out: Record<string, unknown>, token: string): void {
  const name = token.trim().toLowerCase();
  if (name in out) delete out[name];
}

/**
 * Fields that describe the body as encoded (its Content-Encoding applied): the digests of RFC 1864,
 * RFC 3230 and RFC 9530 are all taken over the coded bytes. Dropped with the coding, as they would
 * describe bytes the backend is not sent; a backend that verifies them refused a sound request.
 */
const ENCODED_BODY_FIELDS = ['content-encoding', 'content-md5', 'digest', 'content-digest', 'repr-digest'] as const;

/**
 * The upstream headers for a body forwarded decoded (the bytes the stages read, not the bytes sent):
 * no Content-Encoding nor the digests of the coded bytes, and its own length. A backend that does
 * not undo a request's coding (PHP, nginx with FastCGI, most) read the bytes as sent, and gzip's
 * FNAME and FCOMMENT or a br metadata block, which decoders skip, held a form of their own there.
 */
export function describeDecodedBody(out: UpstreamHeaders, length: number): void {
  // Rarely taken: a delete turns the object into a dictionary (see removeField).
  for (const name of ENCODED_BODY_FIELDS) if (name in out) delete out[name];
  out['content-length'] = String(length);
}
