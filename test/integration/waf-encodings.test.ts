/**
 * The waf against backends that decode more than it read (real decoders, Python's): JSON in UTF-16
 * or UTF-32 without a charset (json.loads on the bytes, which Flask's get_json uses, detects it from
 * the first bytes), and escapes of the languages that travel in a body or a JSON string (YAML's
 * `\U0000003C` and escaped line breaks to PyYAML, GraphQL's `\u{3C}` in `{"query": …}`). Each
 * payload is first shown to decode into the attack at the backend itself, then refused by the
 * sidecar before the backend sees it.
 */
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar, type CapturedEvent } from '../support/sidecar.js';

/**
 * A backend that decodes a body as a Flask API would (JSON: json.loads on the bytes, as get_json
 * does; YAML: PyYAML's safe_load), answers what it read, and prints the path of each request.
 */
const BACKEND = `
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
try:
    import yaml
except ImportError:
    yaml = None
class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get('content-length') or 0))
        try:
            kind = self.headers.get('content-type') or ''
            out = json.dumps(yaml.safe_load(raw) if 'yaml' in kind else json.loads(raw))
        except Exception as e:
            out = json.dumps({'undecodable': str(e)})
        print(self.path, flush=True)
        b = out.encode()
        self.send_response(200); self.send_header('content-length', str(len(b))); self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
# Threads: the sidecar's pooled keep-alive connection would hold a single-threaded server.
srv = ThreadingHTTPServer(('127.0.0.1', 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
`;

interface DecodingBackend {
  readonly url: string;
  /** What the backend decodes from a body sent to it directly (not through the sidecar). */
  decodes(type: string, body: Buffer | string): Promise<string>;
  /** Requests the sidecar forwarded (every path but /direct). */
  forwarded(): number;
}

