/**
 * Fuzz: the CA's CSR checks (src/ca/csr-policy.ts). The CSR arrives from anyone holding a bootstrap
 * token, so whatever it is — not a string, not PEM, PEM around garbage, a valid CSR with bytes
 * flipped, a properly signed CSR whose SAN extension is garbage — checkCsr answers with a CSR or a
 * WardenError with one of the CA's stable codes, never another exception. What it accepts is what
 * was signed, and namesWithinGrant only ever returns granted names.
 */
import t from 'tap';
import fc from 'fast-check';
import { checkCsr, namesWithinGrant, type CheckedCsr } from '../../src/ca/csr-policy.js';
import { SAN_OID, x509, type CryptoKeyPair } from '../../src/ca/pki.js';
import { WardenError } from '../../src/errors.js';
import { makeCsr, ORDERS } from '../support/ca-harness.js';
import { describeThrown, fuzzAsync } from './fuzz-budget.js';

const CSR_CODES = new Set(['ERR_CA_CSR_INVALID', 'ERR_CA_KEY_REJECTED']);
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const GRANT = { spiffeId: ORDERS, dnsNames: ['orders.shop', 'Orders.Internal'] };

const pem = (der: Uint8Array, label = 'CERTIFICATE REQUEST') =>
  `-----BEGIN ${label}-----\n${(
    Buffer.from(der)
      .toString('base64')
      .match(/.{1,64}/g) ?? []
  ).join('\n')}\n-----END ${label}-----\n`;

/** checkCsr's outcome: the CSR, or the code of a typed refusal; anything else fails the property. */
async function outcome(input: unknown): Promise<CheckedCsr | string> {
  try {
    return await checkCsr(input);
  } catch (err) {
    if (err instanceof WardenError && CSR_CODES.has(err.code) && err.rule) return err.code;
    throw new Error(`checkCsr threw ${describeThrown(err)}`);
  }
}

const valid = await makeCsr({ spiffeId: ORDERS, dnsNames: ['orders.shop'] });
const validDer = new Uint8Array(new x509.Pkcs10CertificateRequest(valid.csrPem).rawData);
const validChecked = await checkCsr(valid.csrPem);
const keys: CryptoKeyPair = valid.keys;

t.test('garbage of every shape is refused with a CA code', async (t) => {
  const garbage = fc.oneof(
    fc.anything(),
    fc.string({ maxLength: 200 }),
    fc.uint8Array({ maxLength: 300 }).map((b) => pem(b)),
    fc.uint8Array({ maxLength: 300 }).map((b) => pem(b, 'NEW CERTIFICATE REQUEST')),
    fc
      .tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }))
      .map(([a, b]) => `-----BEGIN CERTIFICATE REQUEST-----\n${a}\n-----END CERTIFICATE REQUEST-----${b}`),
    fc.string({ unit: 'binary', maxLength: 100 }).map((s) => `  -----BEGIN CERTIFICATE REQUEST-----${s}`),
    fc.constant(`${valid.csrPem}${'A'.repeat(20_000)}`),
  );
  await fuzzAsync(
    t,
    'csr.garbage',
    [garbage],
    async (input) => {
      const r = await outcome(input);
      if (typeof r !== 'string') throw new Error(`garbage accepted: ${JSON.stringify(input).slice(0, 200)}`);
    },
    { runs: 500 },
  );
});

/** A valid CSR with bytes flipped, replaced, cut out, inserted, or cut short. */
const mutatedDer = fc
  .array(
    fc.oneof(
      fc.tuple(fc.constant('flip' as const), fc.nat(), fc.integer({ min: 1, max: 255 })),
      fc.tuple(fc.constant('set' as const), fc.nat(), fc.integer({ min: 0, max: 255 })),
      fc.tuple(fc.constant('delete' as const), fc.nat(), fc.integer({ min: 1, max: 8 })),
      fc.tuple(fc.constant('insert' as const), fc.nat(), fc.integer({ min: 0, max: 255 })),
      fc.tuple(fc.constant('truncate' as const), fc.nat(), fc.constant(0)),
    ),
    { minLength: 1, maxLength: 4 },
  )
  .map((edits) => {
    const bytes = [...validDer];
    for (const [op, at, v] of edits) {
      if (bytes.length === 0) break;
      const i = at % bytes.length;
      if (op === 'flip') bytes[i] = (bytes[i] as number) ^ v;
      if (op === 'set') bytes[i] = v;
      if (op === 'delete') bytes.splice(i, v);
      if (op === 'insert') bytes.splice(i, 0, v);
      if (op === 'truncate') bytes.length = Math.max(1, i);
    }
    return new Uint8Array(bytes);
  });

t.test('a mutated valid CSR is refused with a CA code, or accepted only as what was signed', async (t) => {
  await fuzzAsync(
    t,
    'csr.mutated',
    [mutatedDer],
    async (der) => {
      const r = await outcome(pem(der));
      if (typeof r === 'string') return;
      // Proof of possession: an accepted CSR carries the signed key and names, whatever else changed.
      if (r.keyId !== validChecked.keyId) throw new Error('accepted a CSR with another key');
      if (
        JSON.stringify([r.uris, r.dnsNames, r.otherNames]) !==
        JSON.stringify([validChecked.uris, validChecked.dnsNames, validChecked.otherNames])
      ) {
        throw new Error(`accepted names ${JSON.stringify([r.uris, r.dnsNames, r.otherNames])} that were not signed`);
      }
    },
    { runs: 500 },
  );
});

