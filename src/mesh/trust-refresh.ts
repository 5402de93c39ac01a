/**
 * Keeps the trust bundle and the CRL current: fetched from the CA on their own schedules, checked
 * (a bundle must contain PEM roots; a CRL must be signed by the issuing CA of our chain and not be
 * older than the one in force) and only then applied. A failed fetch keeps the last good copy and
 * is retried sooner than the regular interval, with backoff.
 */
import { x509 } from '../ca/pki.js';
import type { CaClient } from './ca-client.js';
import { bundleProblem } from './trust-bundle.js';
import { backoffDelay } from './rotation.js';

export interface TrustRefresher {
  /** Fetches both now and starts the schedule (call once, at startup); failures are reported, not thrown. */
  refreshNow(): Promise<void>;
  stop(): void;
}

export interface TrustRefresherOptions {
  client: CaClient;
  intervals: { bundle: number; crl: number };
  /** The issuing CA certificate (PEM) the CRL must be signed by. */
  issuer(): string;
  currentBundle(): string;
  /** The CRL in force (persisted by an earlier run), so an unchanged one is not reported as new. */
  initialCrl?: Buffer | undefined;
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

function thisUpdateOf(der: Buffer | undefined): number {
  if (!der) return 0;
  try {
    return new x509.X509Crl(der).thisUpdate.getTime();
  } catch {
    return 0;
  }
}

/** Runs `task` every `interval`; after a failure, again after a backoff (1 s, 2 s, …) capped at `interval`. */
function every(interval: number, task: () => Promise<boolean>): { run(): Promise<void>; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  let stopped = false;
  const run = async () => {
    clearTimeout(timer);
    const ok = await task();
    failures = ok ? 0 : failures + 1;
    if (stopped) return;
    timer = setTimeout(() => void run(), ok ? interval : backoffDelay(failures - 1, interval));
    timer.unref();
  };
  return {
    run,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

export function createTrustRefresher(options: TrustRefresherOptions): TrustRefresher {
  let lastCrl = options.initialCrl;

  const bundle = every(options.intervals.bundle, async () => {
    try {
      const pem = await options.client.bundle();
      const problem = bundleProblem(pem);
      if (problem !== undefined) throw new Error(`the CA sent an unusable bundle: ${problem}`);
      if (pem !== options.currentBundle()) options.onBundle(pem);
      return true;
    } catch (err) {
      options.onFailure('bundle', err);
      return false;
    }
  });
  const crl = every(options.intervals.crl, async () => {
    try {
      const der = await options.client.crl();
      if (lastCrl?.equals(der)) return true;
      if (!(await verifyCrl(der, options.issuer()))) throw new Error('the CRL is not signed by our issuing CA');
      // A replayed older CRL would un-revoke certificates: only ever move forward.
      if (thisUpdateOf(der) < thisUpdateOf(lastCrl)) throw new Error('the CRL is older than the one in force');
      lastCrl = der;
      options.onCrl(der);
      return true;
    } catch (err) {
      options.onFailure('crl', err);
      return false;
    }
  });

  return {
    async refreshNow() {
      await Promise.all([bundle.run(), crl.run()]);
    },
    stop() {
      bundle.stop();
      crl.stop();
    },
  };
}
