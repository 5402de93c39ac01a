/**
 * Which client CAs a connection's verified chain relies on (listener.ts closes it when a reload
 * stops trusting one), and in file mode the chain's links as client_crl entries name them.
 */
import type { X509Certificate } from 'node:crypto';
import type { ChainLink } from '../mesh/peer-identity.js';
import { issuerKeyOf } from '../net/client-crl.js';
import { canonicalSerial } from '../net/serial.js';
import { parsedCertificatesOf } from '../net/trust-bundle.js';

/**
 * The client CAs a secure context trusts, and which of them a client's chain leads to: the
 * self-signed root at the end of the path from the certificates the client presented (leaf first)
 * through these CAs. Paths are remembered per certificate (the intermediates many callers share),
 * so a handshake costs a few name comparisons once the first caller of an intermediate was seen.
 *
 * In file mode also the path's links as client_crl entries name them (PeerIdentity.chain): the leaf
 * and every CA certificate above it, whether in client_ca or sent by the client, so a root's CRL
 * that revokes an intermediate reaches the callers under it (as nginx's ssl_crl and Envoy's crl).
 */
export class ClientTrust {
  readonly fingerprints: ReadonlySet<string>;
  readonly #cas: readonly X509Certificate[];
  readonly #roots = new Map<string, string | undefined>();
  /** Per CA (by fingerprint), how a client_crl entry names it (issuerKeyOf); undefined: not wanted (mesh). */
  readonly #issuerKeys: Map<string, string> | undefined;
  /** Per CA certificate above a leaf (by fingerprint): its links up to its root. */
  readonly #links = new Map<string, readonly ChainLink[]>();
  /**
   * Intermediates that clients sent on verified paths (by fingerprint), in both modes: a resumed
   * session gives only the leaf, and its path is found again through them. Kept across reloads (the
   * signature of each on the certificate below it is checked where it is used, and the path above
   * it is found in the client_ca of the time), so a connection resumed before a reload is judged
   * against the new trust by its real root, not closed as of an unknown one.
   */
  readonly #sent: Map<string, X509Certificate>;

