/**
 * Keeps the trust bundle and the CRL current: fetched from the CA on their own schedules, checked
 * (a bundle must contain PEM roots; a CRL must be signed by the issuing CA of our chain) and only
 * then applied. A failed refresh keeps the last good copy and is retried at the next tick.
 */
import { X509Certificate } from 'node:crypto';
import { x509 } from '../ca/pki.js';
import { certificatesOf, type CaClient } from './ca-client.js';

export interface TrustRefresher {
  /** Fetches both now (used at startup); failures are reported, not thrown. */
  refreshNow(): Promise<void>;
  stop(): void;
}

export interface TrustRefresherOptions {
  client: CaClient;
  intervals: { bundle: number; crl: number };
  /** The issuing CA certificate (PEM) the CRL must be signed by. */
  issuer(): string;
  currentBundle(): string;
  onBundle(pem: string): void;
  onCrl(der: Buffer): void;
  onFailure(what: 'bundle' | 'crl', err: unknown): void;
}

/** Verifies a CRL's signature with the issuing CA's key and that the CA issued it (names match). */
export async function verifyCrl(der: Buffer, issuerPem: string): Promise<boolean> {
  const crl = new x509.X509Crl(der);
  const issuer = new x509.X509Certificate(issuerPem);
  if (crl.issuer !== issuer.subject) return false;
  return crl.verify({ publicKey: issuer });
}

export function createTrustRefresher(options: TrustRefresherOptions): TrustRefresher {
  const timers: NodeJS.Timeout[] = [];
  let lastCrl: Buffer | undefined;

  const refreshBundle = async () => {
    try {
      const pem = await options.client.bundle();
      const roots = certificatesOf(pem);
      if (roots.length === 0) throw new Error('the CA sent a bundle without certificates');
      for (const root of roots) new X509Certificate(root); // parses, or throws
      if (pem !== options.currentBundle()) options.onBundle(pem);
    } catch (err) {
      options.onFailure('bundle', err);
    }
  };
  const refreshCrl = async () => {
    try {
      const der = await options.client.crl();
      if (lastCrl?.equals(der)) return;
      if (!(await verifyCrl(der, options.issuer()))) throw new Error('the CRL is not signed by our issuing CA');
      lastCrl = der;
      options.onCrl(der);
    } catch (err) {
      options.onFailure('crl', err);
    }
  };

  timers.push(setInterval(() => void refreshBundle(), options.intervals.bundle).unref());
  timers.push(setInterval(() => void refreshCrl(), options.intervals.crl).unref());
  return {
    async refreshNow() {
      await Promise.all([refreshBundle(), refreshCrl()]);
    },
    stop() {
      for (const t of timers) clearInterval(t);
    },
  };
}
