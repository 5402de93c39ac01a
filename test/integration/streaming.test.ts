/**
 * Bodies stream through the sidecar in both directions without being buffered: 50 MB up and 50 MB
 * down, over HTTP/1.1 and h2, while the sidecar process's peak RSS stays far below the body size.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { startTestBackend } from '../support/backend.js';
import { testAgent } from '../support/clients.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';

const SIZE = 50 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0x62);

function rssMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1]) / 1024;
}

function upload(size = SIZE): Readable {
  let left = size;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const piece = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
      left -= piece.length;
      this.push(piece);
    },
  });
}

t.test('50 MB up and 50 MB down, h1 and h2, with bounded memory', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const warden = await spawnWarden(t, await testConfigYaml(backend.url, { limits: { max_body_bytes: '100MiB' }, log: { access: false } }));
  const pid = warden.child.pid as number;
  const ca = (await import('../support/certs.js')).testCertificate;
  const cert = await ca();

  // Warm up both protocols and directions with 16 MiB, so the baseline already includes the heap's
  // steady state (young generation, TLS and socket buffers) and growth measures only buffering.
  const WARM = 16 * 1024 * 1024;
  for (const h2 of [false, true]) {
    const agent = testAgent(cert.certPem, { h2 });
    await (await request(`${warden.url}/upload`, { dispatcher: agent, method: 'POST', body: upload(WARM) })).body.dump();
    await (await request(`${warden.url}/download?bytes=${WARM}`, { dispatcher: agent })).body.dump();
    await agent.close();
  }
  const baseline = rssMiB(pid, 'VmHWM');

  for (const h2 of [false, true]) {
    const agent = testAgent(cert.certPem, { h2 });
    t.teardown(() => agent.close());
    backend.requests.length = 0;
    const up = await request(`${warden.url}/upload`, {
      dispatcher: agent,
      method: 'POST',
      body: upload(),
      headers: { 'content-type': 'application/octet-stream' },
    });
    await up.body.dump();
    t.equal(up.statusCode, 200, `upload ${h2 ? 'h2' : 'h1'}`);
    t.equal(backend.requests[0]?.bodyBytes, SIZE, `the backend received all ${SIZE} bytes`);

    const down = await request(`${warden.url}/download?bytes=${SIZE}`, { dispatcher: agent });
    let received = 0;
    for await (const chunk of down.body) received += (chunk as Buffer).length;
    t.equal(down.statusCode, 200, `download ${h2 ? 'h2' : 'h1'}`);
    t.equal(received, SIZE, `the client received all ${SIZE} bytes`);
  }

  const peak = rssMiB(pid, 'VmHWM');
  const growth = peak - baseline;
  t.comment(
    `sidecar RSS: baseline ${baseline.toFixed(1)} MiB, peak ${peak.toFixed(1)} MiB, growth ${growth.toFixed(1)} MiB for 4 × 50 MiB`,
  );
  // 40, not 25: on this host the high-water mark after warm-up is sometimes already the load's
  // (growth 0) and sometimes not (26–33 MiB seen in CI and by hand, 2026-12-03), which made 25 a
  // coin toss; buffering one 50 MiB body would still add ≥ 50.
  t.ok(growth < 40, `peak RSS grew by ${growth.toFixed(1)} MiB (< 40 MiB; buffering one body would add ≥ 50)`);
});
