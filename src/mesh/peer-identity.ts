/**
 * Who is calling: the verified client certificate of a connection, read once after the handshake
 * and kept on the socket, so every request on that connection (HTTP/1.1 keep-alive or h2 streams)
 * finds it with one property read.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import { canonicalSerial } from '../net/serial.js';
import type { TLSSocket } from 'node:tls';
import { isReservedSpiffePath, parseSpiffeId, spiffeIdOfSubjectAltName } from '../net/spiffe-id.js';

export interface PeerIdentity {
  /** A certificate was presented. */
  readonly presented: boolean;
  /**
   * It chains to the trust bundle and is within its validity (OpenSSL's verdict at handshake) and,
   * with mesh, carries a SPIFFE ID of our trust domain.
   */
  readonly verified: boolean;
  /**
   * Why it is not verified (OpenSSL code such as CERT_HAS_EXPIRED, WARDEN_NO_SPIFFE_ID,
   * WARDEN_CA_CERTIFICATE, WARDEN_RESERVED_IDENTITY).
   */
  readonly error: string | undefined;
  /** The certificate's single SPIFFE ID URI SAN. */
  readonly spiffeId: string | undefined;
  /** Serial, canonical hex (see canonicalSerial in src/ca/pki.ts). */
  readonly serial: string | undefined;
  /**
   * Its path to a root of client_ca, as client_crl entries name certificates (src/net/client-crl.ts):
   * for the certificate itself and each CA certificate above it (not the self-signed root), its
   * issuer (`issuerKeyOf`) and its serial — serials are unique per issuer only. Read once at the
   * handshake (src/proxy/listener.ts); empty with mesh, and when no path was found (client_crl then
   * refuses it: CHAIN_UNTRACED).
   */
  readonly chain: readonly ChainLink[];
  /** SHA-256 of the certificate (DER), hex: X-Forwarded-Client-Cert `Hash`, RFC 8705 `x5t#S256` source. */
  readonly sha256: string | undefined;
  /**
   * The end of the certificate's validity (ms epoch; Infinity without one). OpenSSL checks it only
   * in a full handshake: a resumed session, or a connection kept open, outlives it, so requests
   * check it too (peer-authz.ts), and a revoked certificate dropped from the CRL once expired stays
   * refused.
   */
  readonly notAfter: number;
}

/** A certificate of a peer's chain: its issuer, as `issuerKeyOf` names it, and its serial (canonical hex). */
export interface ChainLink {
  readonly issuer: string;
  readonly serial: string;
}

/** Whether the peer's certificate has expired at `now`. */
export const peerExpired = (peer: PeerIdentity, now = Date.now()): boolean => now >= peer.notAfter;

/** What the peer's revocation is looked up in per request: the client_crl in force (src/net/client-crl.ts). */
export interface PeerRevocations {
  revokes(issuer: string | undefined, serial: string | undefined): boolean;
}

/**
 * Why a verified certificate is refused while client_crl is in force when its path to client_ca is
 * not known (ClientTrust: a resumed session of an intermediate not remembered, a chain too costly
 * to search): nothing of it could be checked, and a revoked intermediate would pass.
 */
export const CHAIN_UNTRACED = 'WARDEN_CHAIN_UNTRACED';

/** Whether `revocations` lists the peer's certificate or a CA certificate of its chain (1–3 lookups); true for a chain not traced. */
export function chainRevoked(peer: PeerIdentity, revocations: PeerRevocations): boolean {
  for (const link of peer.chain) if (revocations.revokes(link.issuer, link.serial)) return true;
  return peer.chain.length === 0;
}

/**
 * The peer as a request sees it: a certificate that has expired since its handshake (a kept-alive
 * connection or a resumed session outlives it) is no longer verified, for every stage that asks —
 * a mutualTLS security requirement, a certificate-bound token, the minted token's `cnf`, the rate
 * limit's peer key, trusted trace context. Only the peers stage looked at the expiry: an OpenAPI
 * `mutualTLS` operation served an expired certificate on an open connection (docs/adversarial.md 210).
 * Likewise one that `revocations` (the client_crl of the request's configuration) lists, or one
 * a CA certificate of whose chain it lists (a revoked intermediate), with `CERT_REVOKED`, and one
 * whose chain was not traced, with CHAIN_UNTRACED: per request, so a reload that adds a revocation reaches open connections, and one
 * that removes it (a mistake undone) frees them. A Date.now() and, with client_crl, one lookup per
 * certificate of the chain (1–3) per request for a verified peer; a copy per request only once it has lapsed or is revoked (such
 * requests are refused: src/proxy/handler.ts).
 */
