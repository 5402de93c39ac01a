/**
 * Fuzz: header hygiene (src/proxy/headers.ts). For arbitrary header sets as Node hands them over
 * (lower-case names, values without CR/LF), what reaches the backend (and the caller, and another
 * service through egress) never carries a hop-by-hop field, a field the Connection header names, an
 * internal field or a forwarding/identity field the sidecar did not set itself — and nothing else
 * is lost or changed on the way.
 */
import t from 'tap';
import fc from 'fast-check';
import { validateHeaderName, validateHeaderValue, type IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { WardenError } from '../../src/errors.js';
import {
  checkFraming,
  clientAddressOf,
  UNKNOWN_CLIENT,
  compileHeaderRules,
  downstreamResponseHeaders,
  egressRequestHeaders,
  upstreamRequestHeaders,
} from '../../src/proxy/headers.js';
import { fuzz } from './fuzz-budget.js';

const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'expect',
];
/** Set only by the sidecar (x-forwarded-for/-proto/-host, forwarded, x-real-ip and host are re-set; these never pass). */
const NEVER_FROM_CLIENT = ['x-forwarded-client-cert'];
const SET_BY_SIDECAR = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-real-ip']);
const INTERNAL_EXACT = 'x-internal-token';
const isInternal = (name: string) => name.startsWith('x-warden-') || name === INTERNAL_EXACT;
/** Underscored spellings of headers the sidecar removes or sets: CGI/WSGI read them as those (never forwarded). */
const SIDECAR_SETS_TOO = ['x-request-id', 'traceparent', 'tracestate', 'authorization'];
const spellsControlled = (name: string) => {
  if (!name.includes('_')) return false;
  const dashed = name.replaceAll('_', '-');
  return (
    HOP_BY_HOP.includes(dashed) ||
    NEVER_FROM_CLIENT.includes(dashed) ||
    SET_BY_SIDECAR.has(dashed) ||
    SIDECAR_SETS_TOO.includes(dashed) ||
    dashed.startsWith('content-') ||
    isInternal(dashed)
  );
};
/** A name lighttpd (every character but letters and digits) or `php -S` (`.`) folds into another: never forwarded. */
const folds = (name: string) => /[^a-z0-9_-]/.test(name);

const upstream = {
  url: 'http://127.0.0.1:8080',
  connections: 8,
  host_header: 'preserve' as const,
  keep_alive: 4000,
  timeouts: { connect: 1000, headers: 1000, body: 1000 },
};
/** headers.trusted_proxy_headers: exact names, prefixes ending in `*`, and `forwarded` in one of the two rule sets. */
const BELIEVED = ['remote-user', 'x-amzn-oidc-*'];
const believed = (name: string) => name === 'remote-user' || name.startsWith('x-amzn-oidc-');
const rulesOf = (listed: string[]) =>
  compileHeaderRules(
    {
      internal: ['X-Warden-*', INTERNAL_EXACT],
      trusted_proxies: ['10.0.0.0/8', '::1'],
      trusted_proxy_headers: listed,
      overrides: 'refuse',
    },
    upstream,
  );
const rules = rulesOf(BELIEVED);
const rulesForwarded = rulesOf([...BELIEVED, 'forwarded']);
/** X-Forwarded-Host and -Proto are believed only when listed (red team 29 F1), by name or by `x-forwarded-*`. */
const rulesXf = rulesOf([...BELIEVED, 'x-forwarded-host', 'x-forwarded-proto']);
const rulesXfFamily = rulesOf([...BELIEVED, 'forwarded', 'x-forwarded-*']);
const ruleSet = fc.constantFrom(
  { rules, forwarded: false, xf: false },
  { rules: rulesForwarded, forwarded: true, xf: false },
  { rules: rulesXf, forwarded: false, xf: true },
  { rules: rulesXfFamily, forwarded: true, xf: true },
);

