// The demo OpenID provider in a process of its own, for bench/tokens.js and bench/policy.js: the bench runs its load
// generators synchronously, and an IdP in the bench's own event loop would stall with them.
// Sends its issuer, endpoints, client credentials and a token per requested scope over IPC.
import { startDemoIdp } from '../../dist/dev/demo-idp.js';

const idp = await startDemoIdp({ accessTokenTtlSeconds: 3600 });
process.on('message', async (msg) => {
  if (msg.type === 'issue') {
    const tokens = [];
    for (let i = 0; i < msg.count; i++) tokens.push((await idp.issueToken({ scope: msg.scope, resource: msg.resource })).accessToken);
    process.send({ type: 'tokens', tokens });
  } else if (msg.type === 'count') {
    process.send({ type: 'count', count: idp.introspectionCount });
  }
});
process.send({
  type: 'ready',
  issuer: idp.issuer,
  audience: idp.audience,
  introspectionEndpoint: idp.introspectionEndpoint,
  client: idp.introspectionClients.basic,
});