export function peerNow(peer: PeerIdentity, revocations?: PeerRevocations, now = Date.now()): PeerIdentity {
  if (!peer.verified) return peer;
  if (now >= peer.notAfter) return { ...peer, verified: false, error: 'CERT_HAS_EXPIRED' };
  if (revocations !== undefined && chainRevoked(peer, revocations))
    return { ...peer, verified: false, error: peer.chain.length === 0 ? CHAIN_UNTRACED : 'CERT_REVOKED' };
  return peer;
}

const PEER = Symbol('warden.peer');
/** The identity of a connection that presented no certificate. */
export const NO_PEER: PeerIdentity = Object.freeze({
  presented: false,
  verified: false,
  error: 'NO_CERTIFICATE',
  spiffeId: undefined,
  serial: undefined,
  chain: Object.freeze([]),
  sha256: undefined,
  notAfter: Infinity,
});

type WithPeer = { [PEER]?: PeerIdentity };

/**
 * Reads the peer certificate of a freshly handshaken socket and remembers the result on it. `cert`,
 * when the caller has read it already: on a server, Node gives the chain the client sent
 * (`issuerCertificate`) only the first time it is read. `chain`: see PeerIdentity.chain.
 */
export function readPeerIdentity(
  socket: TLSSocket,
  trustDomain: string | undefined,
  cert: X509Certificate | undefined = socket.getPeerX509Certificate(),
  chain: readonly ChainLink[] = [],
): PeerIdentity {
  let peer: PeerIdentity = NO_PEER;
  if (cert) {
    const spiffeId = spiffeIdOfSubjectAltName(cert.subjectAltName);
    const notAfter = Date.parse(cert.validTo);
    // With mesh, a caller is a workload of our trust domain; in file mode any trusted certificate is.
    // OpenSSL accepts a CA certificate (basicConstraints CA:true) as a client's leaf; a caller is
    // never a CA, and a CA key presenting itself would otherwise pass as any workload.
    const error = !socket.authorized
      ? String(socket.authorizationError ?? 'UNVERIFIED')
      : // A resumed session is "authorized" by the handshake it resumes, whatever the time now.
        !(Date.now() < notAfter)
        ? 'CERT_HAS_EXPIRED'
        : cert.ca
          ? 'WARDEN_CA_CERTIFICATE'
          : trustDomain === undefined
            ? undefined
            : spiffeId === undefined
              ? 'WARDEN_NO_SPIFFE_ID'
              : !spiffeId.startsWith(`spiffe://${trustDomain}/`)
                ? 'WARDEN_FOREIGN_TRUST_DOMAIN'
                : // The CA's own identities (its administrator, its server) chain to the same roots
                  // and carry client auth, but are not workloads: `spiffe://td/*` must not admit them.
                  isReservedSpiffePath(parseSpiffeId(spiffeId).path)
                  ? 'WARDEN_RESERVED_IDENTITY'
                  : undefined;
    peer = Object.freeze({
      presented: true,
      verified: error === undefined,
      error,
      spiffeId,
      serial: canonicalSerial(cert.serialNumber),
      chain,
      sha256: createHash('sha256').update(cert.raw).digest('hex'),
      notAfter: Number.isNaN(notAfter) ? 0 : notAfter,
    });
  }
  (socket as unknown as WithPeer)[PEER] = peer;
  return peer;
}

/**
 * The SPIFFE ID telemetry names a caller by (`warden.peer.id`): a verified certificate's only. Any
 * client can present a self-signed certificate naming another workload; what an unverified one
 * claims is `presentedPeerId`'s (`warden.peer.presented_id`), never the caller's identity.
 */
export function verifiedPeerId(peer: PeerIdentity): string | undefined {
  return peer.verified ? peer.spiffeId : undefined;
}

export function presentedPeerId(peer: PeerIdentity): string | undefined {
  return peer.verified ? undefined : peer.spiffeId;
}

/** Event attributes naming a peer: `warden.peer.id` when verified, else `warden.peer.presented_id`. */
export function peerIdAttributes(peer: PeerIdentity): { 'warden.peer.id'?: string; 'warden.peer.presented_id'?: string } {
  if (peer.spiffeId === undefined) return {};
  return peer.verified ? { 'warden.peer.id': peer.spiffeId } : { 'warden.peer.presented_id': peer.spiffeId };
}

/**
 * The identity recorded for a request's connection: `socket` is its TLS socket (HTTP/1.1 and h2;
 * anything else, such as a plain socket, has none).
 */
export function peerOf(socket: unknown): PeerIdentity {
  return (socket as WithPeer)[PEER] ?? NO_PEER;
}