const KNOWN_NAMES = [
  ...HOP_BY_HOP,
  ...NEVER_FROM_CLIENT,
  ...SET_BY_SIDECAR,
  'x-warden-user',
  'x-warden-peer',
  'x-warden-',
  INTERNAL_EXACT,
  'x-internal-token2',
  'authorization',
  'cookie',
  'content-type',
  'content-length',
  'accept',
  'traceparent',
  'x-request-id',
  'user-agent',
  'x-api-token',
  'x_warden_user',
  'x_forwarded_for',
  'keep_alive',
  'x_internal_token',
  'x_request_id',
  'x_api_token',
  // Proxy-asserted: believed from a trusted proxy only when listed (BELIEVED).
  'remote-user',
  'true-client-ip',
  'x-amzn-oidc-data',
  'x-forwarded-port',
  'x-auth-request-user',
  'x_remote_user',
];

/** RFC 9110 token characters, lower-cased as Node delivers names. */
const tokenName = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9a-z]{1,16}$/);
const headerName = fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...KNOWN_NAMES) }, { weight: 1, arbitrary: tokenName });

/** Field values as Node delivers them: visible ASCII, SP, HTAB and obs-text, trimmed. */
const fieldValue = fc
  .string({
    unit: fc
      .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.constant(0x09), fc.integer({ min: 0x80, max: 0xff }))
      .map((c) => String.fromCharCode(c)),
    maxLength: 24,
  })
  .map((v) => v.trim());

/** A Connection value naming some fields, in any case, with odd whitespace and empty members. */
const connectionValue = fc
  .tuple(
    fc.array(fc.tuple(headerName, fc.boolean(), fc.constantFrom('', ' ', '\t', '  ')), { minLength: 1, maxLength: 5 }),
    fc.constantFrom(',', ', ', ',,'),
  )
  .map(([items, comma]) => items.map(([n, upper, ws]) => `${ws}${upper ? n.toUpperCase() : n}${ws}`).join(comma))
  .map((v) => v.trim());

const incoming: fc.Arbitrary<IncomingHttpHeaders> = fc
  .tuple(
    fc.dictionary(headerName, fieldValue, { maxKeys: 14 }),
    fc.option(connectionValue, { nil: undefined }),
    fc.option(fc.array(fieldValue, { minLength: 1, maxLength: 3 }), { nil: undefined }),
  )
  .map(([dict, connection, setCookie]) => {
    // Node's headers object; set-cookie is the only array.
    const headers: IncomingHttpHeaders = {};
    for (const [k, v] of Object.entries(dict)) if (k !== 'set-cookie') headers[k] = v;
    if (connection !== undefined) headers.connection = connection;
    if (setCookie !== undefined) headers['set-cookie'] = setCookie;
    return headers;
  });

/**
 * What only a proxy asserts — forwarding fields, the caller's address, certificate or user — in any
 * spelling with `_`: never sent through egress (the first hop; the backend is no proxy), or a
 * destination whose trusted_proxies cover the calling sidecars would believe them.
 */
const PROXY_ONLY = [
  ...SET_BY_SIDECAR,
  ...NEVER_FROM_CLIENT,
  'x-client-ip',
  'true-client-ip',
  'x-cluster-client-ip',
  'x-original-forwarded-for',
  'cf-connecting-ip',
  'fastly-client-ip',
  'client-cert',
  'client-cert-chain',
  'x-client-cert',
  'x-ssl-cert',
  'x-arr-clientcert',
  'remote-user',
  'x-remote-user',
  'script-name',
  'x-script-name',
  'client-ip',
  'x-forwarded',
  'forwarded-for',
  'x-appengine-user-ip',
  'cf-pseudo-ipv4',
  'x-client-verify',
  'x-client-dn',
  'x-client-certificate',
  'x-ssl-subject',
  'x-ssl-issuer',
  'x-ssl-verified',
].filter((name) => name !== 'host');
const PROXY_ONLY_PREFIX =
  /^(?:x-forwarded-|x-ssl-client-|ssl-client-|x-amzn-oidc-|x-amzn-mtls-|x-ms-client-principal|x-goog-authenticated-user-|x-auth-request-|x-envoy-|x-client-cert-|cloudfront-viewer-|cf-client-cert-)/;
