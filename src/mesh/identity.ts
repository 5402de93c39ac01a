/**
 * The workload identity of one sidecar: credentials from the state dir or a first enrollment, then
 * renewal before expiry and a current trust bundle and CRL. The sidecar reads `material()` for its
 * TLS contexts and re-reads it when `onChange` says something changed.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { MeshConfig } from '../config/types.js';
import type { EventBus } from '../telemetry/events.js';
import { CaApiError } from '../ca/admin-client.js';
import { CaUnavailableError, configuredRootsIn, createCaClient, describeCaError, resolveCaTrust } from './ca-client.js';
import {
  CertificateRefusedError,
  chainsToItsBundle,
  createCredentialStore,
  CredentialError,
  describeCredentials,
  dnsNamesOf,
  isExpired,
  issuedCertificateProblem,
  STATE_FILES,
  type CredentialStore,
  type WorkloadCredentials,
} from './credential-store.js';
import { crlOrderProblem, CrlRefusedError, signerOf } from './crl-check.js';
import { readCrl, type CrlView } from '../net/crl-reader.js';
import { createKeyAndCsr } from './csr.js';
import { createRevocationList, type RevocationList } from './revocation-list.js';
import { createRenewalScheduler, isExpiring } from './rotation.js';
import { createStateWriter, type StateSlot } from './state-writer.js';
import { WriteNotAllowedError } from '../config/atomic-file.js';
import { acquireStateLock, describeHolder, LOCK_FILE, StateLockHeldError, type LockLoss, type StateLock } from './state-lock.js';
import { trustDomainOf } from '../net/spiffe-id.js';
import { certificatesOf, isUsableBundle } from '../net/trust-bundle.js';
import { createTrustRefresher } from './trust-refresh.js';

export interface MeshMaterial {
  key: string;
  /** Leaf + intermediate(s), PEM. */
  cert: string;
  /** Trust bundle (roots), PEM. */
  ca: string;
  notBefore: Date;
  notAfter: Date;
  serial: string;
}

export type MeshChange = 'certificate' | 'bundle' | 'crl';

export interface MeshStatus {
  spiffeId: string;
  serial: string;
  notAfter: string;
  secondsToExpiry: number;
  nextRenewalAt?: string;
  lastError?: string;
  /** The certificate has expired: no peer accepts it, and only a new bootstrap token brings one back. */
  expired?: true;
  /** The certificate is on the CA's CRL (this sidecar applied it): no peer accepts it either. */
  revoked?: true;
  /** The certificate does not chain to the current bundle (its root was removed): no peer accepts it either. */
  untrusted?: true;
  /**
   * Why this process lost the lock of mesh.state_dir (another process took it, or its file system
   * stopped answering) and what to do (describeLockLoss): not ready, nothing saved there.
   */
  stateLockLost?: string;
}

/** The CRL in force, for /readyz, the metrics and the console. */
export interface CrlStatus {
  /** A verified CRL is in force; until one is, requests from mesh peers are refused (503). */
  inForce: boolean;
  /** Its CRL number, as a decimal string. */
  number?: string;
  /** Its nextUpdate (ISO 8601). */
  nextUpdate?: string;
  /** Seconds since that nextUpdate passed (0 while it has not). */
  secondsPastNextUpdate: number;
  /** Why the last CRL refresh failed, while it keeps failing (cleared by the next one that succeeds). */
  lastError?: string;
}

export interface MeshIdentity {
  readonly spiffeId: string;
  material(): MeshMaterial;
  /**
   * The serials of the last verified CRL (persisted, or fetched), kept current by the refresher;
   * `inForce` is false until there is one.
   */
  readonly revocations: RevocationList;
  crl(): CrlStatus;
  onChange(listener: (what: MeshChange) => void): () => void;
  status(): MeshStatus;
  /**
   * Stops renewals and refreshes; the lock of mesh.state_dir is released once the writes already
   * asked have landed (at once when there are none). Writes that do not land within
   * STOP_WRITES_WAIT_MS (a hung disk) keep the lock: others take it over when its heartbeat is stale.
   */
  stop(): Promise<void>;
}

/** How long stop() waits for saves in flight before leaving the lock to go stale. */
export const STOP_WRITES_WAIT_MS = 5000;
/** A failed save is tried again after 1 s, doubling up to a minute, until it lands or a newer one is asked (state-writer.ts). */
const SAVE_RETRY_MS = 1000;
const SAVE_RETRY_MAX_MS = 60_000;

/**
 * Startup cannot get credentials: one line for the operator, naming the setting to fix.
 * ERR_MESH_TOKEN_REQUIRED is a configuration problem (no usable credentials and no token);
 * ERR_MESH_STATE_UNWRITABLE too (mesh.state_dir cannot be written: checked before the token is spent);
 * ERR_MESH_STATE_LOCKED: another process uses mesh.state_dir (state-lock.ts);
 * ERR_MESH_ENROLL_FAILED carries the CA's refusal or outage code in `caCode`.
 */
