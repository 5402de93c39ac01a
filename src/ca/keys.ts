/**
 * The CA's private keys: generated as ECDSA P-256, stored as PKCS#8 PEM (AES-256-CBC encrypted when
 * a passphrase is given), loaded back into WebCrypto for signing.
 */
import { createPrivateKey, webcrypto, type KeyObject } from 'node:crypto';
import { EC_P256, type CryptoKey, type CryptoKeyPair } from './pki.js';

export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
}

/** PKCS#8 PEM of `key`; encrypted with `passphrase` when one is given. */
export async function exportPrivateKeyPem(key: CryptoKey, passphrase?: string): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const keyObject = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  return passphrase
    ? (keyObject.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase }) as string)
    : (keyObject.export({ format: 'pem', type: 'pkcs8' }) as string);
}

/** The key as a Node KeyObject; throws when the passphrase is missing or wrong. */
export function readPrivateKey(pem: string, passphrase?: string): KeyObject {
  return createPrivateKey({ key: pem, format: 'pem', passphrase: passphrase ?? '' });
}

/** A signing CryptoKey (ECDSA P-256) from PKCS#8 PEM. */
export async function importSigningKey(pem: string, passphrase?: string): Promise<CryptoKey> {
  const der = readPrivateKey(pem, passphrase).export({ format: 'der', type: 'pkcs8' });
  return webcrypto.subtle.importKey('pkcs8', der, EC_P256, false, ['sign']);
}
