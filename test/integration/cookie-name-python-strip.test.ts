/**
 * Cookie names as Starlette 0.26 and Django read them: the Cookie header decoded as Latin-1, each
 * name str.strip()ped, which takes U+0085 (NEL) and U+001C–U+001F off as well as what JS's trim()
 * takes. Run by hand against FastAPI 0.92 / Starlette 0.26 (not a test prerequisite): behind a
 * sidecar trimming with trim() alone, `theme\x85=<x>1` reached `Cookie()` as `theme` past its
 * pattern, and `access_token\x85=<mallory's token>` beside `Authorization: Bearer <alice's>` reached
 * `request.cookies['access_token']` (red team 25 F2). Replayed here against the test backend, over
 * h1 and h2 (Node's h2 client sends U+0085 as the one byte 0x85; its h1 parser refuses U+001C–U+001F).
 */
import t from 'tap';
import { connect as h2connect } from 'node:http2';
import { startTestBackend } from '../support/backend.js';
import { rawTls, statusOf } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';

const DOCUMENT = `
openapi: 3.1.0
info: { title: t, version: '1' }
security: []
paths:
  /prefs:
    get:
      operationId: prefs
      parameters:
        - { name: theme, in: cookie, schema: { type: string, pattern: '^[a-z]+$' } }
      responses: { '200': { description: ok } }
`;

/** One GET over h1 (bytes as Latin-1) or h2 (Node's client writes header values as Latin-1): status. */
async function send(port: number, ca: string, h2: boolean, path: string, headers: Record<string, string>): Promise<number> {
  if (!h2) {
    const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
    const head = `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n${lines.join('')}\r\n`;
    return statusOf(await rawTls(port, Buffer.from(head, 'latin1'), { ca }));
  }
  const session = h2connect(`https://localhost:${port}`, { ca, servername: 'localhost' });
  try {
    return await new Promise<number>((resolve, reject) => {
      const req = session.request({ ':path': path, ...headers });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
      req.resume();
      req.end();
    });
  } finally {
    session.close();
  }
}

t.test('a declared cookie sent as `theme\\x85` is checked as `theme` (h1 and h2)', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(DOCUMENT), allow_public: true } });
  for (const h2 of [false, true]) {
    const via = h2 ? 'h2' : 'h1';
    const status = (cookie: string) => send(s.port, s.ca, h2, '/prefs', { cookie });
    t.equal(await status('theme=dark'), 200, `${via}: theme=dark`);
    t.equal(await status('theme=<x>1'), 400, `${via}: theme=<x>1`);
    const before = backend.requests.length;
    for (const cookie of ['theme\x85=<x>1', 'a=b; \x85theme=<x>1', 'theme\x85\x85=DARK', 'theme=dark; theme\x85=light']) {
      t.equal(await status(cookie), 400, `${via}: ${JSON.stringify(cookie)} refused`);
    }
    t.equal(backend.requests.length, before, `${via}: none reached the backend`);
    t.equal(await status('theme\x85=dark'), 200, `${via}: theme\\x85=dark is a valid theme`);
    const utf8 = Buffer.from('prénom=Åsa', 'utf8').toString('latin1');
    t.equal(await status(`${utf8}; theme=dark`), 200, `${via}: a raw UTF-8 cookie name and value pass`);
  }
});

t.test('a cookie token source reads `access_token\\x85` as itself (h1 and h2)', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  const s = await startTestSidecar(t, backend.url, {
    tokens: {
      sources: [{ from: 'authorization' }, { from: 'cookie', name: 'access_token' }],
      issuers: [{ id: 'idp', issuer: idp.issuer, audience: ['api'] }],
    },
  });
  const exp = Math.floor(Date.now() / 1000) + 300;
  const alice = await idp.sign({ iss: idp.issuer, aud: 'api', sub: 'alice', exp });
  const mallory = await idp.sign({ iss: idp.issuer, aud: 'api', sub: 'mallory', exp });
  for (const h2 of [false, true]) {
    const via = h2 ? 'h2' : 'h1';
    const before = backend.requests.length;
    for (const cookie of [`access_token=${mallory}`, `access_token\x85=${mallory}`, `a=b; \x85access_token=${mallory}`]) {
      const status = await send(s.port, s.ca, h2, '/echo', { authorization: `Bearer ${alice}`, cookie });
      t.equal(status, 401, `${via}: Bearer alice + ${JSON.stringify(cookie.replace(mallory, '<mallory>'))}: two tokens`);
    }
    t.equal(backend.requests.length, before, `${via}: none reached the backend`);
    t.equal(
      await send(s.port, s.ca, h2, '/echo', { cookie: `a=b; access_token\x85=${alice}` }),
      200,
      `${via}: the cookie alone authenticates`,
    );
    const forwarded = String(backend.requests.at(-1)?.headers.cookie ?? '');
    t.notMatch(forwarded, /access_token/, `${via}: and is stripped (${JSON.stringify(forwarded)})`);
  }
});
