/**
 * The inbound listener: one TLS server that negotiates h2 or http/1.1 by ALPN and hands each socket
 * to an HTTP/2 server or an HTTP/1.1 server. Measured on this machine, node:http2 with allowHTTP1
 * serves HTTP/1.1 at 0.8–0.95× node:https; dispatching by ALPN keeps HTTP/1.1 on Node's fastest path.
 *
 * Limits: handshake, header, request and idle timeouts; header size and count; concurrent streams;
 * pipelined requests and unread responses (h1-connection.ts); connections; failed handshakes per
 * client network (handshake-admission.ts: a network that keeps failing them is refused new
 * connections before any TLS processing). Drain: stop accepting, let in-flight requests finish, close keep-alive connections
 * (HTTP/1.1 `Connection: close`, HTTP/2 GOAWAY), destroy what is left after the grace period.
 *
 * A new secure context that trusts fewer client CAs (a reload that drops one from `client_ca`, a mesh
 * trust bundle without an old root) also ends the open connections whose client certificate chains
 * to a CA no longer trusted (any CA of any of its paths: client-trust.ts): OpenSSL checked the chain
 * once, at their handshake. Their requests from then on are refused, and they are closed the same
 * graceful way. (Sessions cannot be resumed across the change: Node makes new ticket keys with every
 * secure context; client-ca-reload.test.ts checks it.)
 */
import type { X509Certificate } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  constants as http2Constants,
  createServer as createHttp2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContextOptions, type TLSSocket } from 'node:tls';
import type { TlsMaterial } from '../config/load.js';
import type { LimitsConfig, TlsFilesConfig } from '../config/types.js';
import { tunnelRefused, type Rescue } from '../pipeline/rescue.js';
import { WardenError } from '../errors.js';
import type { EventBus } from '../telemetry/events.js';
import { chainRevoked, peerIdAttributes, peerOf, presentedPeerId, readPeerIdentity, verifiedPeerId } from '../mesh/peer-identity.js';
import { ClientTrust } from './client-trust.js';
import type { RevocationList } from '../mesh/revocation-list.js';
import { guardStream, H2Request, H2Response } from './h2-exchange.js';
import { trackSession, type SessionTracker } from './h2-session-tracker.js';
import { closeConnectionAfter, h1ConnectionOf, trackH1Connection } from './h1-connection.js';
import { lingerLimits } from './linger.js';
import {
  admitBeforeTls,
  createHandshakeAdmission,
  failedHandshakeOf,
  rememberClientAddresses,
  throttledAttributes,
} from '../net/handshake-admission.js';

/** TLS 1.2 suites: forward-secret AEAD only. TLS 1.3 suites are all acceptable and left to OpenSSL. */
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

const NO_TUNNEL = 'CONNECT opens no tunnel here: the request target must be an absolute path such as "/orders?id=1".';

export interface InboundListener {
  readonly address: AddressInfo;
  /**
   * Replaces certificate/key/CA for new handshakes. Established connections are untouched, except
   * when a client CA is no longer trusted: those whose client certificate chains to it are refused
   * further requests and closed (whatever is still open after `graceMs` is destroyed). Returns how
   * many were.
   */
  setSecureContext(tls: TlsFilesConfig, material: TlsMaterial, graceMs: number): number;
  /** Stops accepting, waits for in-flight requests up to `graceMs`, then closes everything. */
  drain(graceMs: number): Promise<void>;
  readonly connections: number;
}

export interface InboundListenerOptions {
  host: string;
  port: number;
  tls: TlsFilesConfig;
  material: TlsMaterial;
  limits: LimitsConfig;
  onRequest: (req: IncomingMessage | H2Request, res: ServerResponse | H2Response) => void;
  rescue: Rescue;
  events: EventBus;
  /**
   * Peer checks at the handshake: the mesh's trust domain and CRL (both absent without mesh). Without
   * mesh, the client_crl in force is `material.clientCrl`.
   */
  peers?: { trustDomain: string | undefined; revocations: RevocationList | undefined };
}

export function secureContextOptions(tls: TlsFilesConfig, material: TlsMaterial): SecureContextOptions {
  return {
    cert: material.cert,
    key: material.key,
    passphrase: material.passphrase,
    // Never Node's public roots: without a client CA (a reload to `client_certificates: none`, which
    // takes effect only on restart, with client_ca gone) OpenSSL fell back on them, and any publicly
    // issued client certificate would have passed the handshake. None is trusted then.
    ca: material.clientCa ?? [],
    minVersion: tls.min_version,
    ciphers: TLS12_CIPHERS,
    ecdhCurve: 'X25519:P-256:P-384',
    honorCipherOrder: true,
  };
}