export class MeshStartupError extends Error {
  constructor(
    readonly code: 'ERR_MESH_TOKEN_REQUIRED' | 'ERR_MESH_ENROLL_FAILED' | 'ERR_MESH_STATE_UNWRITABLE' | 'ERR_MESH_STATE_LOCKED',
    message: string,
    readonly caCode?: string,
  ) {
    super(message);
    this.name = 'MeshStartupError';
  }
}

/**
 * The certificate has expired and there is no unspent bootstrap token to enroll again with: the CA
 * renews only an unexpired certificate, so nothing this process can do brings one back.
 */
export class CertificateExpiredError extends Error {
  readonly code = 'ERR_MESH_CERT_EXPIRED';
  constructor(serial: string, notAfter: Date) {
    super(
      `the certificate ${serial} expired at ${notAfter.toISOString()} and the CA renews only unexpired ones: ` +
        'create a new bootstrap token (warden ca token create), set it as mesh.bootstrap_token and restart',
    );
    this.name = 'CertificateExpiredError';
  }
}

/** The CA revoked the certificate and there is no unspent bootstrap token: the CA renews no revoked certificate. */
export class CertificateRevokedError extends Error {
  readonly code = 'ERR_MESH_CERT_REVOKED';
  constructor(serial: string) {
    super(
      `the CA revoked this sidecar's certificate ${serial}, so no peer accepts it and the CA renews it no more: ` +
        'create a new bootstrap token (warden ca token create), set it as mesh.bootstrap_token and restart',
    );
    this.name = 'CertificateRevokedError';
  }
}

export interface MeshDeps {
  events: EventBus;
  logger: Logger;
}

/**
 * Starts the identity holding the lock of mesh.state_dir, taken first (before anything is read) and
 * released by stop(), or when startup fails.
 */
