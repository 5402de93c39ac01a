/** Real clients for the tests: undici (HTTP/1.1 and h2), curl, node:http2, and raw TLS sockets. */
import { spawn } from 'node:child_process';
import { connect as tlsConnect } from 'node:tls';
import { Agent, Client, request, type Dispatcher } from 'undici';

/** An undici agent that trusts the test certificate; `h2` negotiates HTTP/2 by ALPN. */
export function testAgent(ca: string, options: { h2?: boolean; connections?: number } = {}): Agent {
  return new Agent({
    allowH2: options.h2 ?? false,
    // undici multiplexes h2 streams only up to `pipelining` per connection.
    pipelining: options.h2 ? 100 : 1,
    connections: options.connections ?? 8,
    connect: { ca, servername: 'localhost' },
  });
}

export interface SimpleResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

export async function fetchText(
  url: string,
  dispatcher: Dispatcher,
  options: Partial<Omit<Dispatcher.RequestOptions, 'origin' | 'path'>> = {},
): Promise<SimpleResponse> {
  const res = await request(url, { dispatcher, ...options });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: <T>() => JSON.parse(text) as T };
}

export interface CurlResult {
  code: number | null;
  status: number;
  version: string;
  body: string;
  stderr: string;
}

/** Runs curl; `-w` appends status and HTTP version after a marker. */
export function curl(args: string[], input?: Buffer): Promise<CurlResult> {
  return new Promise((resolve) => {
    const child = spawn('curl', ['-sS', '-w', '\n@@%{http_code} %{http_version}', ...args]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    if (input) child.stdin.end(input);
    else child.stdin.end();
    child.on('close', (code) => {
      const at = out.lastIndexOf('\n@@');
      const [status = '0', version = ''] = out.slice(at + 3).split(' ');
      resolve({ code, status: Number(status), version, body: out.slice(0, at), stderr: err });
    });
  });
}

/**
 * Writes `payload` on a fresh TLS connection and returns everything received until the server
 * closes it or `timeoutMs` passes — for requests no well-behaved client library would send.
 */
export function rawTls(
  port: number,
  payload: string | Buffer,
  options: { alpn?: string; timeoutMs?: number; ca: string },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca: options.ca,
      ALPNProtocols: [options.alpn ?? 'http/1.1'],
    });
    let received = '';
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(received);
    };
    const timer = setTimeout(finish, options.timeoutMs ?? 2000);
    socket.once('secureConnect', () => socket.write(payload));
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    socket.once('end', finish);
    socket.once('close', finish);
    socket.once('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? finish() : reject(err)));
  });
}

/** Status code of the first response in a raw HTTP/1.1 exchange, or 0 when none came back. */
export function statusOf(raw: string): number {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
  return m ? Number(m[1]) : 0;
}

/**
 * An undici Client: one TLS connection, kept alive, for tests of what a sidecar keeps per
 * connection. `connects()` says how many connections it has opened (1 when all went over one).
 */
export function oneConnectionClient(
  t: { teardown(fn: () => unknown): void },
  url: string,
  ca: string,
): { client: Client; connects: () => number } {
  const client = new Client(url, { connect: { ca, servername: 'localhost' }, pipelining: 1 });
  t.teardown(() => client.close());
  let connects = 0;
  client.on('connect', () => connects++);
  return { client, connects: () => connects };
}

/**
 * One raw HTTP/1.1 request over TLS (bytes exactly as given), resolved with the response as text
 * once its head and Content-Length body are in (or at close, error or `timeoutMs`): for requests
 * no client library would send.
 */
export function rawTlsRequest(port: number, ca: string, request: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const socket = tlsConnect({ port, host: '127.0.0.1', servername: 'localhost', ca, ALPNProtocols: ['http/1.1'] }, () =>
      socket.write(request),
    );
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, head))?.[1];
      if (head >= 0 && length !== undefined && text.length - head - 4 >= Number(length)) done();
    });
    socket.on('error', done);
    socket.on('close', done);
  });
}
