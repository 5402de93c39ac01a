/**
 * Fuzz: the sidecar's CRL reader (src/net/crl-reader.ts). For any list of revocations, it reads
 * what @peculiar/x509 reads; and a signed CRL changed in any way — an octet replaced, inserted or
 * removed, cut short — is never accepted (read and verified): it is refused with CrlFormatError, or
 * read and its signature fails. No other exception escapes.
 */
import t from 'tap';
import fc from 'fast-check';
import { loadCaMaterial } from '../../src/ca/layout.js';
import { x509 } from '../../src/ca/pki.js';
import { canonicalSerial } from '../../src/net/serial.js';
import { verifyCrl } from '../../src/mesh/crl-check.js';
import { CrlFormatError, readCrl } from '../../src/net/crl-reader.js';
import { crlNumberExtension, libraryCrl, testCaMaterial } from '../support/ca-harness.js';
import { describeThrown, fuzz, fuzzAsync } from './fuzz-budget.js';

const ca = await loadCaMaterial((await testCaMaterial()).dir);

const signed = (entries: x509.X509CrlEntryParams[], crlNumber: number | undefined, thisUpdate: Date) =>
  libraryCrl(ca, { entries, thisUpdate, extensions: crlNumber === undefined ? [] : [crlNumberExtension(crlNumber)] });

/** Read and verified: true; refused: false; any other exception fails the property. */
function accepted(der: Buffer): boolean {
  try {
    return verifyCrl(readCrl(der), ca.intermediatePem);
  } catch (err) {
    if (err instanceof CrlFormatError) return false;
    throw new Error(`readCrl threw ${describeThrown(err)}`);
  }
}

// Whole seconds between 1950 and 2100: the range both time forms cover (UTCTime until 2049).
const date = fc.integer({ min: -631_152_000, max: 4_102_444_799 }).map((s) => new Date(s * 1000));
const entry = fc.record({
  serialNumber: fc.uint8Array({ minLength: 1, maxLength: 20 }).map((b) => Buffer.from(b).toString('hex')),
  revocationDate: date,
  reason: fc.option(fc.constantFrom(...[0, 1, 2, 3, 4, 5, 6, 9, 10].map((r) => r as x509.X509CrlReason)), { nil: undefined }),
});

t.test('crl reader', async (t) => {
  await fuzzAsync(
    t,
    'crl.read_like_library',
    // Unique serials: the library's generator refuses a repeated one.
    [
      fc.uniqueArray(entry, { maxLength: 12, selector: (e) => canonicalSerial(e.serialNumber) }),
      fc.option(fc.nat(127), { nil: undefined }),
      date,
    ],
    async (entries, crlNumber, thisUpdate) => {
      const der = await signed(entries, crlNumber, thisUpdate);
      const library = new x509.X509Crl(der);
      const crl = readCrl(der);
      return (
        JSON.stringify(crl.serials) === JSON.stringify(library.entries.map((e) => canonicalSerial(e.serialNumber))) &&
        crl.thisUpdate.getTime() === thisUpdate.getTime() &&
        crl.nextUpdate?.getTime() === library.nextUpdate?.getTime() &&
        crl.number === (crlNumber === undefined ? undefined : BigInt(crlNumber)) &&
        verifyCrl(crl, ca.intermediatePem)
      );
    },
    { runs: 60 },
  );

  const base = await signed(
    [
      { serialNumber: '00a1b2', revocationDate: new Date('2030-01-01T00:00:00Z'), reason: x509.X509CrlReason.keyCompromise },
      { serialNumber: '7f', revocationDate: new Date('2060-01-01T00:00:00Z') },
    ],
    5,
    new Date('2031-01-01T00:00:00Z'),
  );
  t.ok(accepted(base), 'the unaltered CRL is accepted');
  const edit = fc.oneof(
    fc.record({ kind: fc.constant('replace' as const), at: fc.nat(base.length - 1), octet: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(base.length), octet: fc.nat(255) }),
    fc.record({ kind: fc.constant('remove' as const), at: fc.nat(base.length - 1), octet: fc.constant(0) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat(base.length - 1), octet: fc.constant(0) }),
  );
  fuzz(
    t,
    'crl.edited_never_accepted',
    [fc.array(edit, { minLength: 1, maxLength: 3 })],
    (edits) => {
      let der = Buffer.from(base);
      for (const { kind, at, octet } of edits) {
        const i = Math.min(at, der.length - (kind === 'insert' ? 0 : 1));
        if (i < 0) break;
        if (kind === 'replace')
          der[i] = (der[i] as number) ^ octet; // never the same octet
        else if (kind === 'insert') der = Buffer.concat([der.subarray(0, i), Buffer.from([octet]), der.subarray(i)]);
        else if (kind === 'remove') der = Buffer.concat([der.subarray(0, i), der.subarray(i + 1)]);
        else der = der.subarray(0, i);
      }
      return der.equals(base) || !accepted(der);
    },
    { runs: 2_000 },
  );
});
