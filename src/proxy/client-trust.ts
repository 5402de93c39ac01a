/**
 * Which client CAs a connection's verified chain relies on (listener.ts closes it when a reload
 * stops trusting one), and in file mode the chain's links as client_crl entries name them.
 */
import type { X509Certificate } from 'node:crypto';
import type { ChainLink } from '../mesh/peer-identity.js';
import { issuerKeyOf } from '../net/client-crl.js';
import { canonicalSerial } from '../net/serial.js';
import { parsedCertificatesOf } from '../net/trust-bundle.js';

/** At most this many certificates a client sent are looked at (listener.ts's presentedChain keeps 10). */
const MAX_PRESENTED = 10;
/** Path length, leaf excluded, beyond which nothing is looked for. */
const MAX_DEPTH = 8;
/**
 * Signature checks one classification may make: an honest chain needs none (one issuer named at each
 * level) or a few (a cross-certified intermediate; a resumed session's leaf). Certificates a client
 * adds that carry its issuer's name and key (anyone can certify a public key) would make each level
 * check each other one.
 */
const MAX_VERIFICATIONS = 8;

/** One classification's walk up from a leaf. */
interface Walk {
  /** Only the leaf: OpenSSL verified no chain at this handshake, every issuer's signature is checked. */
  readonly resumed: boolean;
  /** The CA certificates the client sent (not in client_ca), or for a resumed session those remembered. */
  readonly candidates: readonly X509Certificate[];
  /** Fingerprints of what the client sent. */
  readonly sent: ReadonlySet<string>;
  /** Per certificate walked: whether it reaches a root of client_ca. */
  readonly reaches: Map<string, boolean>;
  readonly anchors: Set<string>;
  /** The candidates on paths that reach a root. */
  readonly via: X509Certificate[];
  /** Signature checks left; below 0 the walk gave up and knows no anchor. */
  verifications: number;
}

/** One classification's search for the path client_crl entries name (file mode). */
interface PathSearch {
  /** The CA certificates the client sent (not in client_ca), or for a resumed session those of verified paths. */
  readonly candidates: readonly X509Certificate[];
  /** Certificates searched from (by fingerprint). */
  readonly tried: Set<string>;
  /** Signature checks left; below 0 the search gave up: no path known. */
  verifications: number;
}

/** Whether `ca`'s key verifies `cert`'s signature, within the walk's budget. */
function verifies(cert: X509Certificate, ca: X509Certificate, walk: Walk): boolean {
  return walk.verifications-- > 0 && cert.verify(ca.publicKey);
}

/**
 * The client CAs a secure context trusts, and which of them a client's chain relies on: walked up
 * from the leaf only, each step to a certificate that issued the one below (never "any certificate
 * the client sent that leads to a trusted root": red team 28 sent `[leaf, root B, intermediate of
 * root A]` and was taken for root B's). Every path counts: a cross-certified intermediate relies on
 * both roots. The client_ca issuers of CA certificates are remembered (many callers share them), so
 * an honest handshake costs a few name comparisons and no signature check.
 *
 * In file mode also the path's links as client_crl entries name them (PeerIdentity.chain): the leaf
 * and every CA certificate above it, whether in client_ca or sent by the client, so a root's CRL
 * that revokes an intermediate reaches the callers under it (as nginx's ssl_crl and Envoy's crl).
 * That path is found apart from the anchors, each step's signature checked (#pathFrom).
 */
export class ClientTrust {
  readonly fingerprints: ReadonlySet<string>;
  readonly #cas: readonly X509Certificate[];
  /** The self-signed CAs of client_ca (by fingerprint): where paths end. */
  readonly #roots: ReadonlySet<string>;
  /** Per CA certificate above a leaf (by fingerprint): the CAs of client_ca it names as its issuer. */
  readonly #named = new Map<string, readonly X509Certificate[]>();
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
  /**
   * File mode: intermediates clients sent whose every step up to a root of client_ca had its
   * signature checked (#pathFrom), where a resumed session's path is looked for. Apart from #sent,
   * which takes what the anchor walk names without checking it (it can only add anchors): a caller
   * with look-alikes of its intermediate would fill this one (emptied when full) and make others'
   * resumed sessions untraceable. Kept across reloads as #sent is; each step is checked again.
   */
  readonly #onPaths: Map<string, X509Certificate>;