/** SAN general names as a hostile client may ask for them, valid or not. */
const generalName = fc.oneof(
  fc.record({
    type: fc.constant('url' as const),
    value: fc.oneof(fc.constant(ORDERS), fc.constant(`${ORDERS}/x`), fc.webUrl(), fc.string({ minLength: 1, maxLength: 30 })),
  }),
  fc.record({
    type: fc.constant('dns' as const),
    value: fc.oneof(
      fc.constantFrom('orders.shop', 'ORDERS.SHOP', 'orders.internal', 'payments.shop', '*.shop'),
      fc.domain(),
      fc.string({ minLength: 1, maxLength: 20 }),
    ),
  }),
  fc.record({ type: fc.constant('ip' as const), value: fc.oneof(fc.ipV4(), fc.ipV6()) }),
  fc.record({ type: fc.constant('email' as const), value: fc.emailAddress() }),
);

t.test('a signed CSR asking for any names: typed refusal, or only granted names issued', async (t) => {
  await fuzzAsync(
    t,
    'csr.names',
    [fc.array(generalName, { maxLength: 5 })],
    async (names) => {
      let csrPem: string;
      try {
        const csr = await x509.Pkcs10CertificateRequestGenerator.create({
          name: 'CN=workload',
          keys,
          signingAlgorithm: ALG,
          extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [],
        });
        csrPem = csr.toString('pem');
      } catch {
        return; // the library would not encode these names: nothing a client could send
      }
      const r = await outcome(csrPem);
      if (typeof r === 'string') return;
      let issued: string[];
      try {
        issued = namesWithinGrant(r, GRANT);
      } catch (err) {
        if (err instanceof WardenError && err.code === 'ERR_CA_IDENTITY_MISMATCH') return;
        throw new Error(`namesWithinGrant threw ${describeThrown(err)}`);
      }
      const granted = new Set(GRANT.dnsNames.map((n) => n.toLowerCase()));
      for (const n of issued) if (!granted.has(n)) throw new Error(`issued ${n}, not granted`);
      if (names.some((n) => n.type === 'ip' || n.type === 'email')) throw new Error('an IP or e-mail SAN passed');
      if (names.some((n) => n.type === 'url' && n.value !== ORDERS)) throw new Error('a foreign URI SAN passed');
    },
    { runs: 150 },
  );
});

/** A properly signed CSR whose SAN extension value is arbitrary bytes (a crafted client). */
async function csrWithRawSan(value: Uint8Array): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=workload',
    keys,
    signingAlgorithm: ALG,
    extensions: [new x509.Extension(SAN_OID, false, value)],
  });
  return csr.toString('pem');
}

t.test('a signed CSR with a malformed SAN extension is refused with a CA code', async (t) => {
  const sanBytes = fc.oneof(
    fc.uint8Array({ maxLength: 40 }),
    // A SEQUENCE of context-tagged general names with arbitrary tags, lengths and contents.
    fc
      .array(fc.tuple(fc.integer({ min: 0x80, max: 0xbf }), fc.uint8Array({ maxLength: 12 }), fc.integer({ min: -2, max: 2 })), {
        maxLength: 4,
      })
      .map((items) => {
        const body = items.flatMap(([tag, content, skew]) => [tag, Math.max(0, content.length + skew), ...content]);
        return new Uint8Array([0x30, body.length, ...body]);
      }),
  );
  await fuzzAsync(
    t,
    'csr.raw_san',
    [sanBytes],
    async (value) => {
      const r = await outcome(await csrWithRawSan(value));
      if (typeof r === 'string') return;
      try {
        namesWithinGrant(r, GRANT);
      } catch (err) {
        if (!(err instanceof WardenError && err.code === 'ERR_CA_IDENTITY_MISMATCH'))
          throw new Error(`namesWithinGrant threw ${describeThrown(err)}`);
      }
    },
    { runs: 150 },
  );
});

t.test('regression: SAN extensions that do not decode are ERR_CA_CSR_INVALID (were untyped errors)', async (t) => {
  for (const [what, bytes] of [
    ['three bytes that are not DER', [1, 2, 3]],
    ['a general name with an empty explicit tag', [0x30, 0x03, 0xa0, 0x01, 0x00]],
  ] as const) {
    try {
      await checkCsr(await csrWithRawSan(new Uint8Array(bytes)));
      t.fail(`${what}: accepted`);
    } catch (err) {
      t.ok(err instanceof WardenError, `${what}: a WardenError`);
      t.match(err, { code: 'ERR_CA_CSR_INVALID', rule: 'csr.san' }, what);
    }
  }
});

t.test(
  'regression: a CSR whose key algorithm parameters do not decode is ERR_CA_CSR_INVALID (was an AsnSchemaValidationError)',
  async (t) => {
    // Found by csr.mutated (seed 1886000038, WARDEN_FUZZ_SECONDS=4): one byte (0x80) inserted into the
    // SubjectPublicKeyInfo's AlgorithmIdentifier. The library decodes the key lazily, outside the parse guard.
    const der = [...validDer];
    const curveOid = der.findIndex((b, i) => b === 0x06 && der[i + 1] === 0x08 && der[i + 2] === 0x2a && der[i + 9] === 0x07);
    der.splice(curveOid, 0, 0x80);
    try {
      await checkCsr(pem(new Uint8Array(der)));
      t.fail('accepted');
    } catch (err) {
      t.ok(err instanceof WardenError, 'a WardenError');
      t.match(err, { code: 'ERR_CA_CSR_INVALID', rule: 'csr.parse' });
    }
  },
);
