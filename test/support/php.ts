/**
 * PHP's built-in server (`php -S`, Debian's php-cli) as a backend: PHP does not undo a request's
 * Content-Encoding and parses the bytes it is sent, as nginx with PHP-FPM does. Each request is
 * answered with what PHP read, as JSON, and counted.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Teardown } from './sidecar.js';

/** What the router below answers: the form fields (bytes not UTF-8 as U+FFFD), the body as read (base64), the body's headers, the cookies and $_REQUEST. */
export interface PhpRead {
  post: Record<string, string>;
  input: string;
  contentLength: string | null;
  contentEncoding: string | null;
  /** $_COOKIE and $_REQUEST (PHP's defaults without a php.ini: GET, then POST, then COOKIE). */
  cookie: Record<string, unknown>;
  request: Record<string, unknown>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => resolve(!socket.destroy()));
    socket.once('error', () => resolve(false));
  });

/** Answers with what PHP read (PhpRead). */
const READ_BACK = `header('content-type: application/json');
echo json_encode([
  'post' => (object) $_POST,
  'input' => base64_encode(file_get_contents('php://input')),
  'contentLength' => $_SERVER['CONTENT_LENGTH'] ?? null,
  'contentEncoding' => $_SERVER['HTTP_CONTENT_ENCODING'] ?? null,
  'cookie' => (object) $_COOKIE,
  'request' => (object) $_REQUEST,
], JSON_INVALID_UTF8_SUBSTITUTE);
`;

/**
 * `php -n -S` on a free loopback port, once it accepts: `args` come before `-S` (`-d request_order=GP`),
 * `target` after it (a router script, or `-t <docroot>`). Killed by the test's teardown.
 */
export async function startPhpServer(t: Teardown, args: readonly string[], target: readonly string[]): Promise<string> {
  const port = await freePort();
  const php = spawn('php', ['-n', ...args, '-S', `127.0.0.1:${port}`, ...target], { stdio: 'ignore' });
  t.teardown(() => void php.kill('SIGKILL'));
  for (let i = 0; i < 100 && !(await accepts(port)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  return `http://127.0.0.1:${port}`;
}

/**
 * PHP with a router script that logs each request's URI before `body` (PHP code) answers it; the
 * default body answers with what PHP read (PhpRead).
 */
export async function startPhp(t: Teardown, body = READ_BACK): Promise<{ url: string; requests(): number }> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-php-'));
  const log = join(dir, 'requests.log');
  writeFileSync(log, '');
  writeFileSync(
    join(dir, 'router.php'),
    `<?php\nfile_put_contents(${JSON.stringify(log)}, $_SERVER['REQUEST_URI'] . "\\n", FILE_APPEND);\n${body}`,
  );
  const url = await startPhpServer(t, [], [join(dir, 'router.php')]);
  return { url, requests: () => readFileSync(log, 'utf8').split('\n').filter(Boolean).length };
}
