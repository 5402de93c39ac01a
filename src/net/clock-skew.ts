/**
 * How far apart the CA's and a sidecar's clocks may be: a CRL whose thisUpdate is further in a
 * sidecar's future is refused (src/mesh/crl-check.ts), and a revoked certificate stays on the CRL
 * this long past its expiry (src/ca/crl.ts), for a sidecar whose clock is behind still takes it as valid.
 */
export const CRL_MAX_SKEW_MS = 5 * 60_000;