const proxyOnly = (name: string) => {
  const dashed = name.replaceAll('_', '-');
  return PROXY_ONLY.includes(dashed) || PROXY_ONLY_PREFIX.test(dashed);
};
/** The backend's request to egress: `incoming`, plus proxy-asserted fields a backend may forge or relay. */
const egressIncoming: fc.Arbitrary<IncomingHttpHeaders> = fc
  .tuple(
    incoming,
    fc.dictionary(
      fc.constantFrom(
        ...PROXY_ONLY,
        'x-forwarded-user',
        'x-forwarded-port',
        'x-envoy-peer-metadata',
        'x-amzn-oidc-identity',
        'x-ms-client-principal-name',
        'x_remote_user',
        'client_cert',
        'x_envoy_original_path',
      ),
      fieldValue,
      { maxKeys: 6 },
    ),
  )
  .map(([headers, forged]) => ({ ...forged, ...headers }));

const socketAddress = fc.constantFrom('192.0.2.7', '10.1.2.3', '::1', '2001:db8::1', '203.0.113.9');
const authority = fc.option(fc.constantFrom('api.example', 'api.example:8443', '[::1]:8443'), { nil: undefined });

function connectionNamed(headers: IncomingHttpHeaders): Set<string> {
  const named = new Set<string>();
  const c = headers.connection;
  if (c !== undefined) for (const token of String(c).split(',')) named.add(token.trim().toLowerCase());
  return named;
}

/** Every output name and value is something Node will put on the wire (tokens, no CR/LF/NUL). */
function assertWireSafe(out: Record<string, string | string[] | undefined>): void {
  for (const [name, value] of Object.entries(out)) {
    validateHeaderName(name);
    if (value === undefined) throw new Error(`${name}: undefined value`);
    for (const v of Array.isArray(value) ? value : [value]) {
      validateHeaderValue(name, v);
      if (/[\r\n\0]/.test(v)) throw new Error(`${name}: CR, LF or NUL in ${JSON.stringify(v)}`);
    }
  }
}

t.test('upstream: nothing hop-by-hop, Connection-named, internal or forged; everything else untouched', async (t) => {
  fuzz(
    t,
    'headers.upstream',
    [incoming, socketAddress, authority, ruleSet],
    (headers, socket, auth, { rules, xf }) => {
      const out = upstreamRequestHeaders(headers, socket, auth, rules);
      assertWireSafe(out);
      const named = connectionNamed(headers);
      // Believed from a trusted proxy only when listed; from anyone else never. `x-forwarded-*` lists the family.
      const listed = (name: string) => believed(name) || (xf && rules === rulesXfFamily && name.startsWith('x-forwarded-'));
      const unbelieved = (name: string) =>
        proxyOnly(name) && !SET_BY_SIDECAR.has(name) && !(rules.trustedProxies.has(socket) && listed(name));
      for (const name of Object.keys(out)) {
        if (unbelieved(name)) throw new Error(`proxy-asserted ${name} forwarded though not believed`);
        if (HOP_BY_HOP.includes(name)) throw new Error(`hop-by-hop ${name} forwarded`);
        if (NEVER_FROM_CLIENT.includes(name)) throw new Error(`${name} forwarded from the client`);
        if (isInternal(name)) throw new Error(`internal ${name} forwarded`);
        if (named.has(name) && !SET_BY_SIDECAR.has(name)) throw new Error(`Connection-named ${name} forwarded`);
        if (spellsControlled(name)) throw new Error(`${name}, an underscored spelling of a controlled header, forwarded`);
        if (folds(name)) throw new Error(`${name}, a name CGI servers fold, forwarded`);
      }
      for (const [name, value] of Object.entries(headers)) {
        const strip =
          HOP_BY_HOP.includes(name) ||
          NEVER_FROM_CLIENT.includes(name) ||
          isInternal(name) ||
          named.has(name) ||
          spellsControlled(name) ||
          unbelieved(name) ||
          folds(name);
        if (strip || SET_BY_SIDECAR.has(name)) continue;
        if (out[name] !== value) throw new Error(`end-to-end ${name} changed: ${JSON.stringify(value)} → ${JSON.stringify(out[name])}`);
      }
    },
    { runs: 1000 },
  );
});