/** The certificates a client presented, leaf first (its chain as Node gives it, on the first read only). */
function presentedChain(leaf: X509Certificate | undefined): X509Certificate[] {
  const chain: X509Certificate[] = [];
  // A certificate sent twice (`cat cert.pem fullchain.pem`: the leaf, then the leaf again) is skipped,
  // not the end: stopping there left `[leaf]`, read as a resumed session, and client_crl refused an
  // honest chain (review rt28-2, F1). A root links to itself: the walk is bounded by steps too.
  let cert = leaf;
  for (let step = 0; cert !== undefined && chain.length < 10 && step < 20; step++, cert = cert.issuerCertificate) {
    const fingerprint = cert.fingerprint256;
    if (!chain.some((c) => c.fingerprint256 === fingerprint)) chain.push(cert);
  }
  return chain;
}

/** Why a connection's requests are refused once its client CA is no longer trusted. */
const ANCHOR_REMOVED = 'WARDEN_TRUST_ANCHOR_REMOVED';

const TLS_SOCKET = Symbol('warden.tlsSocket');
type SessionWithSocket = Http2Session & { [TLS_SOCKET]?: TLSSocket };

/**
 * Per connection, on its socket (as its peer identity is): the client CAs its certificate's verified
 * paths rely on (ClientTrust.classify; empty: not known), whether it is being closed for one of them.
 */
const ANCHORS = Symbol('warden.clientAnchors');
const DISTRUSTED = Symbol('warden.distrusted');
type TrustedSocket = TLSSocket & { [ANCHORS]?: readonly string[]; [DISTRUSTED]?: true };
/** Connections whose client certificate chains to a CA no longer trusted: closing, every request refused. */
const distrusted = (socket: unknown): boolean => (socket as TrustedSocket)[DISTRUSTED] === true;

