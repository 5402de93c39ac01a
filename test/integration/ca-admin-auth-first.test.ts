/**
 * The CA's admin POST routes authenticate the caller before they read its body. They read, size-
 * checked and parsed the body first: an anonymous caller (or a workload certificate) sending a
 * malformed body or `text/plain` got 400 ERR_CA_REQUEST_INVALID or 415, not 401/403, and the audit
 * rows showed a request problem instead of an authentication failure (red-team round 27, F4).
 */
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import t from 'tap';
import { Agent, request } from 'undici';
import { CA_PATHS } from '../../src/ca/api.js';
import { startCaUnderTest, ORDERS } from '../support/ca-harness.js';
import { enrollWorkload } from '../support/workload.js';

const ADMIN_POSTS = [CA_PATHS.adminTokens, CA_PATHS.adminTokenRevocations, CA_PATHS.adminRevocations];

t.test('admin POSTs: an anonymous or workload caller is refused as such, whatever its body', async (t) => {
  const { ca, dir } = await startCaUnderTest(t);
  const workload = await enrollWorkload(ca, ORDERS);
  const anonymous = new Agent({ connect: { ca: ca.rootPem } });
  const asWorkload = new Agent({ connect: { ca: ca.rootPem, cert: workload.certPem, key: workload.keyPem } });
  const admin = new Agent({
    connect: { ca: ca.rootPem, cert: readFileSync(`${dir}/admin.crt`, 'utf8'), key: readFileSync(`${dir}/admin.key`, 'utf8') },
  });
  t.teardown(() => Promise.all([anonymous.close(), asWorkload.close(), admin.close()]));
  const post = async (dispatcher: Agent, path: string, contentType: string, body: string) => {
    const res = await request(`${ca.url}${path}`, { method: 'POST', dispatcher, headers: { 'content-type': contentType }, body });
    return { status: res.statusCode, code: ((await res.body.json()) as { code?: string }).code };
  };
  const bodies: [string, string][] = [
    ['application/json', '{bad'],
    ['application/json', '[1]'],
    ['text/plain', '{"serial":"1"}'],
    ['application/json', 'x'.repeat(70 * 1024)],
  ];
  for (const path of ADMIN_POSTS) {
    for (const [type, body] of bodies) {
      const what = `${path} ${type} ${body.length > 20 ? `${body.length} bytes` : body}`;
      t.same(await post(anonymous, path, type, body), { status: 401, code: 'ERR_CA_CLIENT_CERT_REQUIRED' }, `anonymous, ${what}: 401`);
      t.same(await post(asWorkload, path, type, body), { status: 403, code: 'ERR_CA_ADMIN_REQUIRED' }, `workload, ${what}: 403`);
    }
    // The administrator still gets the body's own verdict.
    t.same(
      await post(admin, path, 'application/json', '{bad'),
      { status: 400, code: 'ERR_CA_REQUEST_INVALID' },
      `admin, ${path} {bad: 400`,
    );
    t.same(
      await post(admin, path, 'text/plain', '{}'),
      { status: 415, code: 'ERR_MEDIA_TYPE_UNSUPPORTED' },
      `admin, ${path} text/plain: 415`,
    );
  }
});

t.test('admin POSTs: an anonymous caller is answered without its body being read, and the connection closed', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const url = new URL(ca.url);
  for (const path of ADMIN_POSTS) {
    // The body is declared and never sent: a CA that reads it first waits for it.
    const answer = await new Promise<{ status: number; connection: string | undefined; code: string } | 'no answer'>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: url.hostname,
          port: url.port,
          path,
          method: 'POST',
          ca: ca.rootPem,
          agent: false,
          headers: { 'content-type': 'application/json', 'content-length': '1000' },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, code: (JSON.parse(text) as { code: string }).code }),
          );
        },
      );
      req.on('error', reject);
      req.write('{');
      setTimeout(() => {
        resolve('no answer');
        req.destroy();
      }, 2_000).unref();
    });
    t.same(answer, { status: 401, connection: 'close', code: 'ERR_CA_CLIENT_CERT_REQUIRED' }, `${path}: 401 at once, connection closed`);
  }
});