t.test('upstream: forwarding headers are the sidecar’s own unless the socket is a trusted proxy', async (t) => {
  fuzz(
    t,
    'headers.forwarding',
    [incoming, socketAddress, authority, ruleSet],
    (headers, socket, auth, { rules, forwarded: listsForwarded, xf: listsXf }) => {
      const out = upstreamRequestHeaders(headers, socket, auth, rules);
      const trusted = rules.trustedProxies.has(socket);
      const xff = headers['x-forwarded-for'];
      const proto = headers['x-forwarded-proto'];
      const host = headers['x-forwarded-host'];
      const expectFor = trusted && xff !== undefined ? `${String(xff)}, ${socket}` : socket;
      if (out['x-forwarded-for'] !== expectFor) throw new Error(`x-forwarded-for ${String(out['x-forwarded-for'])}, expected ${expectFor}`);
      // -Proto and -Host: a trusted proxy's only when listed (the handler checks their form: host.form,
      // proto.form); -Proto lower-cased (a scheme is case-insensitive; review1 F5).
      const expectProto = trusted && listsXf && typeof proto === 'string' ? proto.toLowerCase() : 'https';
      if (out['x-forwarded-proto'] !== expectProto) throw new Error(`x-forwarded-proto ${String(out['x-forwarded-proto'])}`);
      const expectHost = trusted && listsXf && typeof host === 'string' ? host : auth;
      if (out['x-forwarded-host'] !== expectHost)
        throw new Error(`x-forwarded-host ${String(out['x-forwarded-host'])} ≠ ${String(expectHost)}`);
      // Forwarded: as sent only from a trusted proxy with `forwarded` listed; otherwise none (one of
      // Warden's own contradicted X-Forwarded-For: review rt28, F1). X-Real-IP: the client its policy used.
      const client = clientAddressOf(socket, headers, rules);
      if (trusted && listsForwarded && headers.forwarded !== undefined) {
        if (out.forwarded !== headers.forwarded) throw new Error('a believed Forwarded changed');
      } else if (out.forwarded !== undefined) throw new Error(`Forwarded ${String(out.forwarded)} written though not believed`);
      if (out['x-real-ip'] !== (isIP(client) === 0 ? undefined : client))
        throw new Error(`x-real-ip ${String(out['x-real-ip'])} ≠ ${client}`);
      if (out.host !== auth) throw new Error(`host ${String(out.host)} ≠ authority ${String(auth)}`);
    },
    { runs: 1000 },
  );
});

t.test('client address: the socket unless it is a trusted proxy; never a trusted proxy from the header', async (t) => {
  const hop = fc.constantFrom('192.0.2.7', '10.9.9.9', '198.51.100.1', '::1', ' 10.0.0.1 ', '', 'garbage', '2001:db8::2');
  fuzz(
    t,
    'headers.client_address',
    [socketAddress, fc.option(fc.array(hop, { maxLength: 5 }), { nil: undefined })],
    (socket, hops) => {
      const headers: IncomingHttpHeaders = hops === undefined ? {} : { 'x-forwarded-for': hops.join(',') };
      const address = clientAddressOf(socket, headers, rules);
      if (!rules.trustedProxies.has(socket) || hops === undefined) {
        if (address !== socket) throw new Error(`untrusted socket ${socket} but client ${address}`);
        return;
      }
      if (address === UNKNOWN_CLIENT) {
        // Only when the nearest hop that is no trusted proxy is no IP address (docs/adversarial.md 275).
        const nearest = hops
          .map((h) => h.trim())
          .reverse()
          .find((h) => h !== '' && !rules.trustedProxies.has(h));
        if (nearest === undefined || isIP(nearest) !== 0) throw new Error(`"unknown" though the nearest hop is ${nearest}`);
        return;
      }
      if (address !== socket && rules.trustedProxies.has(address)) throw new Error(`client address ${address} is a trusted proxy`);
      if (address !== socket && !hops.map((h) => h.trim()).includes(address))
        throw new Error(`${address} is not a hop of ${hops.join(',')}`);
    },
    { runs: 1000 },
  );
});

