/**
 * Key material for the demo IdP: its ES256 signing key (so oidc-provider never falls back to its
 * development keys) and the ES256 key pair of the private_key_jwt introspection client.
 */
import { randomBytes } from 'node:crypto';
import { exportJWK, exportPKCS8, generateKeyPair, type JWK } from 'jose';

export interface DemoIdpKeys {
  /** Private signing JWK handed to the Provider's `jwks`. */
  readonly signingJwk: JWK;
  /** The private_key_jwt client: its public JWK (registered with the IdP) and PKCS#8 private key. */
  readonly client: { publicJwk: JWK; privateKeyPem: string; kid: string };
}

const kid = (label: string) => `${label}-${randomBytes(6).toString('base64url')}`;

export async function generateDemoIdpKeys(): Promise<DemoIdpKeys> {
  const signing = await generateKeyPair('ES256', { extractable: true });
  const signingJwk: JWK = { ...(await exportJWK(signing.privateKey)), kid: kid('demo-idp'), alg: 'ES256', use: 'sig' };

  const client = await generateKeyPair('ES256', { extractable: true });
  const clientKid = kid('warden-introspect');
  return {
    signingJwk,
    client: {
      publicJwk: { ...(await exportJWK(client.publicKey)), kid: clientKid, alg: 'ES256', use: 'sig' },
      privateKeyPem: await exportPKCS8(client.privateKey),
      kid: clientKid,
    },
  };
}

/** A random client secret (oidc-provider requires nothing in particular; long enough for HS256 too). */
export const clientSecret = () => randomBytes(32).toString('base64url');
