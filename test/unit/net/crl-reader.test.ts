/**
 * The sidecar's CRL reader (src/net/crl-reader.ts) against @peculiar/x509 reading the same CRLs,
 * and what it refuses. No timing assertions: the measured speed is in docs/ca.md ("CRL size").
 */
import t from 'tap';
import { webcrypto } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import { certificateList, tbsCertList } from '../../../src/ca/crl-der.js';
import { loadCaMaterial } from '../../../src/ca/layout.js';
import { EC_P256, randomSerial, x509 } from '../../../src/ca/pki.js';
import { canonicalSerial } from '../../../src/net/serial.js';
import { verifyCrl } from '../../../src/mesh/crl-check.js';
import { CrlFormatError, readCrl } from '../../../src/net/crl-reader.js';
import { crlNumberExtension, libraryCrl as signedCrl, testCaMaterial } from '../../support/ca-harness.js';

const ca = await loadCaMaterial((await testCaMaterial()).dir);
const thisUpdate = new Date('2031-05-06T07:08:09Z');

const libraryCrl = (options: Partial<x509.X509CrlCreateParams> = {}) =>
  signedCrl(ca, { thisUpdate, nextUpdate: new Date(thisUpdate.getTime() + 600_000), ...options });
const number = crlNumberExtension;

/** The reader's error, or a failure naming what it returned instead. */
function refusal(der: Buffer): CrlFormatError | string {
  try {
    readCrl(der);
    return 'read without an error';
  } catch (err) {
    return err instanceof CrlFormatError ? err : `threw ${String(err)}`;
  }
}

t.test('reads what @peculiar/x509 reads: serials, dates, CRL number, issuer, the signed bytes', async (t) => {
  const serials = [
    '80',
    '00ff01',
    'abc',
    '0',
    '7f',
    'ffffffffffffffffffffffffffffffffffffffff',
    ...Array.from({ length: 40 }, randomSerial),
  ];
  const der = await libraryCrl({
    entries: serials.map((serialNumber, i) => ({
      serialNumber,
      revocationDate: new Date(i === 3 ? Date.UTC(2051, 0, 2, 3, 4, 5) : thisUpdate.getTime() - i * 1_000),
      reason: i % 2 ? x509.X509CrlReason.keyCompromise : undefined,
      invalidity: i % 3 ? undefined : new Date(thisUpdate.getTime() - 86_400_000),
    })),
    extensions: [
      number(42),
      new x509.AuthorityKeyIdentifierExtension(ca.intermediate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ?? ''),
    ],
  });
  const library = new x509.X509Crl(der);
  const crl = readCrl(der);
  t.same(
    crl.serials,
    library.entries.map((e) => canonicalSerial(e.serialNumber)),
    'every serial, in order',
  );
  t.equal(crl.serials.length, serials.length);
  t.equal(crl.thisUpdate.getTime(), library.thisUpdate.getTime());
  t.equal(crl.nextUpdate?.getTime(), library.nextUpdate?.getTime());
  t.equal(crl.number, 42n);
  t.equal(new x509.Name(crl.issuer).toString(), library.issuer);
  t.ok(crl.tbs.equals(Buffer.from(AsnConvert.parse(der, CertificateList).tbsCertListRaw ?? new ArrayBuffer(0))), 'the signed bytes');
  t.equal(crl.signatureAlgorithm, '1.2.840.10045.4.3.2');
  t.ok(verifyCrl(crl, ca.intermediatePem), 'the signature verifies with the intermediate');
  t.notOk(verifyCrl(crl, ca.bundlePem), 'not with the root');
});

t.test('a CRL without nextUpdate or entries, and one of 20 000 entries made by the CA’s writer', async (t) => {
  // @peculiar/x509 misreads the fields after a missing nextUpdate; the reader takes each field by its tag.
  const bare = await libraryCrl({
    nextUpdate: undefined,
    entries: [{ serialNumber: '0a', revocationDate: thisUpdate }],
    extensions: [number(3)],
  });
  const crl = readCrl(bare);
  t.equal(crl.nextUpdate, undefined);
  t.same(crl.serials, ['a']);
  t.equal(crl.number, 3n);
  const empty = readCrl(await libraryCrl());
  t.same([empty.serials, empty.number], [[], undefined], 'no entries, no extensions');

  const serials = Array.from({ length: 20_000 }, randomSerial);
  const tbs = tbsCertList({
    issuer: ca.intermediate.subjectName.toArrayBuffer(),
    thisUpdate,
    nextUpdate: new Date(thisUpdate.getTime() + 600_000),
    extensions: [number(9).rawData],
    entries: serials.map((serial) => ({ serial, revokedAt: thisUpdate, reason: 1 })),
  });
  const signature = new x509.AsnEcSignatureFormatter().toAsnSignature(
    { ...EC_P256 },
    await webcrypto.subtle.sign(EC_P256, ca.intermediateKey, tbs),
  );
  const big = readCrl(certificateList(tbs, new Uint8Array(signature ?? new ArrayBuffer(0))));
  t.same(big.serials, serials.map(canonicalSerial), 'all 20 000 serials');
  t.ok(verifyCrl(big, ca.intermediatePem));
});

