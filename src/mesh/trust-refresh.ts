/**
 * Keeps the trust bundle and the CRL current: fetched from the CA on their own schedules, checked
 * (a bundle must contain PEM roots; a CRL must be signed by an issuing CA that chains to the trust
 * bundle and not be older than the one in force: src/mesh/crl-check.ts) and only then applied. A
 * failed fetch keeps the last good copy and is retried sooner than the regular interval, with backoff.
 * The CRL is fetched conditionally (the ETag of the one in force): an unchanged one is a 304, not a
 * download and a re-verification of the whole list.
 */
import type { CaClient } from './ca-client.js';
import { crlOrderProblem, CrlRefusedError, signerOf } from './crl-check.js';
import { readCrl, type CrlView } from '../net/crl-reader.js';
import { bundleProblem } from '../net/trust-bundle.js';
import { backoffDelay } from './rotation.js';

export interface TrustRefresher {
  /** Fetches both now and starts the schedule (call once, at startup); failures are reported, not thrown. */
  refreshNow(): Promise<void>;
  stop(): void;
}

export interface TrustRefresherOptions {
  client: CaClient;
  intervals: { bundle: number; crl: number };
  /** Issuing CA certificates (PEM) known without asking: our own chain's. */
  issuers(): string[];
  currentBundle(): string;
  /** The CRL in force (persisted by an earlier run), so an unchanged one is not reported as new. */
  initialCrl?: Buffer | undefined;
  onBundle(pem: string): void;
  /**
   * A verified CRL newer than the one in force (read once: `crl.der` is what to persist), and the
   * issuing CA certificate that signed it (persisted with it: the saved CRL is checked again at start).
   */
  onCrl(crl: CrlView, signerPem: string): void;
  /** A CRL refresh that found the CRL in force still the CA's (a 304, or the same bytes). */
  onCrlCurrent?(): void;
  onFailure(what: 'bundle' | 'crl', err: unknown): void;
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

/** The persisted CRL as a baseline, or none when it cannot be read (the next fetch is then taken whole). */
function readBaseline(der: Buffer | undefined): CrlView | undefined {
  try {
    return der ? readCrl(der) : undefined;
  } catch {
    return undefined;
  }
}

export function createTrustRefresher(options: TrustRefresherOptions): TrustRefresher {
  let lastCrl = readBaseline(options.initialCrl);
  /** The ETag of lastCrl, when it came from this run's fetch (a persisted one has none: fetched whole once). */
  let lastEtag: string | undefined;
  /** The CA's issuing certificate as last fetched (/v1/intermediate), kept while it signs the CRLs. */
  let fetchedIssuer: string | undefined;

  /**
   * The signer of `der` among the issuers we know, else the one the CA says it signs with now —
   * after a root rotation's step 3 that is the new intermediate, before we renewed under it. Each
   * must chain to the current bundle: a CRL of any other CA is refused.
   */
  const crlSigner = async (crl: CrlView): Promise<string | undefined> => {
    const bundlePem = options.currentBundle();
    const known = signerOf(crl, [...options.issuers(), ...(fetchedIssuer ? [fetchedIssuer] : [])], bundlePem);
    if (known) return known;
    const offered = await options.client.intermediate();
    const signer = signerOf(crl, [offered], bundlePem);
    if (signer) fetchedIssuer = signer;
    return signer;
  };

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
      const fetched = await options.client.crlSince(lastCrl ? lastEtag : undefined);
      if (!fetched.changed) {
        options.onCrlCurrent?.(); // 304: the CRL in force is still the CA's
        return true;
      }
      const { der, etag } = fetched;
      if (lastCrl?.der.equals(der)) {
        lastEtag = etag;
        options.onCrlCurrent?.();
        return true;
      }
      let crl: CrlView;
      try {
        crl = readCrl(der);
      } catch (err) {
        throw new CrlRefusedError((err as Error).message);
      }
      const signer = await crlSigner(crl);
      if (!signer) throw new CrlRefusedError('the CRL is not signed by an issuing CA that chains to the trust bundle');
      // Only ever forward: a replayed older CRL would un-revoke certificates, a future-dated one block every later one.
      const problem = crlOrderProblem(crl, lastCrl);
      if (problem !== undefined) throw new CrlRefusedError(problem);
      // In force only once onCrl has applied it: if onCrl throws, the next fetch takes it whole
      // again (not a 304 for an ETag that was never enforced).
      options.onCrl(crl, signer);
      lastCrl = crl;
      lastEtag = etag;
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
