/**
 * The demo backend behind `warden dev`: a tiny JSON API that echoes what it received, so a person
 * can see what the sidecar passes on (forwarded headers, request id) and what it strips.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoBackend {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

function echo(req: IncomingMessage, bodyBytes: number) {
  return {
    method: req.method,
    path: req.url,
    body_bytes: bodyBytes,
    received_headers: req.headers,
  };
}

export async function startDemoBackend(port: number, host = '127.0.0.1'): Promise<DemoBackend> {
  const server: Server = createServer((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?', 1)[0];
      const reply = (status: number, body: unknown) => {
        const text = JSON.stringify(body, null, 2) + '\n';
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      if (path === '/healthz') return reply(200, { status: 'ok' });
      if (path === '/api/hello') return reply(200, { message: 'hello from the demo backend', ...echo(req, bytes) });
      if (path === '/api/echo') return reply(200, echo(req, bytes));
      if (path?.startsWith('/admin/')) return reply(200, { secret: 'the sidecar should never let you read this' });
      return reply(404, { error: 'the demo backend has no such path' });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