  constructor(pem: Buffer | undefined, issuerKeys: boolean, previous?: ClientTrust) {
    this.#cas = parsedCertificatesOf(pem);
    this.fingerprints = new Set(this.#cas.map((c) => c.fingerprint256));
    this.#roots = new Set(this.#cas.filter((c) => c.checkIssued(c)).map((c) => c.fingerprint256));
    this.#issuerKeys = issuerKeys ? new Map(this.#cas.map((ca) => [ca.fingerprint256, issuerKeyOf(ca)])) : undefined;
    this.#sent = new Map(previous === undefined ? undefined : previous.#sent);
    this.#onPaths = new Map(previous === undefined ? undefined : previous.#onPaths);
  }

  /**
   * For a verified client's certificates (leaf first): its path's links as client_crl entries name
   * them (file mode only, else empty; empty in file mode: not traced, see #chainOf), and the fingerprints of the client CAs its verified paths rely
   * on (anchors), empty when none is known: a resumed session, which has only the leaf, whose
   * intermediates are not remembered, or a chain too costly to walk (the caller treats it as
   * relying on a CA no longer trusted as soon as one is removed).
   */
  classify(presented: readonly X509Certificate[]): { chain: readonly ChainLink[]; anchors: readonly string[] } {
    const leaf = presented[0];
    if (leaf === undefined) return { chain: [], anchors: [] };
    const sent = presented.slice(1, MAX_PRESENTED);
    const walk: Walk = {
      // A resumed session's client sent no chain: its path is looked for through the intermediates remembered.
      resumed: sent.length === 0,
      candidates: sent.length > 0 ? sent.filter((c) => c.ca && !this.fingerprints.has(c.fingerprint256)) : [...this.#sent.values()],
      sent: new Set(sent.map((c) => c.fingerprint256)),
      reaches: new Map(),
      anchors: new Set(),
      via: [],
      verifications: MAX_VERIFICATIONS,
    };
    const reached = this.#walk(leaf, walk, 0);
    if (walk.verifications < 0 || !reached) walk.anchors.clear();
    if (sent.length > 0) for (const ca of walk.via) remember(this.#sent, ca.fingerprint256, ca);
    return { chain: this.#issuerKeys === undefined ? [] : (this.#chainOf(leaf, sent) ?? []), anchors: [...walk.anchors] };
  }

  /**
   * The leaf's path as client_crl entries name it; undefined when none is found (a resumed session
   * of an intermediate not remembered; a chain too costly to search): the caller refuses it while
   * client_crl is in force, as its revocation cannot be checked.
   */
  #chainOf(leaf: X509Certificate, sent: readonly X509Certificate[]): readonly ChainLink[] | undefined {
    // A certificate pinned in client_ca (self-signed, its own anchor): traced, with nothing above it
    // a CRL could name. An empty path meant "not traced": such a probe was refused on every route
    // once client_crl was set beside it (review rt28-2, F3).
    if (this.fingerprints.has(leaf.fingerprint256)) return PINNED;
    const search: PathSearch = {
      // A resumed session's client sent no chain: its path is looked for through intermediates of verified paths.
      candidates: sent.length > 0 ? sent.filter((c) => c.ca && !this.fingerprints.has(c.fingerprint256)) : [...this.#onPaths.values()],
      tried: new Set(),
      verifications: MAX_VERIFICATIONS,
    };
    return this.#pathFrom(leaf, search, 0);
  }

  /**
   * Whether `cert` reaches a root of client_ca, adding to `walk.anchors` the client_ca certificates on
   * the way that the client did not send itself (the roots, and intermediates it left to client_ca):
   * every path, as each of them could have been OpenSSL's.
   */
  #walk(cert: X509Certificate, walk: Walk, depth: number): boolean {
    const known = walk.reaches.get(cert.fingerprint256);
    if (known !== undefined) return known;
    if (this.#roots.has(cert.fingerprint256)) {
      walk.anchors.add(cert.fingerprint256); // trusted only as a CA of client_ca, even when the client sent it too
      return true;
    }
    walk.reaches.set(cert.fingerprint256, false); // a loop of cross-certificates ends here
    let reaches = false;
    if (depth < MAX_DEPTH) {
      for (const ca of this.#issuersOf(cert, walk, depth)) {
        if (!this.#walk(ca, walk, depth + 1)) continue;
        reaches = true;
        if (!this.fingerprints.has(ca.fingerprint256)) walk.via.push(ca);
        else if (!walk.sent.has(ca.fingerprint256)) walk.anchors.add(ca.fingerprint256);
      }
    }
    walk.reaches.set(cert.fingerprint256, reaches);
    return reaches;
  }

  /**
   * The CA certificates of client_ca and among the candidates that `cert` names as its issuer
   * (checkIssued: names, key identifiers, key usage). Of a chain OpenSSL verified at this handshake,
   * one such is its issuer: OpenSSL chose it the same way and checked its signature. When several
   * are named, or the certificates are remembered ones (a resumed session), the signature tells.
   * A certificate taken here that is not on OpenSSL's path can only add anchors, never hide one.
   */
  #issuersOf(cert: X509Certificate, walk: Walk, depth: number): X509Certificate[] {
    let inCa = depth > 0 ? this.#named.get(cert.fingerprint256) : undefined;
    if (inCa === undefined) {
      inCa = this.#cas.filter((ca) => ca.fingerprint256 !== cert.fingerprint256 && cert.checkIssued(ca));
      if (depth > 0) remember(this.#named, cert.fingerprint256, inCa);
    }
    const named = [...inCa, ...walk.candidates.filter((ca) => ca.fingerprint256 !== cert.fingerprint256 && cert.checkIssued(ca))];
    return named.length > 1 || walk.resumed ? named.filter((ca) => verifies(cert, ca, walk)) : named;
  }

  /**
   * The links from `cert` up to a root of client_ca, or undefined when none is found within the
   * search's budget. Each step's signature is checked: OpenSSL checked those of its own path, but
   * which of the certificates a client sent that path went through is not known (OpenSSL takes the
   * first time-valid one of a name; an expired look-alike sent ahead of it is not taken), and anyone
   * can certify an intermediate's key under the root's name. Taken by names only, such a forgery
   * hid the intermediate's serial from the root's CRL. The one exception: the leaf's issuer when
   * client_ca holds exactly one CA that names it, which OpenSSL (trusted first) took and checked.
   */
  #pathFrom(cert: X509Certificate, search: PathSearch, depth: number): readonly ChainLink[] | undefined {
    if (this.#roots.has(cert.fingerprint256)) return [];
    const known = depth > 0 ? this.#links.get(cert.fingerprint256) : undefined;
    if (known !== undefined) return known;
    if (depth >= MAX_DEPTH || search.tried.has(cert.fingerprint256)) return undefined;
    search.tried.add(cert.fingerprint256); // searched once: a loop, or a web of look-alikes naming each other, ends here
    const inCa = this.#cas.filter((ca) => ca.fingerprint256 !== cert.fingerprint256 && cert.checkIssued(ca));
    const trusted = depth === 0 && inCa.length === 1 ? inCa[0] : undefined;
    const named = [...inCa, ...search.candidates.filter((ca) => ca.fingerprint256 !== cert.fingerprint256 && cert.checkIssued(ca))];
    for (const ca of named) {
      if (ca !== trusted && !(search.verifications-- > 0 && cert.verify(ca.publicKey))) {
        if (search.verifications < 0) return undefined;
        continue;
      }
      const above = this.#pathFrom(ca, search, depth + 1);
      if (above === undefined) {
        if (search.verifications < 0) return undefined;
        continue;
      }
      const links = [{ issuer: this.#issuerKeyOf(ca), serial: canonicalSerial(cert.serialNumber) }, ...above];
      if (depth > 0) remember(this.#links, cert.fingerprint256, links);
      if (!this.fingerprints.has(ca.fingerprint256)) remember(this.#onPaths, ca.fingerprint256, ca);
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
}

/** The path of a leaf pinned in client_ca: one link no CRL names (no issuer key is empty). */
const PINNED: readonly ChainLink[] = Object.freeze([Object.freeze({ issuer: '', serial: '' })]);

/** Sets `key` in a cache of at most `max` entries (emptied when full: the entries are cheap to find again). */
function remember<V>(map: Map<string, V>, key: string, value: V, max = 1024): void {
  if (map.size >= max && !map.has(key)) map.clear();
  map.set(key, value);
}
