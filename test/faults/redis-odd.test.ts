/**
 * Redis in odd states the outage tests do not cover: one that accepts connections and never
 * answers (start-up must not wait for it), one that is down when a replica starts and comes back
 * (the replica must still hear revocations), and one that answers the rate-limit script with a
 * reply of another type (the configured on_store_failure applies, not a 500 or Retry-After: NaN).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { request } from 'undici';
import { startDemoIdp } from '../../src/dev/demo-idp.js';
import { startTestBackend } from '../support/backend.js';
import { demoIssuer } from '../support/demo-issuer.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestRedis } from '../support/redis.js';
import { startTestSidecar } from '../support/sidecar.js';

type Teardown = { teardown(fn: () => unknown): void };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP server on loopback; `onSocket` decides what it says. */
async function tcp(t: Teardown, onSocket: (s: Socket) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

/** Speaks just enough RESP: INFO gets a ready server's answer, every other command `reply`. */
function resp(reply: string) {
  return (s: Socket) => {
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        let p = 0;
        const line = () => {
          const i = buf.indexOf('\r\n', p);
          if (i < 0) return undefined;
          const l = buf.subarray(p, i).toString();
          p = i + 2;
          return l;
        };
        const head = line();
        if (head === undefined || head[0] !== '*') return;
        const args: string[] = [];
        for (let k = 0; k < Number(head.slice(1)); k++) {
          const len = line();
          if (len === undefined || buf.length < p + Number(len.slice(1)) + 2) return;
          args.push(buf.subarray(p, p + Number(len.slice(1))).toString());
          p += Number(len.slice(1)) + 2;
        }
        buf = buf.subarray(p);
        if (args[0]?.toUpperCase() === 'INFO') {
          const info = '# Server\r\nredis_version:7.0.0\r\nloading:0\r\n';
          s.write(`$${info.length}\r\n${info}\r\n`);
        } else s.write(`${reply}\r\n`);
      }
    });
  };
}

t.test('tokens.shared on a Redis that accepts and never answers: the sidecar starts and serves', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startDemoIdp();
  t.teardown(() => idp.close());
  const silent = await tcp(t, () => undefined);
  const s = await startTestSidecar(t, backend.url, {
    tokens: {
      issuers: [demoIssuer(idp)],
      shared: { redis: `redis://127.0.0.1:${silent}`, prefix: 'hang:' },
    },
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const { accessToken } = await idp.issueToken();
  t.equal(
    (await fetchText(`${s.url}/x`, agent, { headers: { authorization: `Bearer ${accessToken}` } })).status,
    200,
    'served from the IdP',
  );
});

t.test('a replica started while Redis was down hears revocations once it is back', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startDemoIdp();
  t.teardown(() => idp.close());
  const redis = await startTestRedis(t);
  const config = {
    tokens: {
      issuers: [demoIssuer(idp)],
      shared: { redis: redis.url, prefix: `down${Date.now()}:` },
    },
  };
  await redis.stop();
  const b = await startTestSidecar(t, backend.url, config);
  await redis.start();
  const a = await startTestSidecar(t, backend.url, config);
  const agent = testAgent(b.ca);
  t.teardown(() => agent.close());
  const jwt = (await idp.issueToken({ resource: idp.audience })).accessToken;
  const callB = async () => (await fetchText(`${b.url}/x`, agent, { headers: { authorization: `Bearer ${jwt}` } })).status;
  t.equal(await callB(), 200);
  // Both of B's connections come back on their own (retries every ≤ 2 s), A's two are up: then A revokes.
  await redis.waitForClients(4);
  const res = await request(`${a.adminUrl}/tokens/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: jwt }).toString(),
  });
  t.match(await res.body.json(), { revoked: true, shared: true });
  let status = await callB();
  for (let i = 0; i < 40 && status === 200; i++) {
    await sleep(50);
    status = await callB();
  }
  t.equal(status, 401, 'replica B refuses the JWT revoked through A');
});

t.test('a rate-limit store that answers the script with another type: on_store_failure applies', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  for (const reply of ['$-1', ':1', '+OK']) {
    const port = await tcp(t, resp(reply));
    for (const policy of ['fail-open', 'fail-closed'] as const) {
      const s = await startTestSidecar(t, backend.url, {
        rate_limits: { store: 'redis', redis: `redis://127.0.0.1:${port}`, prefix: 'odd:', on_store_failure: policy, key: ['ip'] },
        routes: [{ id: 'echo', path: '/echo', rate_limit: { rate: 1000, per: '1s' } }],
      });
      const agent = testAgent(s.ca);
      t.teardown(() => agent.close());
      const res = await fetchText(`${s.url}/echo`, agent);
      if (policy === 'fail-open') t.equal(res.status, 200, `${reply}, fail-open: served from local buckets`);
      else
        t.match(
          { status: res.status, code: res.json().code },
          { status: 503, code: 'ERR_RATELIMIT_STORE_UNAVAILABLE' },
          `${reply}, fail-closed: 503`,
        );
    }
  }
});
