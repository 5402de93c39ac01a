/** A `tokens.issuers[]` entry for the demo IdP: its issuer and audience, introspecting with its client_secret_basic client. */
import type { DemoIdp } from '../../src/dev/demo-idp.js';

export function demoIssuer(idp: DemoIdp, id = 'demo', introspection: Record<string, unknown> = {}) {
  const client = idp.introspectionClients.basic;
  return {
    id,
    issuer: idp.issuer,
    audience: [idp.audience],
    introspection: { client_id: client.clientId, client_secret: client.clientSecret, ...introspection },
  };
}
