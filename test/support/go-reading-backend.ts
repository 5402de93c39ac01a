/**
 * A backend in Node that reads a request body as a Go 1.19 net/http handler does, checked by hand
 * against one (red-team material: a handler answering with what it read):
 *
 * - `json`: `json.NewDecoder(r.Body).Decode(&v)` into a struct, whatever the Content-Type: white
 *   space before the document skipped, the first value read and data after it left unread, field
 *   names matched in any letter case, the last of a name given twice kept, bytes that are not UTF-8
 *   read as U+FFFD;
 * - `form`: `r.FormValue(name)` of a form body (only `application/x-www-form-urlencoded`): `+` and
 *   `%XX` decoded, the first value of a name.
 *
 * It answers 200 with `{ json, form }` (each field null where Go reads none) and counts the requests.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export const GO_FIELDS = ['role', 'q', 'name', 'limit'] as const;
type GoReading = Record<(typeof GO_FIELDS)[number], unknown>;

export interface GoReadingBackend {
  readonly url: string;
  /** Requests that reached it. */
  hits: number;
  close(): Promise<void>;
}

/** Where the first JSON value that starts at `from` ends (strings and nesting followed), or -1. */
function firstValueEnd(text: string, from: number): number {
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      if (depth === 0) return i + 1;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      if (--depth === 0) return i + 1;
    } else if (depth === 0 && /[\s,]/.test(c as string)) return i;
  }
  return depth === 0 ? text.length : -1;
}

export function goJsonReading(body: Buffer): GoReading | { error: string } {
  const text = new TextDecoder('utf-8').decode(body);
  const start = text.search(/[^ \t\r\n]/);
  if (start === -1) return { error: 'EOF' };
  const end = firstValueEnd(text, start);
  let value: unknown;
  try {
    value = JSON.parse(text.slice(start, end === -1 ? text.length : end));
  } catch (e) {
    return { error: (e as Error).message };
  }
  const read: GoReading = { role: null, q: null, name: null, limit: null };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { error: 'cannot unmarshal into Go value of type Input' };
  // JSON.parse keeps the last of a name given twice, as encoding/json does; any letter case matches.
  for (const [name, v] of Object.entries(value)) {
    const field = GO_FIELDS.find((f) => f === name.toLowerCase());
    if (field) read[field] = v;
  }
  return read;
}

export function goFormReading(contentType: string | undefined, body: Buffer): GoReading {
  const read: GoReading = { role: null, q: null, name: null, limit: null };
  if ((contentType ?? '').split(';')[0]?.trim().toLowerCase() !== 'application/x-www-form-urlencoded') return read;
  const form = new URLSearchParams(body.toString('utf8'));
  for (const f of GO_FIELDS) read[f] = form.get(f);
  return read;
}

export async function startGoReadingBackend(): Promise<GoReadingBackend> {
  const backend = {
    url: '',
    hits: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  const server: Server = createServer((req, res) => {
    backend.hits++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const text = JSON.stringify({ json: goJsonReading(body), form: goFormReading(req.headers['content-type'], body) });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  backend.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return backend;
}
