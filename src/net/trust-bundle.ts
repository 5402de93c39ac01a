/**
 * What makes a trust bundle usable: at least one certificate, each of which parses. An empty or
 * damaged bundle applied anywhere (the CA client, the TLS contexts, bundle.pem) would leave the
 * sidecar trusting nobody — not its peers, not even its CA — so it is refused, never applied.
 */
import { X509Certificate } from 'node:crypto';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function certificatesOf(pem: string): string[] {
  return pem.match(PEM_CERT) ?? [];
}

/**
 * The certificates of a PEM bundle that parse (what OpenSSL would trust of it): the listener's
 * client trust and the loader's check of client_ca read a file the same way.
 */
export function parsedCertificatesOf(pem: Buffer | string | undefined): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const block of certificatesOf(pem?.toString() ?? '')) {
    try {
      out.push(new X509Certificate(block));
    } catch {
      // Not a certificate OpenSSL would trust either.
    }
  }
  return out;
}

/** A bundle refused by trust() or saveBundle(). */
export class BundleError extends Error {
  readonly code = 'ERR_MESH_BUNDLE_INVALID';
  constructor(what: string, problem: string) {
    super(`${what}: ${problem}`);
    this.name = 'BundleError';
  }
}

/** Why `pem` is not a usable bundle, or undefined when it is one. */
export function bundleProblem(pem: string | undefined): string | undefined {
  const roots = certificatesOf(pem ?? '');
  if (roots.length === 0) return 'the bundle holds no certificate';
  try {
    for (const root of roots) new X509Certificate(root);
  } catch {
    return 'the bundle holds a certificate that does not parse';
  }
  return undefined;
}

export const isUsableBundle = (pem: string | undefined): pem is string => bundleProblem(pem) === undefined;

/** Throws BundleError (naming `what` refused it) unless `pem` is a usable bundle. */
export function assertUsableBundle(pem: string, what: string): void {
  const problem = bundleProblem(pem);
  if (problem !== undefined) throw new BundleError(what, problem);
}
