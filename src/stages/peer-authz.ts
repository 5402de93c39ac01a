/**
 * `peer-authz` stage: who may call this route, by the caller's workload identity (its verified
 * client certificate's SPIFFE ID). Per route: `mtls: require` (default) refuses callers without a
 * certificate, `optional` admits them (they authenticate with a token later) unless the route has a
 * `peers.allow` list, which only a certificate can satisfy; a presented
 * certificate must always be valid and unrevoked, and its SPIFFE ID must match `peers.allow`
 * (empty = any workload of the trust domain). With mesh and no CRL in force yet, a caller with a
 * certificate is refused with 503 (it cannot be checked), one without is treated as above. On
 * success the backend is told who called in X-Forwarded-Client-Cert (Envoy's format), computed
 * here and never taken from the client.
 */
import { WardenError } from '../errors.js';
import { compileSpiffeMatcher } from '../net/spiffe-id.js';
import type { RequestContext, Stage, Verdict } from '../pipeline/stage.js';
import { CHAIN_UNTRACED, peerExpired } from '../mesh/peer-identity.js';
import type { RevocationList } from '../mesh/revocation-list.js';

export interface PeerAuthzConfig {
  mtls: 'require' | 'optional';
  allow: readonly string[];
  /** This sidecar's SPIFFE ID (XFCC `By`); undefined without mesh. */
  ownId: string | undefined;
}

export interface PeerAuthzDeps {
  /**
   * The CRL in force; checked on every request so kept-alive connections of a revoked peer stop too.
   * Until one is in force (`inForce`), callers with a certificate are refused (503 ERR_MESH_CRL_UNAVAILABLE).
   */
  revocations: RevocationList | undefined;
}

/** A certificate listeners.inbound.tls.client_crl lists (peerNow marks it CERT_REVOKED per request). */
export const clientCrlRevoked = () =>
  new WardenError('ERR_PEER_REVOKED', {
    rule: 'tls.client_crl',
    detail: 'This client certificate, or a CA certificate of its chain, has been revoked; present another one.',
  });

/** A certificate whose path to client_ca was not traced, so client_crl could not be checked (CHAIN_UNTRACED). */
const clientCrlUntraced = () =>
  new WardenError('ERR_PEER_REVOCATION_UNKNOWN', {
    rule: 'tls.client_crl',
    detail:
      'The chain of this client certificate could not be traced to a CA of client_ca, so its revocation cannot be checked; connect again (a new TLS session) sending the certificate with its intermediates.',
  });

/** The refusal of a certificate client_crl revokes, or whose revocation it cannot check; undefined otherwise. */
export function clientCrlRefusal(error: string | undefined): WardenError | undefined {
  if (error === 'CERT_REVOKED') return clientCrlRevoked();
  return error === CHAIN_UNTRACED ? clientCrlUntraced() : undefined;
}

const crlUnavailable = () =>
  new WardenError('ERR_MESH_CRL_UNAVAILABLE', {
    rule: 'mesh.crl',
    detail: 'This service has no revocation list in force yet, so client certificates cannot be checked; retry later.',
    headers: { 'retry-after': '5' },
  });

export function createPeerAuthzStage(cfg: PeerAuthzConfig, deps: PeerAuthzDeps): Stage {
  const allowed = cfg.allow.length > 0 ? compileSpiffeMatcher(cfg.allow) : undefined;
  const by = cfg.ownId ? `By=${cfg.ownId};` : '';
  const { revocations } = deps;

  return {
    id: 'peer-authz',
    run(ctx: RequestContext): Verdict {
      const peer = ctx.peer;
      if (!peer.presented) {
        // An allow-list admits named workloads: a caller that names none must not pass by staying silent.
        if (cfg.mtls === 'optional' && allowed === undefined) return undefined;
        const rule = allowed === undefined ? 'mtls.require' : 'peers.allow';
        return new WardenError('ERR_PEER_CERT_REQUIRED', { rule, detail: 'This route needs a client certificate.' });
      }
      if (!peer.verified) {
        const refusal = clientCrlRefusal(peer.error);
        if (refusal) return refusal;
        return new WardenError('ERR_PEER_CERT_INVALID', { rule: `tls:${peer.error ?? 'unverified'}` });
      }
      // Verified at the handshake, but a connection (or a resumed session) can outlive the certificate.
      if (peerExpired(peer)) return new WardenError('ERR_PEER_CERT_INVALID', { rule: 'tls:CERT_HAS_EXPIRED' });
      if (revocations !== undefined) {
        // No CRL in force yet (none persisted and the CA not reached): who is revoked is unknown,
        // so a mesh peer is refused as "could not check", never served unchecked. A boolean read.
        if (!revocations.inForce) return crlUnavailable();
        if (peer.serial !== undefined && revocations.isRevoked(peer.serial))
          return new WardenError('ERR_PEER_REVOKED', { rule: 'mesh.crl' });
      }
      const id = peer.spiffeId;
      if (allowed !== undefined && (id === undefined || !allowed(id)))
        return new WardenError('ERR_AUTHZ_PEER_DENIED', { rule: 'peers.allow' });
      ctx.upstreamHeaders['x-forwarded-client-cert'] = `${by}Hash=${peer.sha256 ?? ''}${id ? `;URI=${id}` : ''}`;
      return undefined;
    },
  };
}
