/**
 * A log destination for `warden dev`: every JSON line goes to a file, and requests and security
 * events are also printed to the terminal in a form a person reads at a glance.
 */
import { chmodSync, closeSync, createWriteStream, openSync } from 'node:fs';
import { Writable } from 'node:stream';

/**
 * A logged value as the terminal may show it: control characters (ESC, CR, LF, C1) as \xNN, and
 * the bidirectional controls and line separators as \u{NNNN}. Values can come from a caller (a
 * path, a `_charset_` value in an event's detail): an escape sequence printed raw would rewrite the
 * operator's terminal or forge lines, and a right-to-left override would show a line's fields in
 * another order than they are (CVE-2021-42574's trick).
 */
const shown = (value: unknown): string =>
  String(value)
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/[\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);

const colour = (code: number, text: string) => (process.stdout.isTTY ? `\u001b[${code}m${text}\u001b[0m` : text);

/** What the terminal shows for one log record, or undefined for records it does not show. */
export function terminalLine(record: Record<string, unknown>): string | undefined {
  const time = new Date(Number(record.time)).toISOString().slice(11, 19);
  if (record.msg === 'request') {
    const status = Number(record['http.response.status_code']);
    const statusText = colour(status >= 500 ? 31 : status >= 400 ? 33 : 32, String(status));
    // The backend's share, when it answered: what is left is the sidecar's own time.
    const backend = typeof record.upstream_ms === 'number' ? ` (backend ${record.upstream_ms} ms)` : '';
    return `${time}  ${statusText} ${shown(record['http.request.method'])} ${shown(record['url.path'])}  route=${shown(record['http.route'])} h${shown(record['network.protocol.version'])} ${shown(record.duration_ms)} ms${backend}`;
  }
  if (typeof record.event === 'string') {
    const bits = [
      'warden.code',
      'warden.rule',
      'warden.peer.id',
      'warden.spiffe.id',
      'warden.cert.serial',
      'error.type',
      'client.address',
      'warden.detail',
    ]
      .filter((k) => record[k] !== undefined)
      .map((k) => `${k.replace(/^warden\./, '')}=${shown(record[k])}`);
    return `${time}  ${colour(35, 'event')} ${colour(1, shown(record.event))}  ${bits.join(' ')}`;
  }
  if (typeof record.level === 'string' && ['warn', 'error', 'fatal'].includes(record.level)) {
    return `${time}  ${colour(31, record.level)} ${shown(record.msg)}`;
  }
  return undefined;
}

export function createDevLogDestination(logFile: string): Writable {
  // This user's alone; one left by an earlier run keeps its mode otherwise (the stream opens later).
  closeSync(openSync(logFile, 'a', 0o600));
  chmodSync(logFile, 0o600);
  const file = createWriteStream(logFile, { flags: 'a' });
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      file.write(chunk);
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        try {
          const text = terminalLine(JSON.parse(line) as Record<string, unknown>);
          if (text) process.stdout.write(text + '\n');
        } catch {
          // not JSON: ignore on the console, it is in the file
        }
      }
      done();
    },
  });
}
