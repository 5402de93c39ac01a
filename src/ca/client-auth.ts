/**
 * Client certificates on the CA API. The TLS layer requests a certificate but admits callers without
 * one (enrollment needs none); the endpoints that need one check it here:
 *  - it chains to this CA (OpenSSL's verdict: `socket.authorized`) and is within its validity now,
 *  - it is in the ledger (issued by this CA instance), not revoked, and its key not revoked as compromised,
 *  - admin endpoints: the administrator identity; renewal: a workload certificate.
 */
import type { TLSSocket } from 'node:tls';
import { WardenError } from '../errors.js';
import { adminSpiffeId } from './layout.js';
import { uriSans, x509 } from './pki.js';
import { canonicalSerial } from '../net/serial.js';
import type { WorkloadPeer } from './service.js';
import type { CaStore } from './store.js';

export type Role = 'workload' | 'admin';

export interface ClientAuth {
  authenticate(socket: TLSSocket, role: Role): WorkloadPeer;
}

export function createClientAuth(store: CaStore, trustDomain: string): ClientAuth {
  const admin = adminSpiffeId(trustDomain);
  return {
    authenticate(socket, role) {
      const peer = socket.getPeerCertificate(false);
      if (!peer || !peer.raw)
        throw new WardenError('ERR_CA_CLIENT_CERT_REQUIRED', { detail: 'present a client certificate issued by this CA' });
      if (!socket.authorized) {
        const reason = String(socket.authorizationError ?? 'unverified');
        throw new WardenError('ERR_CA_CLIENT_CERT_REQUIRED', {
          detail: `client certificate not accepted (${reason})`,
          rule: `tls:${reason}`,
        });
      }
      // OpenSSL checked validity once, at the handshake: a kept-alive connection or a resumed
      // session outlived the certificate, and an expired one could renew for ever.
      const now = Date.now();
      if (!(Date.parse(peer.valid_from) <= now && now < Date.parse(peer.valid_to))) {
        throw new WardenError('ERR_CA_CLIENT_CERT_REQUIRED', {
          detail: 'client certificate not accepted (CERT_HAS_EXPIRED)',
          rule: 'tls:CERT_HAS_EXPIRED',
        });
      }
      const serial = canonicalSerial(peer.serialNumber);
      const record = store.getCertificate(serial);
      if (!record) throw new WardenError('ERR_CA_CLIENT_CERT_REQUIRED', { detail: 'client certificate unknown to this CA' });
      if (record.revoked_at !== null) throw new WardenError('ERR_CA_CERT_REVOKED', { detail: `certificate ${serial} is revoked` });
      // Its key was revoked as compromised through another certificate: whoever holds the key could
      // present this one too (revocation reaches every certificate of the key; this covers the rest).
      if (store.isCompromisedKey(record.key_id))
        throw new WardenError('ERR_CA_CERT_REVOKED', {
          detail: `the key of certificate ${serial} was revoked as compromised`,
          rule: 'ca.key.compromised',
        });
      const certificate = new x509.X509Certificate(peer.raw);
      const spiffeId = uriSans(certificate)[0] ?? '';
      const actor = { actor: spiffeId || `serial:${serial}`, clientAddress: socket.remoteAddress };
      if (role === 'admin') {
        if (spiffeId !== admin || record.kind !== 'admin') {
          throw new WardenError('ERR_CA_ADMIN_REQUIRED', { detail: `${spiffeId || 'this certificate'} is not the administrator` });
        }
      } else if (record.kind !== 'enroll' && record.kind !== 'renew') {
        throw new WardenError('ERR_CA_CLIENT_CERT_REQUIRED', {
          detail: `${record.kind === 'admin' ? 'an' : 'a'} ${record.kind} certificate cannot be renewed over the API`,
        });
      }
      return { ...actor, spiffeId, record, certificate };
    },
  };
}
