/**
 * The CRL, DER, signed by the issuing CA: every revoked certificate that has not yet expired.
 * thisUpdate = when it was made, nextUpdate = thisUpdate + crl.next_update (short: sidecars refetch
 * often). Cached between requests; remade on each revocation and once half its validity has passed,
 * so a fetched CRL always has at least half its window left. Concurrent requests share one signing.
 */
import { WardenError } from '../errors.js';
import type { RevocationReason } from './api.js';
import { EC_P256, x509, type CryptoKey } from './pki.js';
import type { CaStore } from './store.js';

export interface CrlOptions {
  store: CaStore;
  intermediate: x509.X509Certificate;
  intermediateKey: CryptoKey;
  nextUpdateMs: number;
  now?: () => number;
}

export interface CrlPublisher {
  /** The current CRL (DER), remade first when due. */
  current(): Promise<Buffer>;
  /** Makes a new CRL now (after a revocation). */
  refresh(): Promise<Buffer>;
}

const REASONS: Record<RevocationReason, x509.X509CrlReason> = {
  unspecified: x509.X509CrlReason.unspecified,
  keyCompromise: x509.X509CrlReason.keyCompromise,
  superseded: x509.X509CrlReason.superseded,
  cessationOfOperation: x509.X509CrlReason.cessationOfOperation,
};

/** DER INTEGER (non-negative), for the CRL number extension the library has no class for. */
function derInteger(value: number): Uint8Array {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if ((bytes[0] as number) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return Buffer.concat([Buffer.from([0x02, bytes.length]), bytes]);
}

const CRL_NUMBER_OID = '2.5.29.20';

export function createCrlPublisher(options: CrlOptions): CrlPublisher {
  const { store, intermediate, intermediateKey, nextUpdateMs } = options;
  const now = options.now ?? Date.now;
  const issuerSki = intermediate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  let cached: { der: Buffer; madeAt: number } | undefined;
  let pending: Promise<Buffer> | undefined;

  async function make(): Promise<Buffer> {
    const t = now();
    const entries = store.unexpiredRevocations(t).map((r) => ({
      serialNumber: r.serial,
      revocationDate: new Date(r.revoked_at),
      reason: REASONS[r.reason as RevocationReason] ?? x509.X509CrlReason.unspecified,
    }));
    const extensions: x509.Extension[] = [new x509.Extension(CRL_NUMBER_OID, false, derInteger(store.nextCrlNumber()))];
    if (issuerSki) extensions.push(new x509.AuthorityKeyIdentifierExtension(issuerSki));
    const crl = await x509.X509CrlGenerator.create({
      issuer: intermediate.subjectName,
      thisUpdate: new Date(t),
      nextUpdate: new Date(t + nextUpdateMs),
      signingAlgorithm: EC_P256,
      signingKey: intermediateKey,
      extensions,
      entries,
    });
    const der = Buffer.from(crl.rawData);
    cached = { der, madeAt: t };
    return der;
  }

  function refresh(): Promise<Buffer> {
    // A refresh requested while one is signing must include the newer revocation: chain, do not share.
    const previous = pending ?? Promise.resolve(Buffer.alloc(0));
    const next = previous
      .catch(() => Buffer.alloc(0))
      .then(make)
      .catch((err: unknown) => {
        throw new WardenError('ERR_INTERNAL', { cause: err });
      })
      .finally(() => {
        if (pending === next) pending = undefined;
      });
    pending = next;
    return next;
  }

  return {
    refresh,
    async current() {
      const age = cached ? now() - cached.madeAt : -1;
      // A negative age is a clock stepped back since signing: that CRL is dated in the future and
      // sidecars refuse it, so sign a new one rather than serve it for the rest of its window.
      if (cached && age >= 0 && age < nextUpdateMs / 2) return cached.der;
      return pending ?? refresh();
    },
  };
}
