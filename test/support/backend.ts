/**
 * A real HTTP backend for the tests that records every request it receives (so a test can prove a
 * refused request never reached it) and offers behaviours by path:
 *   /echo                 JSON: method, url, headers, body byte count
 *   /slow?ms=N            answers after N ms
 *   /hang                 accepts the request and never answers
 *   /stall-body           sends headers and a first chunk, then nothing
 *   /download?bytes=N     streams N bytes (64 KiB chunks, with backpressure)
 *   /response-headers     answers with hop-by-hop and internal headers that must not leak
 *   anything else         200 {"ok":true}
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  bodyBytes: number;
  /** SHA-256 of the body as received (hex), once it has ended. */
  sha256?: string;
  /**
   * performance.now() when the request (its body included) had reached the backend: the start of
   * the sidecar's headers timeout, and, for /stall-body, of its body timeout (the backend answers then).
   */
  endedAt?: number;
}

export interface TestBackend {
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
}

const CHUNK = Buffer.alloc(64 * 1024, 0x61);

export async function startTestBackend(): Promise<TestBackend> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://backend');
    const record: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      bodyBytes: 0,
    };
    requests.push(record);
    const json = (status: number, body: unknown, extra: Record<string, string> = {}) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra });
      res.end(text);
    };
    const hash = createHash('sha256');
    req.on('data', (c: Buffer) => {
      record.bodyBytes += c.length;
      hash.update(c);
    });
    req.on('end', () => {
      record.endedAt = performance.now();
      record.sha256 = hash.digest('hex');
      switch (url.pathname) {
        case '/redirect':
          // A redirect to ?to= with ?status= (307 by default).
          res.writeHead(Number(url.searchParams.get('status') ?? 307), {
            location: url.searchParams.get('to') ?? '/',
            'content-length': '0',
          });
          return void res.end();
        case '/echo-authorization':
          // A backend that echoes its request's credentials in a response header.
          res.setHeader('authorization', String(req.headers.authorization ?? ''));
          return json(200, { echoed: true });
        case '/echo':
          return json(200, { method: req.method, url: req.url, headers: req.headers, bodyBytes: record.bodyBytes });
        case '/slow':
          return void setTimeout(() => json(200, { slow: true }), Number(url.searchParams.get('ms') ?? 100));
        case '/hang':
          return;
        case '/stall-body':
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
          res.write('first part');
          return;
        case '/download': {
          let left = Number(url.searchParams.get('bytes') ?? 0);
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left) });
          const pump = () => {
            while (left > 0) {
              const piece = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
              left -= piece.length;
              if (!res.write(piece)) return void res.once('drain', pump);
            }
            res.end();
          };
          return pump();
        }
        case '/response-headers':
          res.setHeader('connection', 'x-named-hop');
          res.setHeader('x-named-hop', 'must not leak');
          res.setHeader('keep-alive', 'timeout=5');
          res.setHeader('proxy-authenticate', 'Basic');
          res.setHeader('trailer', 'x-checksum');
          res.setHeader('x-warden-internal', 'must not leak');
          res.setHeader('x-kept', 'yes');
          res.writeHead(200, { 'content-type': 'application/json' }); // chunked: Trailer is legal
          return res.end('{"ok":true}');
        default:
          // A 304 may carry the Content-Length the 200 would have (RFC 9110 §8.6), with no body.
          if (req.headers['if-none-match'] === '"v1"') return void res.writeHead(304, { etag: '"v1"', 'content-length': '11' }).end();
          if (req.headers['x-test-encoding'] === 'gzip') {
            const body = gzipSync('{"ok":true}');
            return void res
              .writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': body.length })
              .end(body);
          }
          return json(200, { ok: true });
      }
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
