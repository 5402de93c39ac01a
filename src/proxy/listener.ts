/**
 * The inbound listener: one TLS server that negotiates h2 or http/1.1 by ALPN and hands each socket
 * to an HTTP/2 server or an HTTP/1.1 server. Measured on this machine, node:http2 with allowHTTP1
 * serves HTTP/1.1 at 0.8–0.95× node:https; dispatching by ALPN keeps HTTP/1.1 on Node's fastest path.
 *
 * Limits: handshake, header, request and idle timeouts; header size and count; concurrent streams;
 * connections. Drain: stop accepting, let in-flight requests finish, close keep-alive connections
 * (HTTP/1.1 `Connection: close`, HTTP/2 GOAWAY), destroy what is left after the grace period.
 */
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
import type { EventBus } from '../telemetry/events.js';
import { readPeerIdentity } from '../mesh/peer-identity.js';
import type { RevocationList } from '../mesh/revocation-list.js';
import { guardStream, H2Request, H2Response } from './h2-exchange.js';
import { trackSession, type SessionTracker } from './h2-session-tracker.js';

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
  /** Replaces certificate/key/CA for new handshakes; established connections are untouched. */
  setSecureContext(tls: TlsFilesConfig, material: TlsMaterial): void;
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
  /** Peer checks at the handshake: the mesh's trust domain and CRL (both absent without mesh). */
  peers?: { trustDomain: string | undefined; revocations: RevocationList | undefined };
}

export function secureContextOptions(tls: TlsFilesConfig, material: TlsMaterial): SecureContextOptions {
  return {
    cert: material.cert,
    key: material.key,
    passphrase: material.passphrase,
    ca: material.clientCa,
    minVersion: tls.min_version,
    ciphers: TLS12_CIPHERS,
    ecdhCurve: 'X25519:P-256:P-384',
    honorCipherOrder: true,
  };
}

const TLS_SOCKET = Symbol('warden.tlsSocket');
type SessionWithSocket = Http2Session & { [TLS_SOCKET]?: TLSSocket };

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
    options.onRequest,
  );
  // One more than allowed, so the handler sees an excess and answers 431 (Node would silently truncate).
  h1.maxHeadersCount = limits.max_header_count + 1;
  h1.maxRequestsPerSocket = limits.max_requests_per_connection;
  // No socket inactivity timeout: it would also cut requests that wait on a slow backend. Idle
  // keep-alive connections close after keepAliveTimeout; slow clients meet headers/request timeouts.
  h1.timeout = 0;
  // `Expect: 100-continue`: handled like any request, the handler sends 100 only once the body is
  // needed (Node would send it at once, inviting the body of a request refused on its headers).
  h1.on('checkContinue', options.onRequest);
  h1.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => rescue.clientError(err, socket));
  // Without these listeners Node closes an HTTP/1.1 CONNECT unanswered and answers an h2 one with a bare 405.
  h1.on('connect', (_req: IncomingMessage, socket: Socket) => rescue.refuseTunnel(socket, NO_TUNNEL));
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
  // did for us is done here: CONNECT, Expect, and the stream's error and abort (guardStream).
  h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    guardStream(stream);
    const socket = (stream.session as SessionWithSocket)[TLS_SOCKET];
    if (socket === undefined) return void stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
    const req = new H2Request(stream, headers, rawHeaders, socket);
    const res = new H2Response(stream);
    if (req.method === 'CONNECT') {
      return rescue.respond(tunnelRefused(NO_TUNNEL), { clientAddress: socket.remoteAddress ?? '', method: 'CONNECT' }, res);
    }
    const expect = headers.expect;
    if (expect !== undefined) {
      // As node:http answers any other expectation: 417. 100 Continue is the handler's, once the body is needed.
      if (expect !== '100-continue') return void res.writeHead(417, {}).end();
    }
    options.onRequest(req, res);
  });
  const sessions = new Set<SessionTracker>();
  // Node creates the session synchronously inside emit('connection'): this is its TLS socket.
  let connecting: TLSSocket | undefined;
  h2.on('session', (session: Http2Session) => {
    // Never without one (see above); such a session could serve no stream anyway.
    if (connecting === undefined) return void session.destroy();
    (session as SessionWithSocket)[TLS_SOCKET] = connecting;
    const tracker = trackSession(session, connecting, {
      idleMs: limits.idle_timeout,
      sendTimeoutMs: limits.send_timeout,
      onSendTimeout: (stream) =>
        events.emit('warden.http.limit_exceeded', {
          'client.address': stream.session?.socket?.remoteAddress ?? '',
          'warden.rule': 'limits.send_timeout',
          'error.type': 'ERR_SEND_TIMEOUT',
          'warden.detail': `The client read nothing of an ended response for ${limits.send_timeout} ms; the stream is reset.`,
        }),
    });
    sessions.add(tracker);
    session.once('close', () => sessions.delete(tracker));
  });

  const sockets = new Set<TLSSocket>();
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
    } else h1.emit('connection', socket);
  });
  /**
   * Reads the caller's certificate once per connection. Revoked certificates are refused here on
   * every route; with `require`, so are certificates without a valid SPIFFE ID of our trust domain
   * (OpenSSL has already refused missing, expired and untrusted ones).
   */
  const admitPeer = (socket: TLSSocket): boolean => {
    const peer = readPeerIdentity(socket, options.peers?.trustDomain);
    const revoked = peer.serial !== undefined && options.peers?.revocations?.isRevoked(peer.serial) === true;
    if (!revoked && (!requireCertificate || peer.verified)) return true;
    events.emit(revoked ? 'warden.tls.peer_revoked' : 'warden.tls.peer_denied', {
      'client.address': socket.remoteAddress ?? '',
      'error.type': revoked ? 'CERT_REVOKED' : (peer.error ?? 'UNVERIFIED'),
      ...(peer.spiffeId ? { 'warden.peer.id': peer.spiffeId } : {}),
      ...(peer.serial ? { 'warden.cert.serial': peer.serial } : {}),
    });
    socket.destroy();
    return false;
  };
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    // When Node refuses a client certificate after the handshake it only says "socket hang up";
    // the verification result it acted on is on the socket.
    const reason = socket.authorizationError ? String(socket.authorizationError) : (err.code ?? 'ERR_TLS');
    events.emit('warden.tls.handshake_failed', {
      'client.address': socket.remoteAddress ?? '',
      'error.type': reason,
      'warden.detail': err.message.slice(0, 200),
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
    setSecureContext(tls, material) {
      server.setSecureContext(secureContextOptions(tls, material));
    },
    async drain(graceMs) {
      server.close();
      h1.closeIdleConnections();
      for (const session of sessions) session.closeWhenIdle();
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
