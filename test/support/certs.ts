/** A development certificate for the tests, made once per test process. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSelfSignedCertificate } from '../../src/dev/self-signed-certificate.js';

export interface TestCertificate {
  dir: string;
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
}

let cached: Promise<TestCertificate> | undefined;

export function testCertificate(): Promise<TestCertificate> {
  cached ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-test-'));
    const { certPem, keyPem } = await createSelfSignedCertificate({ commonName: 'localhost' });
    const certFile = join(dir, 'tls.crt');
    const keyFile = join(dir, 'tls.key');
    writeFileSync(certFile, certPem);
    writeFileSync(keyFile, keyPem, { mode: 0o600 });
    return { dir, certFile, keyFile, certPem, keyPem };
  })();
  return cached;
}
