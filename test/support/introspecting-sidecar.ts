/**
 * A test sidecar whose one issuer (`corp`, no discovery) introspects at `endpoint`, an RFC 7662
 * server the test runs: for IdP answers the real provider cannot be made to give.
 */
import { startTestSidecar, type Teardown, type TestSidecar } from './sidecar.js';

export function introspectingSidecar(
  t: Teardown,
  backendUrl: string,
  endpoint: string,
  tokens: Record<string, unknown> = {},
): Promise<TestSidecar> {
  return startTestSidecar(t, backendUrl, {
    tokens: {
      issuers: [
        {
          id: 'corp',
          issuer: 'https://idp.example',
          discovery: false,
          audience: ['api'],
          introspection: { endpoint, client_id: 'sidecar', client_secret: 's3cret' },
        },
      ],
      ...tokens,
    },
  });
}