async function startDecodingBackend(t: Test): Promise<DecodingBackend> {
  const py = spawn('python3', ['-c', BACKEND], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => py.kill('SIGKILL'));
  const lines: string[] = [];
  const port = await new Promise<string>((resolve) => {
    let pending = '';
    py.stdout.on('data', (d: Buffer) => {
      pending += d.toString();
      const done = pending.split('\n');
      pending = done.pop() ?? '';
      for (const line of done) if (lines.push(line) === 1) resolve(line);
    });
  });
  const url = `http://127.0.0.1:${port}`;
  const decodes = (type: string, body: Buffer | string) =>
    new Promise<string>((resolve, reject) => {
      const headers: Record<string, string | number> = { 'content-length': Buffer.byteLength(body) };
      if (type !== '') headers['content-type'] = type;
      const req = request(`${url}/direct`, { method: 'POST', headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end(body);
    });
  // The backend prints a request's path once it has read it; refusals are awaited before this is asked.
  const forwarded = () => lines.slice(1).filter((l) => l !== '/direct').length;
  return { url, decodes, forwarded };
}

const XSS_ESCAPED = '\\u003cscript\\u003ealert(document.cookie)\\u003c/script\\u003e';
const SQLI_ESCAPED = '1\\u0027 OR \\u00271\\u0027=\\u00271';

const utf16le = (s: string, bom = false) => Buffer.concat([Buffer.from(bom ? [0xff, 0xfe] : []), Buffer.from(s, 'utf16le')]);
const utf16be = (s: string) => Buffer.from(s, 'utf16le').swap16();
const utf32 = (s: string, endian: 'le' | 'be', bom = false) => {
  const text = bom ? `\ufeff${s}` : s;
  const out = Buffer.alloc(text.length * 4);
  for (let i = 0; i < text.length; i++)
    if (endian === 'le') out.writeUInt32LE(text.charCodeAt(i), i * 4);
    else out.writeUInt32BE(text.charCodeAt(i), i * 4);
  return out;
};

t.test('the waf against a decoding backend', async (t) => {
  const backend = await startDecodingBackend(t);
  const s = await startTestSidecar(t, backend.url, {
    threats: { waf: { budget: '2s' } },
    routes: [
      { id: 'search', path: '/search', methods: ['POST'] },
      { id: 'upload', path: '/upload', methods: ['POST'] },
      { id: 'graphql', path: '/graphql', methods: ['GET', 'POST'] },
    ],
  });
  const h1 = testAgent(s.ca);
  const h2 = testAgent(s.ca, { h2: true });
  t.teardown(() => Promise.all([h1.close(), h2.close()]));
  const lastEvent = (): Partial<CapturedEvent> => s.events.at(-1) ?? {};
  const post = (path: string, type: string, body: Buffer | string, agent = h1) =>
    fetchText(`${s.url}${path}`, agent, { method: 'POST', headers: type === '' ? {} : { 'content-type': type }, body });

  await t.test('JSON in UTF-16 or UTF-32 without a charset is refused (json.loads reads the escapes the waf did not)', async (t) => {
    const xss = `{"x":"${XSS_ESCAPED}"}`;
    const sqli = `{"q":"${SQLI_ESCAPED}"}`;
    const cases: [string, string, Buffer][] = [
      ['UTF-16LE XSS', 'application/json', utf16le(xss)],
      ['UTF-16LE with its byte order mark', 'application/json', utf16le(xss, true)],
      ['UTF-16BE SQL injection', 'application/json', utf16be(sqli)],
      ['UTF-32LE', 'application/json', utf32(sqli, 'le')],
      ['UTF-32BE with its byte order mark', 'application/json', utf32(xss, 'be', true)],
      ['UTF-16LE labelled UTF-8 (json.loads reads the bytes, not the header)', 'application/json; charset=utf-8', utf16le(sqli)],
      ['UTF-16LE as a text format (application/x-ndjson)', 'application/x-ndjson', utf16le(xss)],
      ['UTF-16LE as text/plain (get_json(force=True))', 'text/plain', utf16le(sqli)],
      ['UTF-16LE untyped', '', utf16le(xss)],
    ];
    const before = backend.forwarded();
    for (const [what, type, body] of cases) {
      t.match(await backend.decodes(type, body), /<script>|1' OR '1'='1/, `${what}: the backend itself decodes the attack`);
      const r = await post('/search', type, body, what.includes('SQL') ? h2 : h1);
      t.equal(r.status, 415, `${what}: 415`);
      t.equal(r.json().code, 'ERR_MEDIA_TYPE_UNSUPPORTED', `${what}: ERR_MEDIA_TYPE_UNSUPPORTED`);
      t.equal(lastEvent()['warden.rule'], 'waf.charset', `${what}: rule waf.charset`);
    }
    t.equal(backend.forwarded(), before, 'the backend saw none of them');
    // Controls: UTF-8 JSON passes, after a UTF-8 byte order mark and with escapes that decode into nothing harmful.
    for (const [what, body] of [
      ['UTF-8 JSON with escapes', '{"note":"caf\\u00e9 \\u2014 O\\u0027Brien"}'],
      ['UTF-8 JSON after a byte order mark', '\ufeff{"note":"plain words"}'],
    ] as const)
      t.equal((await post('/search', 'application/json', body)).status, 200, `${what}: passes`);
  });

  await t.test('a JSON or XML multipart part in UTF-16 is refused (Jackson and Spring detect it)', async (t) => {
    const b = 'waf-wide';
    const upload = (headers: string, content: Buffer) =>
      post(
        '/upload',
        `multipart/form-data; boundary=${b}`,
        Buffer.concat([
          Buffer.from(`--${b}\r\nContent-Disposition: form-data; ${headers}\r\n\r\n`),
          content,
          Buffer.from(`\r\n--${b}--\r\n`),
        ]),
      );
    const json = `{"x":"${XSS_ESCAPED}"}`;
    const before = backend.forwarded();
    for (const [what, headers, content] of [
      ['JSON field part, UTF-16LE', 'name="meta"\r\nContent-Type: application/json', utf16le(json)],
      ['JSON field part, UTF-16BE with its byte order mark', 'name="meta"\r\nContent-Type: application/json', utf16be(`\ufeff${json}`)],
      ['JSON file part (a FormData Blob), UTF-16LE', 'name="meta"; filename="blob"\r\nContent-Type: application/json', utf16le(json)],
      [
        'XML file part, UTF-16LE with its byte order mark',
        'name="doc"; filename="doc.xml"\r\nContent-Type: application/xml',
        utf16le('<r><q>&#60;script&#62;alert(1)&#60;/script&#62;</q></r>', true),
      ],
    ] as const) {
      const r = await upload(headers, content);
      t.equal(r.status, 415, `${what}: 415`);
      t.equal(lastEvent()['warden.rule'], 'waf.charset', `${what}: rule waf.charset`);
    }
    t.equal(backend.forwarded(), before, 'the backend saw none of them');
    t.equal(
      (await upload('name="meta"; filename="blob"\r\nContent-Type: application/json', Buffer.from('{"note":"plain words"}'))).status,
      200,
      'a UTF-8 JSON part passes',
    );
  });

  await t.test("GraphQL's \\u{3C} is undone, in application/graphql, in JSON's query and in a query parameter", async (t) => {
    const q = (arg: string) => `{ search(q: "${arg}") { id } }`;
    const xss = '\\u{3C}script\\u{3E}alert(document.cookie)\\u{3C}/script\\u{3E}';
    const sqli = '1\\u{27} OR \\u{27}1\\u{27}=\\u{27}1';
    const before = backend.forwarded();
    for (const [what, send] of [
      ['application/graphql, XSS', () => post('/graphql', 'application/graphql', q(xss))],
      ['JSON {query}, XSS', () => post('/graphql', 'application/json', JSON.stringify({ query: q(xss) }))],
      ['JSON {query}, SQL injection (h2)', () => post('/graphql', 'application/json', JSON.stringify({ query: q(sqli) }), h2)],
      ['GET ?query=, SQL injection', () => fetchText(`${s.url}/graphql?query=${encodeURIComponent(q(sqli))}`, h1)],
      [
        'code points with leading zeros',
        () => post('/graphql', 'application/graphql', q('\\u{00003C}script\\u{3E}alert(1)\\u{3C}/script\\u{3E}')),
      ],
    ] as const) {
      const r = await send();
      t.equal(r.status, 403, `${what}: 403`);
      t.match(lastEvent().name, /^warden\.input\.(?:xss|sqli)$/, `${what}: an input event`);
    }
    t.equal(backend.forwarded(), before, 'the backend saw none of them');
    t.equal(
      (await post('/graphql', 'application/json', JSON.stringify({ query: q('caf\\u{E9} \\u{1F600}') }))).status,
      200,
      'benign escapes pass',
    );
  });

  await t.test("YAML's escapes are undone as PyYAML undoes them", async (t) => {
    // A prerequisite (README; Debian's python3-yaml): the real reader, not a guess at it.
    t.equal(spawnSync('python3', ['-c', 'import yaml']).status, 0, 'PyYAML is installed (python3-yaml)');
    const cases = [
      ['\\U0000003C (eight hex digits)', 'q: "\\U0000003Cscript\\U0000003Ealert(document.cookie)\\U0000003C/script\\U0000003E"\n'],
      ["an escaped line break, the next line's indent dropped", 'q: "<scr\\\n  ipt>alert(document.cookie)</scr\\\n  ipt>"\n'],
      ['\\U00000027 and escaped line breaks (h2)', 'q: "1\\U00000027 UNI\\\n  ON SEL\\\n  ECT password FROM users--"\n'],
      ['\\_ (a no-break space) between keywords', 'q: "1\\U00000027\\_OR\\_\\U00000027a\\U00000027=\\U00000027a"\n'],
    ] as const;
    const before = backend.forwarded();
    for (const [what, body] of cases) {
      const decoded = JSON.parse(await backend.decodes('application/yaml', body)) as { q?: string };
      t.match(decoded.q, /<script>|' UNION SELECT|'\u00a0OR\u00a0'a'='a/, `${what}: PyYAML decodes the attack`);
      const r = await post('/search', 'application/yaml', body, what.includes('h2') ? h2 : h1);
      t.equal(r.status, 403, `${what}: 403`);
    }
    t.equal(backend.forwarded(), before, 'the backend saw none of them');
    const benign = 'note: "caf\\u00e9 \\U0001F600 one\\\n  line"\n';
    t.same(
      JSON.parse(await backend.decodes('application/yaml', benign)),
      { note: 'caf\u00e9 \u{1F600} oneline' },
      'PyYAML reads the benign escapes',
    );
    t.equal((await post('/search', 'application/yaml', benign)).status, 200, 'benign YAML escapes pass');
  });
});