t.test('refused, each with its reason: critical extensions, malformed or non-DER encodings', async (t) => {
  const good = await libraryCrl({ entries: [{ serialNumber: '01', revocationDate: thisUpdate }], extensions: [number(1)] });
  t.ok(readCrl(good), 'the unaltered CRL reads');

  const delta = await libraryCrl({ extensions: [number(2), new x509.Extension('2.5.29.27', true, new Uint8Array([0x02, 0x01, 1]))] });
  t.match(
    refusal(delta),
    { code: 'ERR_MESH_CRL_FORMAT', message: /CRL extension 2\.5\.29\.27 is critical/ },
    'a critical delta CRL indicator',
  );
  const indirect = await libraryCrl({
    entries: [
      { serialNumber: '01', revocationDate: thisUpdate, extensions: [new x509.Extension('2.5.29.29', true, new Uint8Array([0x30, 0x00]))] },
    ],
  });
  t.match(
    refusal(indirect),
    { message: /entry extension 2\.5\.29\.29 is critical/ },
    'a critical certificate-issuer entry extension (indirect CRL)',
  );
  const twice = await libraryCrl({ extensions: [number(1), number(2)] });
  t.match(refusal(twice), { message: /2\.5\.29\.20 appears twice/ }, 'two CRL numbers');

  t.match(refusal(Buffer.concat([good, Buffer.from([0])])), { message: /trailing octets/ }, 'a trailing octet');
  const cut = Array.from({ length: good.length }, (_, n) => refusal(good.subarray(0, n))).filter((r) => typeof r === 'string');
  t.same(cut, [], `every one of the ${good.length} truncations refused with CrlFormatError`);

  // The outer SEQUENCE's length in a longer form than needed (DER wants the shortest).
  const lengthOctets = (good[1] as number) & 0x7f;
  const longer = Buffer.concat([Buffer.from([0x30, 0x80 | (lengthOctets + 1), 0x00]), good.subarray(2)]);
  t.match(refusal(longer), { message: /non-minimal length/ });
  t.match(refusal(Buffer.from([0x30, 0x80, 0x00, 0x00])), { message: /definite length/ }, 'an indefinite length (BER)');

  const der = Buffer.from(good);
  const version = der.indexOf(Buffer.from([0x02, 0x01, 0x01]), 4);
  der[version + 2] = 2;
  t.match(refusal(der), { message: /unsupported CRL version/ }, 'version 3');

  const time = Buffer.from(good);
  const at = time.indexOf('310506070809Z', 0, 'latin1');
  time.write('310231', at, 'latin1');
  t.match(refusal(time), { message: /thisUpdate: no such time "310231070809Z"/ }, '31 February');
});

t.test('a signature algorithm other than ECDSA, or inside and outside the TBSCertList differing, is not our CA’s', async (t) => {
  const good = await libraryCrl();
  const crl = readCrl(good);
  // ecdsa-with-SHA256 → ecdsa-with-SHA384 outside only: the two copies differ.
  const outer = Buffer.from(good);
  const oid = Buffer.from('2a8648ce3d040302', 'hex');
  outer[outer.lastIndexOf(oid) + oid.length - 1] = 3;
  t.match(refusal(outer), { message: /signature algorithms inside and outside/ });
  t.notOk(verifyCrl({ ...crl, signatureAlgorithm: '1.2.840.113549.1.1.11' }, ca.intermediatePem), 'sha256WithRSAEncryption: not verified');
  t.notOk(verifyCrl({ ...crl, signature: Buffer.from([0x30, 0x00]) }, ca.intermediatePem), 'a malformed ECDSA-Sig-Value: false, no throw');
  // Found by test/fuzz/crl-reader.test.ts: an issuer that reads as an element but not as a Name threw from verifyCrl.
  const name = Buffer.from(crl.issuer);
  name[name.indexOf(0x06)] = 0x07;
  t.notOk(verifyCrl({ ...crl, issuer: name }, ca.intermediatePem), 'an issuer that is not a Name: false, no throw');
});