export async function startInboundListener(options: InboundListenerOptions): Promise<InboundListener> {
  const { limits, rescue, events } = options;

  const h1 = createHttpServer(
    {
      maxHeaderSize: limits.max_header_bytes,
      headersTimeout: limits.headers_timeout,
      requestTimeout: limits.request_timeout,
      keepAliveTimeout: limits.idle_timeout,
      connectionsCheckingInterval: Math.max(250, Math.min(5000, Math.floor(limits.headers_timeout / 4))),
      requireHostHeader: false, // checked by the handler, which answers with problem+json
    },
    (req, res) => onH1Request(req, res),
  );
  // One more than allowed, so the handler sees an excess and answers 431 (Node would silently truncate).
  h1.maxHeadersCount = limits.max_header_count + 1;
  // Not h1.maxRequestsPerSocket: h1-connection.ts counts (maxRequests below).
  // No socket inactivity timeout: it would also cut requests that wait on a slow backend. Idle
  // keep-alive connections close after keepAliveTimeout; slow clients meet headers/request timeouts.
  h1.timeout = 0;
  // `Expect: 100-continue`: handled like any request, the handler sends 100 only once the body is
  // needed (Node would send it at once, inviting the body of a request refused on its headers).
  h1.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => onH1Request(req, res));
  // Any other expectation: the handler refuses it (417) through the rescue; Node's own 417 was bare.
  h1.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => onH1Request(req, res));
  h1.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => rescue.clientError(err, socket));
  // Without these listeners Node closes an HTTP/1.1 CONNECT unanswered and answers an h2 one with a bare 405.
  h1.on('connect', (_req: IncomingMessage, socket: Socket) => rescue.refuseTunnel(socket, NO_TUNNEL));
  // Without it Node serves an upgrade request as a plain one and drops what was pipelined after it.
  h1.on('upgrade', (req: IncomingMessage, socket: Socket) => rescue.refuseUpgrade(req, socket));
  // A client may half-close once its request is sent (`printf … | openssl s_client`, nc, scripts
  // that shut down their side): the response still goes out, then the connection closes (RFC 9112
  // §9.6). Node's default cut such a request unanswered. Needs the TLS
  // sockets to allow half-open too (below).
  (h1 as typeof h1 & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true; // node:http's own switch, not in its types
  // Connections are injected, never accepted, so 'listening' is never emitted by Node; it is what
  // starts the checks behind headersTimeout / requestTimeout and the idle-connection list.
  h1.emit('listening');

  const h2 = createHttp2Server({
    // Node/nghttp2 hard limits sit above the configured ones: the handler refuses the excess with a
    // clean 431; only gross abuse meets the protocol-level reset.
    maxHeaderListPairs: limits.max_header_count * 2 + 8,
    maxSessionMemory: 32,
    settings: {
      maxConcurrentStreams: limits.max_concurrent_streams,
      maxHeaderListSize: limits.max_header_bytes * 2,
    },
  });
  // The core stream API, not the compatibility one (h2-exchange.ts says why); what the compat layer
  // did for us is done here: CONNECT and the stream's error and abort (guardStream); Expect is the handler's.
  h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    guardStream(stream);
    const socket = (stream.session as SessionWithSocket)[TLS_SOCKET];
    if (socket === undefined) return void stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
    const req = new H2Request(stream, headers, rawHeaders, socket);
    const res = new H2Response(stream);
    if (distrusted(socket)) return refuseDistrusted(socket, req.method, res);
    if (req.method === 'CONNECT') {
      return rescue.respond(tunnelRefused(NO_TUNNEL), { clientAddress: socket.remoteAddress ?? '', method: 'CONNECT' }, res);
    }
    // Expect is the handler's: 100 once the body is needed, 417 for anything else (expectation.ts).
    options.onRequest(req, res);
  });
  const sessions = new Map<TLSSocket, SessionTracker>();
  const refuseDistrusted = (socket: TLSSocket, method: string | undefined, res: ServerResponse | H2Response) => {
    const refusal = new WardenError('ERR_PEER_CERT_INVALID', {
      rule: `tls:${ANCHOR_REMOVED}`,
      detail: 'The CA of this client certificate is no longer trusted; reconnect with a certificate of a trusted CA.',
    });
    const peer = peerOf(socket);
    rescue.respond(
      refusal,
      { clientAddress: socket.remoteAddress ?? '', method, peerId: verifiedPeerId(peer), presentedPeerId: presentedPeerId(peer) },
      res,
    );
  };
  /** A request started (h1-connection.ts may have held it back): checked against the trust of its connection now. */
  const startH1Request = (req: IncomingMessage, res: ServerResponse) => {
    if (!distrusted(req.socket)) return options.onRequest(req, res);
    closeConnectionAfter(res, req.socket); // Connection: close, and nothing after it started
    refuseDistrusted(req.socket as TLSSocket, req.method, res);
  };
  // Through the connection's tracker: pipelined requests wait there beyond max_pipelined_requests.
  const onH1Request = (req: IncomingMessage, res: ServerResponse) => {
    const connection = h1ConnectionOf(req.socket);
    if (connection === undefined) startH1Request(req, res);
    else connection.request(req, res);
  };
  /**
   * Closes an HTTP/1.1 connection: now if idle, else after the answers of the requests started on it
   * (`Connection: close` on the last if not yet sent). Closing after the response writing dropped
   * the answers of requests pipelined behind it, which the backend had run.
   */
  const closeH1 = (socket: TLSSocket) => {
    const connection = h1ConnectionOf(socket);
    if (connection !== undefined) return connection.closeAfterStarted();
    // node:http's response in progress on the connection (as in rescue.clientError); none when idle.
    const inProgress = (socket as TLSSocket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (!inProgress) return void socket.destroy();
    if (!inProgress.headersSent) inProgress.shouldKeepAlive = false;
    else inProgress.once('finish', () => socket.end());
  };
  // Node creates the session synchronously inside emit('connection'): this is its TLS socket.
  let connecting: TLSSocket | undefined;
  h2.on('session', (session: Http2Session) => {
    // Never without one (see above); such a session could serve no stream anyway.
    if (connecting === undefined) return void session.destroy();
    (session as SessionWithSocket)[TLS_SOCKET] = connecting;
    const socket = connecting;
    const tracker = trackSession(session, socket, {
      idleMs: limits.idle_timeout,
      sendTimeoutMs: limits.send_timeout,
      onSendTimeout: (stream) =>
        events.emit('warden.http.limit_exceeded', {
          'client.address': stream.session?.socket?.remoteAddress ?? '',
          'warden.rule': 'limits.send_timeout',
          'error.type': 'ERR_SEND_TIMEOUT',
          'warden.detail': `The client read nothing of an ended response for ${limits.send_timeout} ms; the stream is reset.`,
        }),
      onUnresponsive: (openStreams) =>
        events.emit('warden.http.limit_exceeded', {
          'client.address': socket.remoteAddress ?? '',
          'warden.rule': 'h2.ping',
          'error.type': 'ERR_CLIENT_UNRESPONSIVE',
          'warden.detail': `The HTTP/2 session moved no byte and answered no PING with ${openStreams} streams open; it is closed.`,
        }),
    });
    sessions.set(socket, tracker);
    session.once('close', () => sessions.delete(socket));
  });

  const h1Limits = {
    maxPipelined: limits.max_pipelined_requests,
    maxRequests: limits.max_requests_per_connection,
    linger: lingerLimits(limits),
    sendTimeoutMs: limits.send_timeout,
    onSendTimeout: (socket: TLSSocket) =>
      events.emit('warden.http.limit_exceeded', {
        'client.address': socket.remoteAddress ?? '',
        'warden.rule': 'limits.send_timeout',
        'error.type': 'ERR_SEND_TIMEOUT',
        'warden.detail': `The client read nothing of an ended response for ${limits.send_timeout} ms; the connection is closed.`,
      }),
  };

  const sockets = new Set<TLSSocket>();
  /** The client CAs the current secure context trusts. */
  // File mode: callers' issuers are read for client_crl, which a reload may add at any time.
  const fileMode = options.peers?.trustDomain === undefined;
  let clientTrust = new ClientTrust(options.material.clientCa, fileMode);
  let clientCrl = options.material.clientCrl;
  const server = createTlsServer({
    ...secureContextOptions(options.tls, options.material),
    ALPNProtocols: ['h2', 'http/1.1'],
    handshakeTimeout: limits.handshake_timeout,
    // Nagle off, as node:https sets it and node:tls does not: a response written in two segments
    // otherwise waits for the caller's delayed ACK (up to 40 ms on Linux) before its second.
    noDelay: true,
    // HTTP/1.1 answers a half-closed request (h1.httpAllowHalfOpen); h2 sockets end with their client (below).
    allowHalfOpen: true,
    requestCert: options.tls.client_certificates !== 'none',
    rejectUnauthorized: options.tls.client_certificates === 'require',
  });
  server.maxConnections = limits.max_connections;
  const failures = limits.handshake_failures;
  const admission =
    failures.burst > 0
      ? createHandshakeAdmission({
          burst: failures.burst,
          perMs: failures.per,
          onThrottled: (period) =>
            events.emit(
              'warden.tls.handshake_throttled',
              throttledAttributes(period, 'limits.handshake_failures', failures.burst, failures.per),
            ),
        })
      : undefined;
  if (admission) admitBeforeTls(server, admission);
  rememberClientAddresses(server);
  const requireCertificate = options.tls.client_certificates === 'require';
  const peerChecks = options.tls.client_certificates !== 'none';
  server.on('secureConnection', (socket: TLSSocket) => {
    if (peerChecks && !admitPeer(socket)) return;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    if (socket.alpnProtocol === 'h2') {
      // An h2 client that half-closes is done with the session: its side ends with it, as before.
      socket.allowHalfOpen = false;
      connecting = socket;
      h2.emit('connection', socket);
      connecting = undefined;
    } else {
      trackH1Connection(socket, h1Limits, startH1Request);
      h1.emit('connection', socket);
    }
  });
  /**
   * Reads the caller's certificate once per connection. Revoked certificates are refused here on
   * every route; with `require`, so are certificates without a valid SPIFFE ID of our trust domain
   * (OpenSSL has already refused missing, expired and untrusted ones). A certificate client_crl
   * revokes is let through to be answered 401 ERR_PEER_REVOKED on every request (src/proxy/handler.ts
   * checks each against the client_crl of its configuration, so a reload reaches open connections).
   */
  const admitPeer = (socket: TLSSocket): boolean => {
    const leaf = socket.getPeerX509Certificate();
    const trust = leaf !== undefined && socket.authorized ? clientTrust.classify(presentedChain(leaf)) : undefined;
    const peer = readPeerIdentity(socket, options.peers?.trustDomain, leaf, trust?.chain);
    // Empty when not known: a resumed session, whose client sent no chain, of an intermediate no longer remembered.
    if (trust !== undefined) (socket as TrustedSocket)[ANCHORS] = trust.anchors;
    const revoked = peer.serial !== undefined && options.peers?.revocations?.isRevoked(peer.serial) === true;
    const admitted = !revoked && (!requireCertificate || peer.verified);
    // A failed handshake for admission control: a refused caller, under `request` a chain OpenSSL
    // could not verify (the connection goes on, unverified, but the chain cost its checks), and a
    // certificate client_crl revokes (every request it sends is refused).
    const refusedLater = peer.presented && (!socket.authorized || (clientCrl !== undefined && chainRevoked(peer, clientCrl)));
    if (admission && (!admitted || refusedLater)) admission.failed(socket.remoteAddress);
    if (admitted) return true;
    events.emit(revoked ? 'warden.tls.peer_revoked' : 'warden.tls.peer_denied', {
      'client.address': socket.remoteAddress ?? '',
      'error.type': revoked ? 'CERT_REVOKED' : (peer.error ?? 'UNVERIFIED'),
      ...peerIdAttributes(peer),
      ...(peer.serial ? { 'warden.cert.serial': peer.serial } : {}),
    });
    socket.destroy();
    return false;
  };
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    // When Node refuses a client certificate after the handshake it only says "socket hang up";
    // the verification result it acted on is on the socket.
    const reason = socket.authorizationError ? String(socket.authorizationError) : (err.code ?? 'ERR_TLS');
    const { address, probe } = failedHandshakeOf(err, socket);
    if (admission && !probe) admission.failed(address);
    events.emit('warden.tls.handshake_failed', {
      'client.address': address ?? '',
      'error.type': reason,
      'warden.detail': handshakeFailure(err),
    });
    // Node leaves the socket open after a handshake timeout when this event has a listener.
    socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  return {
    address: server.address() as AddressInfo,
    get connections() {
      return sockets.size;
    },
    setSecureContext(tls, material, graceMs) {
      server.setSecureContext(secureContextOptions(tls, material));
      const previous = clientTrust;
      clientTrust = new ClientTrust(material.clientCa, fileMode, previous);
      clientCrl = material.clientCrl;
      const trusted = clientTrust.fingerprints;
      if (![...previous.fingerprints].some((fingerprint) => !trusted.has(fingerprint))) return 0; // none removed: nothing to re-check
      let closed = 0;
      for (const socket of sockets as Set<TrustedSocket>) {
        if (socket[ANCHORS]?.length === 0) {
          // Its CAs were not known at the handshake: looked for again, against the new trust. Not
          // found there, the chain cannot be shown to reach a CA still trusted, and it is closed.
          const leaf = socket.getPeerX509Certificate();
          socket[ANCHORS] = leaf ? clientTrust.classify([leaf]).anchors : [];
        }
        const anchors = socket[ANCHORS];
        // Closed when any CA it relies on goes: with several paths, the one OpenSSL took is not known.
        if (anchors === undefined || socket[DISTRUSTED] || (anchors.length > 0 && anchors.every((a) => trusted.has(a)))) continue;
        socket[DISTRUSTED] = true;
        closed++;
        const peer = peerOf(socket);
        events.emit('warden.tls.peer_denied', {
          'client.address': socket.remoteAddress ?? '',
          'error.type': ANCHOR_REMOVED,
          ...peerIdAttributes(peer),
          ...(peer.serial ? { 'warden.cert.serial': peer.serial } : {}),
        });
        const session = sessions.get(socket);
        if (session) session.closeNow();
        else closeH1(socket);
        setTimeout(() => socket.destroy(), graceMs).unref();
      }
      return closed;
    },
    async drain(graceMs) {
      server.close();
      admission?.close();
      // The last answer on each HTTP/1.1 connection says `Connection: close` (proxy.md § Lifecycle):
      // one in flight went out keep-alive, and the caller's next request met the idle sweep below.
      for (const socket of sockets) if (socket.alpnProtocol !== 'h2') h1ConnectionOf(socket)?.drain();
      h1.closeIdleConnections();
      for (const session of sessions.values()) session.closeWhenIdle();
      const deadline = Date.now() + graceMs;
      while (sockets.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        h1.closeIdleConnections();
      }
      for (const socket of sockets) socket.destroy();
      h1.close(() => undefined);
    },
  };
}

/**
 * What a failed handshake's event says of it: OpenSSL's reason ("unsupported protocol"), not its
 * whole message, which opens with the failing thread's handle — an address inside the process,
 * different in each (ASLR) — and ends with a source path and a newline (red team 29); Node's own
 * errors ("socket disconnected before…") as they are. White space folded, 200 characters at most.
 */
function handshakeFailure(err: NodeJS.ErrnoException & { reason?: unknown }): string {
  const text = typeof err.reason === 'string' && err.reason !== '' ? err.reason : err.message;
  return text.replace(/\s+/g, ' ').trim().slice(0, 200);
}
