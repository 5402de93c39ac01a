/**
 * A backend that writes the minted token (tokens.mint.header) back into its response, under the
 * header's name or its underscored spelling: neither reaches the client. `x_internal_token` passed.
 */
import t from 'tap';
import { createServer, type AddressInfo } from 'node:net';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';

t.test('the minted token echoed by the backend, in any spelling, is dropped from the response', async (t) => {
  const idp = await startForgedIssuer(t);
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const token = /^x-internal-token: (.*)$/im.exec(head)?.[1]?.trim() ?? 'NONE';
      head = '';
      socket.write(
        `HTTP/1.1 200 OK\r\nx-internal-token: ${token}\r\nx_internal_token: ${token}\r\nx-app: 1\r\ncontent-length: 2\r\n\r\nok`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const s = await startTestSidecar(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
    tokens: {
      issuers: [{ id: 'forge', issuer: idp.issuer, audience: ['api'], jwt: { algorithms: ['ES256'] } }],
      mint: { audience: 'be', header: 'x-internal-token' },
    },
    routes: [{ id: 'all', path: '/*' }],
  });
  const now = Math.floor(Date.now() / 1000);
  const token = await idp.sign({ iss: idp.issuer, aud: 'api', sub: 'alice', exp: now + 300, iat: now, jti: 'j1' });
  for (const h2 of [false, true]) {
    const agent = testAgent(s.ca, { h2 });
    t.teardown(() => agent.close());
    const res = await fetchText(`${s.url}/x`, agent, { headers: { authorization: `Bearer ${token}` } });
    const label = h2 ? 'h2' : 'HTTP/1.1';
    t.equal(res.status, 200, `${label}: 200`);
    t.equal(res.headers['x-app'], '1', `${label}: the backend's other headers pass`);
    t.equal(res.headers['x-internal-token'], undefined, `${label}: x-internal-token dropped`);
    t.equal(res.headers['x_internal_token'], undefined, `${label}: x_internal_token dropped`);
  }
});