export async function startMeshIdentity(cfg: MeshConfig, deps: MeshDeps): Promise<MeshIdentity> {
  const store = createCredentialStore(cfg.state_dir);
  const lock = await lockStateDir(cfg, deps.logger);
  try {
    return await startHoldingLock(cfg, deps, store, lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

/** A lost lock of mesh.state_dir, for the error line and readiness: why, then what to do. */
function describeLockLoss(loss: LockLoss): string {
  return loss.cause === 'taken'
    ? `${loss.reason}: another process uses the same state dir; give each replica its own mesh.state_dir`
    : `${loss.reason} (a hung mount?): another process may take it over meanwhile; restart this one once mesh.state_dir answers`;
}

/** Errors that say this process cannot create files in the state dir. */
const UNWRITABLE = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT']);

async function lockStateDir(cfg: MeshConfig, logger: Logger): Promise<StateLock> {
  const dir = cfg.state_dir;
  try {
    return await acquireStateLock(dir, {
      onTakeover: (holder, reason) =>
        logger.warn({ state_dir: dir }, `mesh: took over the lock of mesh.state_dir left by ${describeHolder(holder)}: ${reason}`),
      onLost: (loss) =>
        logger.error(
          { state_dir: dir },
          `mesh: this process no longer holds the lock of mesh.state_dir: ${describeLockLoss(loss)}; nothing more is saved there`,
        ),
    });
  } catch (err) {
    if (err instanceof StateLockHeldError)
      throw new MeshStartupError(
        'ERR_MESH_STATE_LOCKED',
        `mesh: mesh.state_dir ${dir} is in use by another Warden process (${describeHolder(err.holder)}: ${err.reason}): two sidecars on one state dir serve one key and overwrite each other's renewals; give each replica its own mesh.state_dir (an emptyDir, or a volume per pod), or stop the other process`,
      );
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined || !UNWRITABLE.has(code)) throw err;
    // A state dir this process cannot write in: nothing it does can overwrite another's files there,
    // and a valid certificate in it is served as before. An enrollment is refused later (ERR_MESH_STATE_UNWRITABLE).
    logger.warn(
      { state_dir: dir },
      `mesh: cannot create ${LOCK_FILE} in mesh.state_dir (${code}): running without the lock that keeps a second process off it`,
    );
    return { file: join(dir, LOCK_FILE), lost: undefined, release() {} };
  }
}

async function startHoldingLock(cfg: MeshConfig, deps: MeshDeps, store: CredentialStore, lock: StateLock): Promise<MeshIdentity> {
  const { events, logger } = deps;
  const trustDomain = trustDomainOf(cfg.spiffe_id);
  const persistedBundle = store.loadBundle();
  // Only the saved roots mesh.ca names are trusted (configuredRootsIn says why); the others come
  // back with the CA's bundle, fetched over a connection verified against these.
  const saved = persistedBundle === undefined ? undefined : configuredRootsIn(cfg.ca, persistedBundle);
  // State from another CA than mesh.ca names (the operator replaced it): neither its roots, nor its
  // certificate, nor its CRL are used.
  const otherCa = saved !== undefined && saved.kept === '';
  if (otherCa)
    logger.warn(
      { 'warden.detail': cfg.state_dir },
      'mesh: the bundle in mesh.state_dir names none of the roots mesh.ca does (the CA was replaced?): trusting mesh.ca and enrolling afresh',
    );
  else if (saved?.dropped.length)
    logger.warn(
      { 'warden.detail': saved.dropped.join(', '), state_dir: cfg.state_dir },
      `mesh: bundle.pem in mesh.state_dir holds ${saved.dropped.length} root${saved.dropped.length > 1 ? 's' : ''} mesh.ca does not name: ` +
        'not trusted until the CA’s bundle is fetched over a verified connection (in a root rotation, add the new root to mesh.ca first)',
    );
  const configuredRoots = await resolveCaTrust(cfg.ca, otherCa ? undefined : saved?.kept, trustDomain);
  const client = createCaClient(cfg.ca, configuredRoots, trustDomain);
  let credentials: WorkloadCredentials;
  /**
   * When the current certificate was received. Its lifetime is counted from then, or from its
   * notBefore if later: the CA backdates notBefore (certificates.backdate, 5 min), and counted from
   * there a 2 min certificate was due for renewal as soon as it came, in a loop (35 in a minute).
   */
  let receivedAt = 0;
  /** Where the current certificate's lifetime is counted from (see receivedAt). */
  const lifetimeStart = () => new Date(Math.max(credentials.notBefore.getTime(), receivedAt));
  /** Whether the current certificate chains to the current bundle, as last checked (status()). */
  let chainCheck: { credentials: WorkloadCredentials; ok: boolean } | undefined;
  /** mesh.bootstrap_token was used (at startup) or refused: not worth another enrollment. */
  let tokenSpent: boolean;
  try {
    const initial = await initialCredentials(cfg, store, client, configuredRoots, deps, otherCa);
    // Persisted credentials come with bundle.pem as saved: keep of it only what mesh.ca names.
    credentials = initial.fresh ? initial.credentials : { ...initial.credentials, bundlePem: saved?.kept ?? '' };
    tokenSpent = initial.enrolled;
    // Persisted credentials were received when their file was written.
    receivedAt = initial.fresh ? Date.now() : (store.savedAt() ?? 0);
  } catch (err) {
    client.close().catch(() => {});
    throw err;
  }
  const savedCrl = otherCa ? undefined : store.loadCrl();
  let lastError: string | undefined;
  /** Why the CRL refresh keeps failing (readiness detail); cleared by a refresh that succeeds. */
  let crlError: string | undefined;
  /** "No CRL in force" was said (error log, event) and not yet undone by a CRL. */
  let saidNoCrl = false;
  /** The nextUpdate (ms) of the CRL already said to be stale: once per CRL, not once per retry. */
  let saidStaleAt: number | undefined;
  let staleTimer: NodeJS.Timeout | undefined;
  let warnedExpiring = false;
  let renewalsStopped = false;
  let stopped = false;
  const writer = createStateWriter({
    firstDelayMs: SAVE_RETRY_MS,
    maxDelayMs: SAVE_RETRY_MAX_MS,
    mayRetry: () => !stopped && lock.lost === undefined,
    onLanded: (what, tries) =>
      logger.info({ state_dir: cfg.state_dir, attempts: tries }, `mesh: the ${what} is saved in mesh.state_dir now`),
  });
  const mayWrite = () => lock.lost === undefined;
  /**
   * Writes credentials, a bundle or a CRL already in force, off the event loop (state-writer.ts,
   * which tries a failed save again). Best effort: a full, read-only or hung disk must not keep a
   * renewed certificate, a verified CRL (a revocation) or a bundle from being used; the copy on
   * disk only serves the next start.
   */
  const persist = async (what: StateSlot, save: (mayWrite: () => boolean) => Promise<void>): Promise<void> => {
    // A refresh that ends after stop(): nothing new is written.
    if (stopped || lock.lost !== undefined) return;
    // A lock lost while the write waited, or before its rename: the dir may be another process's now, or hung.
    await writer
      .write(what, () => (mayWrite() ? save(mayWrite) : Promise.resolve()))
      .catch((err: unknown) => {
        if (err instanceof WriteNotAllowedError) return; // the lock was lost: said once, nothing more is saved
        logger.warn(
          { err: (err as Error).message, state_dir: cfg.state_dir },
          what === 'credentials'
            ? 'mesh: the renewed certificate is in force but could not be saved in mesh.state_dir; trying again (until then a restart begins from the older certificate on disk, enrolling again with mesh.bootstrap_token once it has expired)'
            : `mesh: the new ${what} is in force but could not be saved in mesh.state_dir; trying again (until then a restart begins from the older copy on disk)`,
        );
      });
  };
  const listeners = new Set<(what: MeshChange) => void>();
  const notify = (what: MeshChange) => {
    for (const listener of listeners) {
      try {
        listener(what);
      } catch (err) {
        logger.error({ err }, 'applying a new mesh credential failed');
      }
    }
  };
  if (!isUsableBundle(credentials.bundlePem)) {
    // bundle.pem lost or empty: trust the roots we verified the CA with until the refresh below
    // fetches its bundle; never an empty bundle, which would trust no peer and not even the CA.
    logger.warn({ state_dir: cfg.state_dir }, 'mesh: no usable bundle.pem; using the mesh.ca roots until the CA bundle is fetched');
    credentials = { ...credentials, bundlePem: configuredRoots };
  }
  client.trust(credentials.bundlePem);
  const startBundle = credentials.bundlePem;
  // Awaited: nothing is served yet, and a bundle.pem lost is back on disk before the identity is used.
  await persist('bundle', (guard) => store.saveBundle(startBundle, guard));
  /**
   * The CRL saved by an earlier run, only if it passes the checks a fetched one must (crl-check.ts):
   * signed by an issuing CA that chains to the trust bundle — our chain's, or the one saved with it
   * (crl-signer.pem) — and not dated in the future. crl.der is a file: one written while the
   * sidecar was stopped — an unsigned CRL numbered 2^47-1 with no entries — was applied, un-revoked
   * every certificate and, as the baseline of the refresher, made every CRL the CA sent after it
   * "older than the one in force". One that fails is ignored like a damaged one: the refresher
   * fetches a verified CRL right away, and until it does no CRL is in force and mesh peers are
   * refused (peer-authz), not served unchecked.
   */
  const crl = savedCrl === undefined ? undefined : verifiedSavedCrl(savedCrl);
  const revocations = createRevocationList();
  if (crl) revocations.update(crl);
  /** A bundle already in `credentials` and on disk: the CA client, events and listeners follow it. */
  const applyBundle = (pem: string) => {
    client.trust(pem);
    events.emit('warden.mesh.trust_updated', { 'warden.detail': `bundle: ${certificatesOf(pem).length} root(s)` });
    notify('bundle');
  };

  const scheduler = createRenewalScheduler({
    policy: { renewAt: cfg.renew_at, jitter: cfg.renew_jitter, maxBackoff: cfg.max_backoff },
    current: () => ({
      notBefore: lifetimeStart(),
      notAfter: credentials.notAfter,
    }),
    async renew() {
      // An expired or revoked certificate cannot authenticate a renewal: enroll again with the
      // configured token (once: a refused token stays refused), else give up with an error that says what to do.
      const revoked = revocations.isRevoked(credentials.serial);
      const expired = isExpired(credentials) || revoked;
      const token = cfg.bootstrap_token;
      if (expired && (tokenSpent || !token))
        throw revoked
          ? new CertificateRevokedError(credentials.serial)
          : new CertificateExpiredError(credentials.serial, credentials.notAfter);
      // The CA renews only the current certificate's names; a changed mesh.dns_names needs a token
      // (a new enrollment: at start, or here once expired). Before spending one, the state dir must take the result.
      if (expired) await store.probeWritable();
      const { keyPem, csrPem } = await createKeyAndCsr(cfg.spiffe_id, expired ? cfg.dns_names : dnsNamesOf(credentials.certPem));
      let issued;
      try {
        issued =
          expired && token
            ? await client.enroll(token, csrPem)
            : await client.renew({ keyPem: credentials.keyPem, certPem: credentials.certPem }, csrPem);
      } catch (err) {
        if (expired && err instanceof CaApiError) tokenSpent = true;
        throw err;
      }
      if (expired) tokenSpent = true;
      if (stopped) return; // stopped while the CA answered: nothing may change any more
      const bundle = isUsableBundle(issued.bundle) ? issued.bundle : credentials.bundlePem;
      const next = describeCredentials(keyPem, issued.certificate + issued.chain, bundle);
      if (next.spiffeId !== credentials.spiffeId) throw new Error(`the CA renewed as ${next.spiffeId}, not ${credentials.spiffeId}`);
      // Checked before anything is replaced or saved: a failure keeps the current certificate and retries.
      const refused = issuedCertificateProblem(next, credentials.bundlePem);
      if (refused !== undefined) throw new CertificateRefusedError(`the CA issued an unusable certificate: ${refused}`);
      const bundleChanged = next.bundlePem !== credentials.bundlePem;
      credentials = next;
      receivedAt = Date.now();
      // What is in force when the write runs, not this renewal's copy: a retry of an older save
      // must not put an older certificate or bundle back on disk after a newer one (state-writer.ts).
      void persist('credentials', (guard) => store.saveKeyAndChain(credentials, guard));
      if (bundleChanged) void persist('bundle', (guard) => store.saveBundle(credentials.bundlePem, guard));
      lastError = undefined;
      warnedExpiring = false;
      events.emit(expired ? 'warden.mesh.enrolled' : 'warden.mesh.rotated', {
        'warden.spiffe.id': next.spiffeId,
        'warden.cert.serial': next.serial,
        'warden.cert.not_after': next.notAfter.toISOString(),
      });
      notify('certificate');
      // A root rotation may bring a new bundle with the renewal, before the next refresh: the CA
      // client must trust it now, or it cannot reach a CA that moved to the new root.
      if (bundleChanged) applyBundle(next.bundlePem);
    },
    onFailure(err, retryInMs, attempt) {
      lastError = describeCaError(err);
      if (err instanceof CertificateExpiredError || err instanceof CertificateRevokedError) {
        // Retrying cannot help: say so once, loudly, and stop (readiness already fails on expiry).
        scheduler.stop();
        renewalsStopped = true;
        events.emit('warden.mesh.renewal_failed', {
          'warden.spiffe.id': credentials.spiffeId,
          'error.type': lastError,
          'warden.count': attempt,
          'warden.detail': err.message,
        });
        logger.error({ 'warden.spiffe.id': credentials.spiffeId, 'error.type': lastError }, `mesh: ${err.message}`);
        return;
      }
      // A refused certificate is the CA's fault, not an outage: say what was wrong with it.
      const retry = `${err instanceof CertificateRefusedError ? `${err.message}; ` : ''}retry in ${Math.round(retryInMs / 1000)} s`;
      events.emit('warden.mesh.renewal_failed', {
        'warden.spiffe.id': credentials.spiffeId,
        'error.type': lastError,
        'warden.count': attempt,
        'warden.detail': isExpired(credentials)
          ? `${retry}; certificate ${credentials.serial} expired at ${credentials.notAfter.toISOString()}: enrolling again with mesh.bootstrap_token`
          : `${retry}; serving on ${credentials.serial} until ${credentials.notAfter.toISOString()}`,
      });
      if (!warnedExpiring && isExpiring(lifetimeStart(), credentials.notAfter, Date.now())) {
        warnedExpiring = true;
        events.emit('warden.mesh.cert_expiring', {
          'warden.spiffe.id': credentials.spiffeId,
          'warden.cert.serial': credentials.serial,
          'warden.cert.not_after': credentials.notAfter.toISOString(),
        });
      }
    },
  });

  const refresher = createTrustRefresher({
    client,
    intervals: cfg.refresh,
    issuers: () => certificatesOf(credentials.certPem).slice(1),
    currentBundle: () => credentials.bundlePem,
    initialCrl: crl?.der,
    // In memory first, then to disk (persist): a write that fails must not stop the enforcement.
    onBundle(pem) {
      credentials = { ...credentials, bundlePem: pem };
      applyBundle(pem);
      void persist('bundle', (guard) => store.saveBundle(credentials.bundlePem, guard));
    },
    onCrl(crl, signer) {
      revocations.update(crl);
      crlError = undefined;
      events.emit('warden.mesh.trust_updated', { 'warden.detail': 'crl' });
      notify('crl');
      void persist('crl', (guard) => store.saveCrl(crl.der, signer, guard));
      if (saidNoCrl) {
        saidNoCrl = false;
        logger.info(
          { 'warden.crl.number': String(crl.number ?? '') },
          'mesh: a verified CRL is in force: requests from mesh peers are checked and served again',
        );
      }
      watchStaleness();
      noticeOwnRevocation();
    },
    onCrlCurrent() {
      crlError = undefined;
    },
    onFailure(what, err) {
      // A server that is not our CA (wrong roots or SPIFFE ID) or answers without end, or a CRL we
      // refuse (revocations not enforced), is an attack or a misconfiguration, not an outage.
      const untrusted =
        (err instanceof CaUnavailableError && (err.code === 'ERR_CA_UNTRUSTED' || err.code === 'ERR_CA_ANSWER_TOO_LARGE')) ||
        err instanceof CrlRefusedError;
      const fields = { 'error.type': describeCaError(err), err: (err as Error).message };
      if (what === 'bundle') {
        logger[untrusted ? 'error' : 'warn'](fields, 'mesh bundle refresh failed; keeping the last good copy');
        return;
      }
      crlError = crlFailure(err);
      if (!revocations.inForce) {
        // Nothing to keep: said once, loudly (an error and an event), not once per retry.
        if (saidNoCrl) {
          logger.debug(fields, 'mesh crl refresh failed; still no CRL in force');
          return;
        }
        saidNoCrl = true;
        const detail = `no CRL in force: ${crlError}; requests from mesh peers are refused (503 ERR_MESH_CRL_UNAVAILABLE) until a verified CRL is fetched`;
        events.emit('warden.mesh.crl_unavailable', { 'error.type': describeCaError(err), 'warden.detail': detail });
        logger.error({ ...fields, state_dir: cfg.state_dir }, `mesh: ${detail}`);
        return;
      }
      logger[untrusted ? 'error' : 'warn'](fields, `mesh crl refresh failed; the CRL in force (${crlName()}) stays in force`);
    },
  });

  /** `der` (crl.der) read and checked as a fetched CRL would be; undefined, with the reason logged, when it fails. */
  function verifiedSavedCrl(der: Buffer): CrlView | undefined {
    const ignoring = 'mesh peers are refused until a CRL is fetched from the CA';
    let view: CrlView;
    try {
      view = readCrl(der);
    } catch (err) {
      logger.warn({ err: (err as Error).message, state_dir: cfg.state_dir }, `mesh: ignoring an unreadable persisted CRL; ${ignoring}`);
      return undefined;
    }
    // Our chain's intermediate, or the one saved with the CRL: after a root rotation's step 3 the CA
    // signs with the new intermediate before we renew under it. Either must chain to the bundle.
    const issuers = [...certificatesOf(credentials.certPem).slice(1), ...certificatesOf(store.loadCrlSigner() ?? '')];
    const problem = signerOf(view, issuers, credentials.bundlePem)
      ? crlOrderProblem(view, undefined)
      : 'it is not signed by an issuing CA that chains to the trust bundle';
    if (problem === undefined) return view;
    // Not damage but a file someone wrote: as loud as a refused fetched CRL.
    logger.error(
      { err: problem, 'error.type': 'ERR_MESH_CRL_REFUSED', state_dir: cfg.state_dir },
      `mesh: ignoring a persisted CRL (crl.der) that fails the checks a fetched one must pass; ${ignoring}`,
    );
    return undefined;
  }

  /** Why a CRL refresh failed, naming the CA: for readiness and the one "no CRL in force" line. */
  function crlFailure(err: unknown): string {
    const code = describeCaError(err);
    if (err instanceof CrlRefusedError) return `the CRL from the CA at ${cfg.ca.url} was refused: ${err.message}`;
    if (err instanceof CaUnavailableError && err.code === 'ERR_CA_UNTRUSTED')
      return `the server at ${cfg.ca.url} is not the CA (${code}): ${err.message}`;
    if (err instanceof CaApiError) return `the CA at ${cfg.ca.url} answered ${code}`;
    return `the CA at ${cfg.ca.url} could not be reached (${code})`;
  }
  function crlName(): string {
    const number = revocations.number;
    const next = revocations.nextUpdate;
    return `${number !== undefined ? `number ${number}` : 'no number'}${next ? `, next update ${next.toISOString()}` : ''}`;
  }

  /**
   * Says once per CRL, when its nextUpdate passes without a newer one, that it is stale: an error
   * and `warden.mesh.crl_stale`. It stays in force (known-revoked peers are still refused) and
   * readiness stays green with a detail: failing every sidecar's readiness for a CA outage would
   * take the mesh down, which is why Warden checks CRLs itself (revocation-list.ts).
   */
  function watchStaleness(): void {
    clearTimeout(staleTimer);
    const next = revocations.nextUpdate;
    if (stopped || next === undefined) return;
    const wait = next.getTime() - Date.now();
    if (wait >= 0) {
      if (saidStaleAt !== undefined) {
        logger.info({ 'warden.crl.number': String(revocations.number ?? '') }, 'mesh: a current CRL is in force again');
        saidStaleAt = undefined;
      }
      staleTimer = setTimeout(watchStaleness, Math.min(wait + 1, 2 ** 31 - 1));
      staleTimer.unref();
      return;
    }
    if (saidStaleAt === next.getTime()) return;
    saidStaleAt = next.getTime();
    const detail =
      `the CRL in force (${crlName()}) is past its nextUpdate and no newer one was fetched` +
      `${crlError ? `: ${crlError}` : ''}; it stays in force (known-revoked peers are still refused), revocations made since are not known`;
    events.emit('warden.mesh.crl_stale', { 'warden.detail': detail });
    logger.error({ state_dir: cfg.state_dir }, `mesh: ${detail}`);
  }
  /**
   * This sidecar's own certificate on the CRL (an operator's `revoke`): every peer refuses it, yet it
   * was served until its renewal time (70 % of its life) with readiness green. Enroll again now, with
   * the token if one is left, else stop renewing with an error; readiness fails either way until then.
   */
  let revokedSerial: string | undefined;
  function noticeOwnRevocation(): void {
    if (!revocations.isRevoked(credentials.serial) || revokedSerial === credentials.serial) return;
    revokedSerial = credentials.serial;
    logger.error(
      { 'warden.spiffe.id': credentials.spiffeId, 'warden.cert.serial': credentials.serial },
      'mesh: the CA revoked this sidecar’s own certificate; peers refuse it: enrolling again',
    );
    scheduler.renewNow();
  }

  await refresher.refreshNow();
  scheduler.reschedule();
  noticeOwnRevocation();
  watchStaleness(); // a persisted CRL kept because the CA is down may be past its nextUpdate already

  return {
    spiffeId: cfg.spiffe_id,
    revocations,
    material: () => ({
      key: credentials.keyPem,
      cert: credentials.certPem,
      ca: credentials.bundlePem,
      notBefore: credentials.notBefore,
      notAfter: credentials.notAfter,
      serial: credentials.serial,
    }),
    crl() {
      const next = revocations.nextUpdate;
      const number = revocations.number;
      return {
        inForce: revocations.inForce,
        ...(number !== undefined ? { number: String(number) } : {}),
        ...(next ? { nextUpdate: next.toISOString() } : {}),
        secondsPastNextUpdate: next ? Math.max(0, Math.floor((Date.now() - next.getTime()) / 1000)) : 0,
        ...(crlError ? { lastError: crlError } : {}),
      };
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    status() {
      const next = renewalsStopped ? undefined : scheduler.nextAt;
      // Checked again only when the certificate or the bundle changed (a signature check each time).
      const trustedByBundle = () => {
        if (chainCheck?.credentials !== credentials) chainCheck = { credentials, ok: chainsToItsBundle(credentials) };
        return chainCheck.ok;
      };
      return {
        spiffeId: credentials.spiffeId,
        serial: credentials.serial,
        notAfter: credentials.notAfter.toISOString(),
        secondsToExpiry: Math.max(0, Math.floor((credentials.notAfter.getTime() - Date.now()) / 1000)),
        ...(next ? { nextRenewalAt: next.toISOString() } : {}),
        ...(lastError ? { lastError } : {}),
        ...(isExpired(credentials) ? { expired: true as const } : {}),
        ...(revocations.isRevoked(credentials.serial) ? { revoked: true as const } : {}),
        ...(trustedByBundle() ? {} : { untrusted: true as const }),
        ...(lock.lost !== undefined ? { stateLockLost: describeLockLoss(lock.lost) } : {}),
      };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      scheduler.stop();
      refresher.stop();
      clearTimeout(staleTimer);
      client.close().catch(() => {}); // nothing left to do with a connection that will not close
      // Released at once when nothing is being written: a next process may take the dir right away.
      if (writer.idle) return lock.release();
      let timer: NodeJS.Timeout | undefined;
      const landed = await Promise.race([
        writer.settled().then(() => true),
        new Promise<false>((resolve) => (timer = setTimeout(resolve, STOP_WRITES_WAIT_MS, false))),
      ]);
      clearTimeout(timer);
      if (landed) return lock.release();
      // A write that may still land: the dir is not handed over under it.
      logger.warn(
        { state_dir: cfg.state_dir },
        `mesh: a save in mesh.state_dir has not finished within ${STOP_WRITES_WAIT_MS / 1000} s; its lock is left to go stale rather than released under it`,
      );
    },
  };
}

/** Persisted credentials when still valid; else a (new) enrollment with the bootstrap token. */
async function initialCredentials(
  cfg: MeshConfig,
  store: CredentialStore,
  client: ReturnType<typeof createCaClient>,
  configuredRoots: string,
  deps: MeshDeps,
  otherCa: boolean,
): Promise<{ credentials: WorkloadCredentials; enrolled: boolean; fresh?: boolean }> {
  let persisted: WorkloadCredentials | undefined;
  let unusable: string | undefined;
  try {
    if (otherCa) unusable = `the credentials in ${cfg.state_dir} were issued under a CA whose root mesh.ca no longer names`;
    else persisted = store.load(cfg.spiffe_id);
  } catch (err) {
    // Another identity or a damaged state: a token enrolls afresh (replacing it), else say why.
    if (!(err instanceof CredentialError)) throw err;
    unusable = err.message;
  }
  const namesChanged = persisted ? dnsNamesChange(persisted, cfg.dns_names) : undefined;
  if (persisted && !isExpired(persisted) && (namesChanged === undefined || !cfg.bootstrap_token)) {
    deps.logger.info(
      { 'warden.spiffe.id': persisted.spiffeId, 'warden.cert.serial': persisted.serial },
      'mesh: using persisted credentials',
    );
    if (namesChanged !== undefined)
      keepingNames(
        cfg,
        persisted,
        `${namesChanged}; set mesh.bootstrap_token to a token granting them and restart to enroll with them`,
        deps,
      );
    return { credentials: persisted, enrolled: false };
  }
  if (!cfg.bootstrap_token) {
    throw new MeshStartupError(
      'ERR_MESH_TOKEN_REQUIRED',
      unusable
        ? `mesh: ${unusable}; set mesh.bootstrap_token to enroll again`
        : persisted
          ? `mesh: the certificate in ${cfg.state_dir} expired at ${persisted.notAfter.toISOString()}; set mesh.bootstrap_token to enroll again`
          : `mesh: ${cfg.state_dir} holds no credentials; set mesh.bootstrap_token (e.g. \${WARDEN_BOOTSTRAP_TOKEN}) to enroll`,
    );
  }
  if (unusable) deps.logger.warn({ reason: unusable }, 'mesh: persisted credentials unusable; enrolling with mesh.bootstrap_token');
  if (namesChanged !== undefined && persisted && !isExpired(persisted))
    deps.logger.info({ reason: namesChanged }, 'mesh: enrolling with mesh.bootstrap_token for the new DNS names');
  // The token is single-use: a state dir that cannot take the credentials must fail before it is spent.
  try {
    await store.probeWritable();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    if (persisted && !isExpired(persisted) && namesChanged !== undefined) {
      // Still a valid certificate to serve on: no reason to refuse the start over the new names.
      keepingNames(cfg, persisted, `${namesChanged}; not enrolled with them: mesh.state_dir cannot be written (${code})`, deps);
      return { credentials: persisted, enrolled: false };
    }
    throw new MeshStartupError(
      'ERR_MESH_STATE_UNWRITABLE',
      `mesh: cannot write in mesh.state_dir ${cfg.state_dir} (${code}): give this process's user write access and room there (owner, mode, free space, a writable volume) or set another mesh.state_dir; the bootstrap token was not used`,
    );
  }
  // A retry after an answer lost past the CA's commit sends the same key and CSR: the CA answers it
  // with the certificate the token paid for (a new key got ERR_CA_TOKEN_USED for good).
  const kept = store.loadPending(cfg.spiffe_id, cfg.dns_names);
  if (kept !== undefined && 'ignored' in kept) deps.logger.warn({ reason: kept.ignored }, 'mesh: pending enrollment not used');
  const pending = kept !== undefined && 'pending' in kept ? kept.pending : undefined;
  const { keyPem, csrPem } = pending ?? (await createKeyAndCsr(cfg.spiffe_id, cfg.dns_names));
  if (pending) deps.logger.info({ state_dir: cfg.state_dir }, 'mesh: enrolling with the key of an earlier attempt whose answer never came');
  else store.savePending({ spiffeId: cfg.spiffe_id, dnsNames: [...cfg.dns_names], keyPem, csrPem });
  let issued;
  try {
    issued = await client.enroll(cfg.bootstrap_token, csrPem);
  } catch (err) {
    // Kept only for a retry that can succeed: once the CA refused this key or CSR, or said the token
    // went to another (or a revoked) certificate, every later start would send it to the same end.
    const keyRefused = err instanceof CaApiError && KEY_FINAL_REFUSALS.has(err.code);
    if (keyRefused) store.clearPending();
    if (persisted && !isExpired(persisted) && namesChanged !== undefined) {
      // The token (perhaps the one already spent on this certificate) cannot enroll the new names:
      // keep serving on the valid certificate rather than refuse to start.
      const why = `${namesChanged}; enrolling with them failed (${describeCaError(err)}): set mesh.bootstrap_token to a new token granting them and restart`;
      keepingNames(cfg, persisted, why, deps);
      return { credentials: persisted, enrolled: err instanceof CaApiError };
    }
    const caCode = err instanceof CaApiError || err instanceof CaUnavailableError ? err.code : undefined;
    const fileNote =
      keyRefused && pending
        ? `; the key of an earlier attempt kept in ${join(cfg.state_dir, STATE_FILES.pending)} was refused and that file removed: the next start makes a new key`
        : '';
    throw new MeshStartupError(
      'ERR_MESH_ENROLL_FAILED',
      `mesh: enrollment at ${cfg.ca.url} failed: ${describeCaError(err)}${(err as Error).message ? ` — ${(err as Error).message}` : ''}${fileNote}`,
      caCode,
    );
  }
  const credentials = describeCredentials(keyPem, issued.certificate + issued.chain, issued.bundle);
  if (credentials.spiffeId !== cfg.spiffe_id) {
    throw new MeshStartupError(
      'ERR_MESH_ENROLL_FAILED',
      `mesh: the CA issued ${credentials.spiffeId}, not mesh.spiffe_id ${cfg.spiffe_id}`,
    );
  }
  // Without a usable bundle the sidecar runs on the configured roots (see startMeshIdentity).
  const refused = issuedCertificateProblem(
    isUsableBundle(credentials.bundlePem) ? credentials : { ...credentials, bundlePem: configuredRoots },
    configuredRoots,
  );
  if (refused !== undefined) {
    throw new MeshStartupError(
      'ERR_MESH_ENROLL_FAILED',
      `mesh: the CA at ${cfg.ca.url} issued an unusable certificate: ${refused}; nothing was saved (check the CA's clock and issuing certificate, then start again with a new bootstrap token)`,
      'ERR_MESH_CERT_REFUSED',
    );
  }
  try {
    await store.save(credentials);
    store.clearPending();
  } catch (err) {
    throw new MeshStartupError(
      'ERR_MESH_ENROLL_FAILED',
      `mesh: enrolled as ${credentials.spiffeId} (certificate ${credentials.serial}) but saving it in mesh.state_dir ${cfg.state_dir} failed: ${(err as Error).message}; the bootstrap token is spent and the key lost: fix the state dir, then start again with a new bootstrap token (warden ca token create)`,
    );
  }
  deps.events.emit('warden.mesh.enrolled', {
    'warden.spiffe.id': credentials.spiffeId,
    'warden.cert.serial': credentials.serial,
    'warden.cert.not_after': credentials.notAfter.toISOString(),
  });
  return { credentials, enrolled: true, fresh: true };
}

/**
 * CA refusals after which a pending key can never be certified with this token: the key or CSR is
 * refused (a key revoked as compromised), or the token already went to another or a revoked certificate.
 */
const KEY_FINAL_REFUSALS: ReadonlySet<string> = new Set(['ERR_CA_KEY_REJECTED', 'ERR_CA_CSR_INVALID', 'ERR_CA_TOKEN_USED']);

/** What differs between the certificate's DNS names and mesh.dns_names (as a set, case-insensitive), or undefined. */
function dnsNamesChange(credentials: WorkloadCredentials, configured: readonly string[]): string | undefined {
  const held = [...new Set(dnsNamesOf(credentials.certPem))].sort();
  const wanted = [...new Set(configured.map((name) => name.toLowerCase()))].sort();
  if (held.join('\n') === wanted.join('\n')) return undefined;
  const list = (names: string[]) => (names.length ? names.join(', ') : 'none');
  return `mesh.dns_names (${list(wanted)}) differs from the DNS names of certificate ${credentials.serial} (${list(held)})`;
}

/** Serving on a certificate whose names are not mesh.dns_names: renewals keep its names (the CA allows no other). */
function keepingNames(cfg: MeshConfig, credentials: WorkloadCredentials, why: string, deps: MeshDeps): void {
  const detail = `${why}; until then the certificate and its renewals keep its current names`;
  deps.events.emit('warden.mesh.dns_names_ignored', {
    'warden.spiffe.id': credentials.spiffeId,
    'warden.cert.serial': credentials.serial,
    'warden.detail': detail,
  });
  deps.logger.warn({ 'warden.spiffe.id': credentials.spiffeId, state_dir: cfg.state_dir }, `mesh: ${detail}`);
}