  constructor(pem: Buffer | undefined, issuerKeys: boolean, previous?: ClientTrust) {
    this.#cas = parsedCertificatesOf(pem);
    this.fingerprints = new Set(this.#cas.map((c) => c.fingerprint256));
    this.#issuerKeys = issuerKeys ? new Map(this.#cas.map((ca) => [ca.fingerprint256, issuerKeyOf(ca)])) : undefined;
    this.#sent = new Map(previous === undefined ? undefined : previous.#sent);
  }

  /**
   * For a verified client's certificates (leaf first): its path's links as client_crl entries name
   * them (file mode only, else empty), and the fingerprint of the trusted root the chain leads to
   * (for a resumed session, which has only the leaf, through the intermediates remembered; undefined
   * when none is known that issued it).
   */
  classify(presented: readonly X509Certificate[]): { chain: readonly ChainLink[]; anchor: string | undefined } {
    const leaf = presented[0];
    if (leaf === undefined) return { chain: [], anchor: undefined };
    const issuers = this.#issuers(leaf);
    let anchor = this.#rootFrom(leaf, issuers, 0);
    for (const cert of presented.slice(1)) anchor ??= this.#rememberedRoot(cert);
    if (presented.length === 1) anchor ??= this.#rootThroughSent(leaf, 0);
    else if (anchor !== undefined) this.#rememberSent(presented);
    return { chain: this.#issuerKeys === undefined ? [] : (this.#linksFrom(leaf, presented.slice(1), 0) ?? []), anchor };
  }

  /** Remembers the CA certificates of a verified chain that lead to a trusted root (each signed the one below it). */
  #rememberSent(presented: readonly X509Certificate[]): void {
    for (let i = 1; i < presented.length; i++) {
      const ca = presented[i] as X509Certificate;
      const below = presented[i - 1] as X509Certificate;
      if (this.#sent.has(ca.fingerprint256) || this.fingerprints.has(ca.fingerprint256)) continue;
      if (!ca.ca || ca.checkIssued(ca) || !below.checkIssued(ca) || !below.verify(ca.publicKey)) break;
      remember(this.#sent, ca.fingerprint256, ca);
    }
  }

  /**
   * The root above `cert` through the intermediates remembered, each checked to have signed the one
   * below (four levels at most: a path tried per candidate issuer must stay cheap).
   */
  #rootThroughSent(cert: X509Certificate, depth: number): string | undefined {
    if (depth > 3) return undefined;
    for (const ca of this.#sent.values()) {
      if (ca.fingerprint256 === cert.fingerprint256 || !cert.checkIssued(ca) || !cert.verify(ca.publicKey)) continue;
      const root = this.#rememberedRoot(ca) ?? this.#rootThroughSent(ca, depth + 1);
      if (root !== undefined) return root;
    }
    return undefined;
  }

  /**
   * The links from `cert` up to a root of client_ca, or undefined when there is no such path. Its
   * issuer is looked for in client_ca first (OpenSSL's trusted-first), then among the certificates
   * the client sent and those clients sent before on verified paths: these the client chose, so
   * their signature on `cert` is checked.
   */
  #linksFrom(cert: X509Certificate, sent: readonly X509Certificate[], depth: number): readonly ChainLink[] | undefined {
    if (this.fingerprints.has(cert.fingerprint256) && cert.checkIssued(cert)) return [];
    if (depth > 8) return undefined;
    const known = depth > 0 ? this.#links.get(cert.fingerprint256) : undefined;
    if (known !== undefined) return known;
    const serial = canonicalSerial(cert.serialNumber);
    const through = (ca: X509Certificate): readonly ChainLink[] | undefined => {
      const above = this.#linksFrom(ca, sent, depth + 1);
      if (above === undefined) return undefined;
      const links = [{ issuer: this.#issuerKeyOf(ca), serial }, ...above];
      if (depth > 0) remember(this.#links, cert.fingerprint256, links);
      return links;
    };
    for (const ca of this.#issuers(cert)) {
      const links = through(ca);
      if (links !== undefined) return links;
    }
    for (const ca of [...sent, ...this.#sent.values()]) {
      if (ca.fingerprint256 === cert.fingerprint256 || !ca.ca || !cert.checkIssued(ca) || !cert.verify(ca.publicKey)) continue;
      const links = through(ca);
      if (links === undefined) continue;
      remember(this.#sent, ca.fingerprint256, ca);
      return links;
    }
    return undefined;
  }

  #issuerKeyOf(ca: X509Certificate): string {
    const keys = this.#issuerKeys as Map<string, string>;
    let key = keys.get(ca.fingerprint256);
    if (key === undefined) remember(keys, ca.fingerprint256, (key = issuerKeyOf(ca)), this.#cas.length + 1024);
    return key;
  }

  #rememberedRoot(cert: X509Certificate): string | undefined {
    const key = cert.fingerprint256;
    if (!this.#roots.has(key)) {
      if (this.#roots.size >= 1024) this.#roots.clear();
      this.#roots.set(key, this.#rootAbove(cert, 0));
    }
    return this.#roots.get(key);
  }

  /**
   * OpenSSL verified the chain at the handshake: which CA issued a certificate is told by its names
   * and key identifiers (`checkIssued`); the signature is checked only when several CAs match.
   */
  #issuers(cert: X509Certificate): X509Certificate[] {
    const named = this.#cas.filter((ca) => cert.checkIssued(ca));
    return named.length > 1 ? named.filter((ca) => cert.verify(ca.publicKey)) : named;
  }

  #rootAbove(cert: X509Certificate, depth: number): string | undefined {
    return depth > 8 ? undefined : this.#rootFrom(cert, this.#issuers(cert), depth);
  }

  #rootFrom(cert: X509Certificate, issuers: readonly X509Certificate[], depth: number): string | undefined {
    for (const ca of issuers) {
      if (ca.fingerprint256 === cert.fingerprint256 || ca.checkIssued(ca)) return ca.fingerprint256;
      const root = this.#rootAbove(ca, depth + 1);
      if (root !== undefined) return root;
    }
    return undefined;
  }
}

/** Sets `key` in a cache of at most `max` entries (emptied when full: the entries are cheap to find again). */
function remember<V>(map: Map<string, V>, key: string, value: V, max = 1024): void {
  if (map.size >= max && !map.has(key)) map.clear();
  map.set(key, value);
}
