/**
 * The tags on what the replicas store in Redis (docs/adversarial.md defect 136): an entry verifies
 * only under the key, Redis key (or channel) and kind it was written for, and the key comes from
 * tokens.shared.key or, without it, from the introspection client credentials.
 */
import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TokensConfig } from '../../../src/config/types.js';
import { createSharedSeal, sharedStateSecret } from '../../../src/identity/shared-seal.js';

const HASH = 'a'.repeat(64);
const seal = createSharedSeal(Buffer.alloc(32, 1));
const other = createSharedSeal(Buffer.alloc(32, 2));

t.test('an answer opens under its key only, with the time the IdP gave it', async (t) => {
  const claims = { active: true, sub: 'alice', scope: 'orders:read' };
  const value = seal.sealAnswer('w:tok:1', claims, 1_700_000_000_123);
  t.same(seal.openAnswer('w:tok:1', value), { claims, fetchedAt: 1_700_000_000_123 });
  t.equal(seal.openAnswer('w:tok:2', value), undefined, 'moved to another token');
  t.equal(other.openAnswer('w:tok:1', value), undefined, 'another secret (another service)');
  t.equal(seal.openAnswer('w:tok:1', JSON.stringify(claims)), undefined, 'bare JSON, as stored before');
  t.equal(seal.openAnswer('w:tok:1', value.replace('alice', 'admin')), undefined, 'claims changed');
  const [tag, , json] = [value.slice(0, 43), value.slice(44, value.indexOf('.', 44)), value.slice(value.indexOf('.', 44) + 1)];
  t.equal(seal.openAnswer('w:tok:1', `${tag}.9999999999999.${json}`), undefined, 'fetchedAt changed');
  t.equal(seal.openAnswer('w:tok:1', ''), undefined);
});

t.test('a mark and a message: their end is signed; neither passes for the other', async (t) => {
  const mark = seal.sealMark('w:rev:1', 1_700_000_060_000);
  t.equal(seal.openMark('w:rev:1', mark), 1_700_000_060_000);
  t.equal(seal.openMark('w:rev:2', mark), undefined);
  t.equal(other.openMark('w:rev:1', mark), undefined);
  t.equal(seal.openMark('w:rev:1', '1'), undefined, 'the unauthenticated mark of before');
  t.equal(seal.openMark('w:rev:1', mark.replace(/\d+$/, '9999999999999')), undefined, 'a later end');
  t.equal(seal.openAnswer('w:rev:1', mark), undefined, 'a mark is not an answer');

  const message = seal.sealMessage('w:revocations', HASH, 1_700_000_060_000);
  t.same(seal.openMessage('w:revocations', message), { hash: HASH, untilMs: 1_700_000_060_000 });
  t.equal(seal.openMessage('x:revocations', message), undefined, "another service's channel");
  t.equal(other.openMessage('w:revocations', message), undefined);
  t.equal(seal.openMessage('w:revocations', `${HASH} 1700000060000`), undefined, 'the untagged message of before');
  t.equal(seal.openMessage('w:revocations', message.replace('1700000060000', '9999999999999')), undefined);
});

t.test('the key: tokens.shared.key, else the introspection credentials', async (t) => {
  const issuer = (id: string, introspection?: Record<string, unknown>) => ({ id, issuer: `https://${id}`, introspection });
  const tokensOf = (issuers: unknown[], key?: string) =>
    ({ issuers, shared: { redis: 'redis://r', revocation_lag: 1, ...(key ? { key } : {}) } }) as unknown as TokensConfig;
  const secret = (id: string, s: string) => issuer(id, { client_id: 'c', auth_method: 'client_secret_basic', client_secret: s });

  const a = sharedStateSecret(tokensOf([secret('a', 's1')]));
  t.ok(a && a.length === 32);
  t.same(sharedStateSecret(tokensOf([secret('a', 's1')])), a, 'the same on every replica');
  t.notSame(sharedStateSecret(tokensOf([secret('a', 's2')])), a, 'another client secret, another key');
  t.notSame(sharedStateSecret(tokensOf([secret('a', 's1')], 'x'.repeat(32))), a, 'tokens.shared.key wins');
  t.same(
    sharedStateSecret(tokensOf([secret('a', 's1'), secret('b', 's2')])),
    sharedStateSecret(tokensOf([secret('b', 's2'), secret('a', 's1')])),
    'the order of the issuers does not matter',
  );
  t.equal(sharedStateSecret(tokensOf([issuer('jwt-only')])), undefined, 'nothing to derive it from');
  t.ok(sharedStateSecret(tokensOf([issuer('jwt-only')], 'x'.repeat(32))));

  const dir = mkdtempSync(join(tmpdir(), 'seal-'));
  const pem = (name: string) => {
    const file = join(dir, name);
    writeFileSync(file, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    return file;
  };
  const [k1, k2] = [pem('k1.pem'), pem('k2.pem')];
  const pk = (file: string) => issuer('a', { client_id: 'c', auth_method: 'private_key_jwt', private_key: file });
  t.same(sharedStateSecret(tokensOf([pk(k1)])), sharedStateSecret(tokensOf([pk(k1)])));
  t.notSame(sharedStateSecret(tokensOf([pk(k1)])), sharedStateSecret(tokensOf([pk(k2)])), 'another private key, another key');
});
