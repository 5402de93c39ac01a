#!/usr/bin/env node
// What a sidecar does with a new CRL of N revocations, timed against @peculiar/x509 (asn1js) reading
// the same bytes: the library's parse (what the sidecar did four times per new CRL before
// src/net/crl-reader.ts), the reader, and the reader plus the signature check and the Set of
// serials (a refresh's whole synchronous work). Each in a loop of its own, alternated, median of
// rounds; the event loop is blocked for the whole of each. The CRL is made as the CA makes it.
// Usage: node bench/crl-read.js [--sizes 1000,10000,50000] [--rounds 5]
import { webcrypto } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { certificateList, tbsCertList } from '../dist/ca/crl-der.js';
import { EC_P256, randomSerial, x509 } from '../dist/ca/pki.js';
import { verifyCrl } from '../dist/mesh/crl-check.js';
import { readCrl } from '../dist/net/crl-reader.js';
import { createRevocationList } from '../dist/mesh/revocation-list.js';
import { writeResult } from './lib.js';

const { values: opts } = parseArgs({
  options: { sizes: { type: 'string', default: '1000,10000,50000' }, rounds: { type: 'string', default: '5' } },
});
const sizes = opts.sizes.split(',').map(Number);
const rounds = Number(opts.rounds);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const keys = await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
const issuer = await x509.X509CertificateGenerator.createSelfSigned({
  serialNumber: '01',
  name: 'CN=Warden bench intermediate',
  notBefore: new Date(Date.now() - 60_000),
  notAfter: new Date(Date.now() + 86_400_000),
  keys,
  signingAlgorithm: EC_P256,
  extensions: [new x509.BasicConstraintsExtension(true)],
});
const issuerPem = issuer.toString('pem');

async function crlOf(n) {
  const now = new Date();
  const tbs = tbsCertList({
    issuer: issuer.subjectName.toArrayBuffer(),
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + 3_600_000),
    extensions: [new x509.Extension('2.5.29.20', false, new Uint8Array([0x02, 0x01, 0x01])).rawData],
    entries: Array.from({ length: n }, () => ({ serial: randomSerial(), revokedAt: now, reason: 1 })),
  });
  const signature = new x509.AsnEcSignatureFormatter().toAsnSignature(
    { ...EC_P256 },
    await webcrypto.subtle.sign(EC_P256, keys.privateKey, tbs),
  );
  return certificateList(tbs, new Uint8Array(signature));
}

const ms = (fn) => {
  const started = performance.now();
  fn();
  return performance.now() - started;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round1 = (x) => Math.round(x * 10) / 10;

const rows = [];
for (const n of sizes) {
  const der = await crlOf(n);
  const times = { library: [], reader: [], refresh: [] };
  for (let r = 0; r < rounds; r++) {
    times.library.push(ms(() => new x509.X509Crl(der, { berOptions: { maxNodes: der.length } }).entries.length));
    times.reader.push(ms(() => readCrl(der)));
    times.refresh.push(
      ms(() => {
        const crl = readCrl(der);
        if (!verifyCrl(crl, issuerPem)) throw new Error('the bench CRL does not verify');
        createRevocationList().update(crl);
      }),
    );
  }
  const row = {
    entries: n,
    bytes: der.length,
    library_parse_ms: round1(median(times.library)),
    reader_ms: round1(median(times.reader)),
    refresh_ms: round1(median(times.refresh)),
  };
  row.library_over_reader = Math.round((row.library_parse_ms / row.reader_ms) * 10) / 10;
  rows.push(row);
  console.log(JSON.stringify(row));
}
const file = writeResult(root, 'crl-read', { date: new Date().toISOString(), node: process.version, rounds, rows });
console.log(`written ${file}`);