t.test('response and egress: nothing hop-by-hop, Connection-named or internal; egress: no Host, no proxy field', async (t) => {
  fuzz(
    t,
    'headers.downstream_egress',
    [egressIncoming],
    (headers) => {
      const named = connectionNamed(headers);
      const down = downstreamResponseHeaders(headers, rules);
      const egress = egressRequestHeaders(headers, rules);
      if ('host' in egress) throw new Error('egress forwards the backend’s Host');
      for (const [label, out] of [
        ['response', down],
        ['egress', egress],
      ] as const) {
        assertWireSafe(out);
        for (const name of Object.keys(out)) {
          if (HOP_BY_HOP.includes(name)) throw new Error(`${label}: hop-by-hop ${name}`);
          if (isInternal(name) || isInternal(name.replaceAll('_', '-'))) throw new Error(`${label}: internal ${name}`);
          if (named.has(name)) throw new Error(`${label}: Connection-named ${name}`);
          if (label === 'egress' && proxyOnly(name)) throw new Error(`egress: proxy-asserted ${name}`);
          if (label === 'egress' && folds(name)) throw new Error(`egress: ${name}, a name CGI servers fold`);
        }
        for (const [name, value] of Object.entries(headers)) {
          const internal = isInternal(name) || isInternal(name.replaceAll('_', '-'));
          if (HOP_BY_HOP.includes(name) || internal || named.has(name)) continue;
          if (label === 'egress' && (name === 'host' || proxyOnly(name) || folds(name))) continue;
          if (out[name] !== value) throw new Error(`${label}: ${name} changed or lost`);
        }
      }
    },
    { runs: 1000 },
  );
});

/** Raw header lines, and the headers object Node builds from them (first singleton wins, others joined). */
const NODE_DROPS_DUPLICATES = new Set(['host', 'content-length', 'content-type', 'authorization', 'user-agent', 'referer', 'from']);
const framingName = fc.constantFrom(
  'Transfer-Encoding',
  'transfer-encoding',
  'Content-Length',
  'Host',
  'HOST',
  'Authorization',
  'Content-Type',
  'Accept',
  'X-A',
);
const framingValue = fc.oneof(
  fc.constantFrom(
    'chunked',
    'Chunked',
    'CHUNKED',
    'gzip, chunked',
    'chunked, chunked',
    'identity',
    '0',
    '10',
    '+5',
    '-1',
    '1, 2',
    '0x10',
    '1e3',
    ' 7',
    '999999999999999',
    '9999999999999999',
    '',
  ),
  fc.stringMatching(/^[0-9]{1,17}$/),
  fieldValue,
);
const rawLines = fc.array(fc.tuple(framingName, framingValue), { maxLength: 6 });

function nodeHeaders(lines: readonly [string, string][]): IncomingHttpHeaders {
  const headers: Record<string, string> = {};
  for (const [rawName, rawValue] of lines) {
    const name = rawName.toLowerCase();
    const value = rawValue.trim();
    if (headers[name] === undefined) headers[name] = value;
    else if (!NODE_DROPS_DUPLICATES.has(name)) headers[name] = `${headers[name]}, ${value}`;
  }
  return headers;
}

t.test('framing: refused exactly for the ambiguous shapes, with ERR_REQUEST_AMBIGUOUS; never throws', async (t) => {
  const SINGLETONS = ['host', 'content-length', 'transfer-encoding', 'authorization', 'content-type'];
  fuzz(
    t,
    'headers.framing',
    [rawLines],
    (lines) => {
      const headers = nodeHeaders(lines);
      const raw = lines.flatMap(([n, v]) => [n, v.trim()]);
      const r = checkFraming(headers, raw);
      const te = headers['transfer-encoding'];
      const cl = headers['content-length'];
      const counts = new Map<string, number>();
      for (const [n] of lines) counts.set(n.toLowerCase(), (counts.get(n.toLowerCase()) ?? 0) + 1);
      const expectRefusal =
        (te !== undefined && (cl !== undefined || te.toLowerCase() !== 'chunked')) ||
        (cl !== undefined && !/^\d{1,15}$/.test(cl)) ||
        SINGLETONS.some((n) => (counts.get(n) ?? 0) > 1);
      if (r !== undefined && !(r instanceof WardenError && r.code === 'ERR_REQUEST_AMBIGUOUS' && r.rule?.startsWith('framing.'))) {
        throw new Error(`unexpected result ${String(r)}`);
      }
      if (expectRefusal !== (r !== undefined))
        throw new Error(`${JSON.stringify(raw)}: expected ${expectRefusal ? 'refusal' : 'acceptance'}`);
    },
    { runs: 2000 },
  );
});
