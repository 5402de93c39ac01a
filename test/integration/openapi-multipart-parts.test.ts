/**
 * Multipart parts and cookies read as a real Python backend reads them (red team round 18: t2b,
 * t5): Werkzeug (Flask) when it is installed, else CPython's email parser and SimpleCookie.
 * - A part without a file name typed application/octet-stream is a text field to Werkzeug, PHP,
 *   Spring and Go; busboy took it for a file, and validation checked a placeholder in its place:
 *   `caption` (`maxLength: 10`, no `<`) took `<script>…`, and Flask's form had it.
 * - A file on a property whose schema is no binary string is checked as its text.
 * - A JSON part for an object or array property is parsed (it was always refused: `must be object`).
 * - A quoted cookie is checked both with and without its DQUOTEs (Werkzeug drops them, PHP keeps
 *   them: round 21b reversed `lang="en"` passing `enum: [en]`), and one
 *   holding a `\` is refused: Werkzeug decodes `"\074script\076"` to `<script>`.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

const BACKEND = String.raw`
import io, json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
try:
    from werkzeug.formparser import parse_form_data
    from werkzeug.http import parse_cookie
    READER = 'werkzeug'
except ImportError:
    READER = 'email'
def parts(ct, raw):
    form, files = {}, {}
    if READER == 'werkzeug':
        env = {'REQUEST_METHOD': 'POST', 'CONTENT_TYPE': ct, 'CONTENT_LENGTH': str(len(raw)), 'wsgi.input': io.BytesIO(raw)}
        _, f, fs = parse_form_data(env)
        return f.to_dict(flat=False), {k: [x.filename for x in v] for k, v in fs.to_dict(flat=False).items()}
    from email.parser import BytesParser
    from email import policy
    msg = BytesParser(policy=policy.HTTP).parsebytes(b'Content-Type: ' + ct.encode() + b'\r\n\r\n' + raw)
    for p in msg.iter_parts():
        name = p.get_param('name', header='content-disposition')
        if p.get_param('filename', header='content-disposition') is None:
            form.setdefault(name, []).append(p.get_payload(decode=True).decode('utf-8', 'replace'))
        else:
            files.setdefault(name, []).append(p.get_filename())
    return form, files
def cookies(header):
    if READER == 'werkzeug':
        return parse_cookie(header or '').to_dict(flat=False)
    from http.cookies import SimpleCookie
    c = SimpleCookie(); c.load(header or '')
    return {k: [m.value] for k, m in c.items()}
class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def answer(self, out):
        b = json.dumps(out).encode()
        self.send_response(200); self.send_header('content-length', str(len(b))); self.end_headers(); self.wfile.write(b)
    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get('content-length') or 0))
        form, files = parts(self.headers.get('content-type') or '', raw)
        self.answer({'reader': READER, 'form': form, 'files': files})
    def do_GET(self):
        self.answer({'reader': READER, 'cookies': cookies(self.headers.get('cookie'))})
    def log_message(self, *a): pass
srv = ThreadingHTTPServer(('127.0.0.1', 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
`;

const DOC = `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /upload:
    post:
      operationId: upload
      security: []
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema:
              type: object
              properties:
                caption: { type: string, maxLength: 10, pattern: '^[^<>]*$' }
                count: { type: integer, maximum: 5 }
                file: { type: string, format: binary }
                any: {}
                meta:
                  type: object
                  required: [n]
                  properties: { n: { type: integer, maximum: 5 } }
                tags: { type: array, items: { type: string, maxLength: 3 } }
            encoding:
              tags: { contentType: application/json }
      responses: { '200': { description: ok } }
  /prefs:
    get:
      operationId: prefs
      security: []
      parameters:
        - { name: theme, in: cookie, schema: { type: string, pattern: '^[^<>/]*$' } }
        - { name: lang, in: cookie, schema: { type: string, enum: [en, fr] } }
      responses: { '200': { description: ok } }
`;

async function startPythonBackend(t: Test): Promise<string> {
  const py = spawn('python3', ['-c', BACKEND], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => py.kill('SIGKILL'));
  const port = await new Promise<string>((resolve) => {
    let pending = '';
    py.stdout.on('data', (d: Buffer) => {
      pending += d.toString();
      if (pending.includes('\n')) resolve(pending.split('\n')[0] as string);
    });
  });
  return `http://127.0.0.1:${port}`;
}

const B = 'XyZ';
/** One part: `filename` undefined for none, '' for `filename=""`; `type` its Content-Type, if any. */
const part = (name: string, value: string, type?: string, filename?: string) =>
  `--${B}\r\nContent-Disposition: form-data; name="${name}"${filename === undefined ? '' : `; filename="${filename}"`}\r\n` +
  `${type === undefined ? '' : `Content-Type: ${type}\r\n`}\r\n${value}\r\n`;

t.test('multipart parts and cookies, as a Python backend reads them', async (t) => {
  const backend = await startPythonBackend(t);
  const s = await startTestSidecar(t, backend, { openapi: { document: openApiFile(DOC), allow_public: true } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  /** `latin1`: each character one byte, for bytes no UTF-8 text holds. */
  const upload = async (...parts: string[]) => uploadAs('utf8', ...parts);
  const uploadAs = async (encoding: BufferEncoding, ...parts: string[]) => {
    const r = await fetchText(`${s.url}/upload`, agent, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${B}` },
      body: Buffer.from(parts.join('') + `--${B}--\r\n`, encoding),
    });
    return { status: r.status, body: JSON.parse(r.text) as Record<string, unknown> };
  };
  const prefs = async (cookie: string) => {
    const r = await fetchText(`${s.url}/prefs`, agent, { headers: { cookie } });
    return { status: r.status, body: JSON.parse(r.text) as Record<string, unknown> };
  };
  t.comment(`backend reader: ${String((await prefs('lang=en')).body.reader)}`);

  t.test('a part without a file name is a text field, whatever its type', async (t) => {
    const script = '<script>alert(document.cookie)</script>';
    t.match(await upload(part('caption', script, 'application/octet-stream')), {
      status: 400,
      body: { errors: [{ pointer: '/body/caption' }] },
    });
    t.match(await upload(part('count', '1000', 'application/octet-stream')), {
      status: 400,
      body: { errors: [{ pointer: '/body/count', message: 'must be <= 5' }] },
    });
    // The backend reads it as a text field, which passes when valid.
    t.match(await upload(part('caption', 'hello', 'application/octet-stream')), { status: 200, body: { form: { caption: ['hello'] } } });
    t.match(await upload(part('count', '3', 'application/octet-stream')), { status: 200, body: { form: { count: ['3'] } } });
  });

  t.test('a file is checked as text on a property that is no binary string', async (t) => {
    t.match(await upload(part('caption', '<script>x</script>', 'text/html', 'c.html')), {
      status: 400,
      body: { errors: [{ pointer: '/body/caption' }] },
    });
    t.match(await upload(part('caption', 'short', 'text/plain', 'c.txt')), { status: 200, body: { files: { caption: ['c.txt'] } } });
    // A binary property's (or any value's) bytes are the malware scan's, not a schema's; so is
    // `filename=""`, a file to Werkzeug too.
    t.match(await upload(part('file', '<script>x</script>', 'application/octet-stream', 'a.bin')), {
      status: 200,
      body: { files: { file: ['a.bin'] } },
    });
    t.match(await upload(part('any', '<script>x</script>', 'application/octet-stream', 'a.bin')), { status: 200 });
    t.match(await upload(part('file', '<script>x</script>', 'application/octet-stream', '')), { status: 200 });
  });

  t.test('a JSON part for an object or array property is parsed and checked', async (t) => {
    t.match(await upload(part('meta', '{"n":3}', 'application/json')), { status: 200, body: { form: { meta: ['{"n":3}'] } } });
    t.match(await upload(part('meta', '{"n":9}', 'application/json')), { status: 400, body: { errors: [{ pointer: '/body/meta/n' }] } });
    t.match(await upload(part('meta', '{"n":1,"n":9}', 'application/json')), {
      status: 400,
      body: { errors: [{ pointer: '/body/meta', message: 'is not valid JSON' }] },
    });
    t.match(await upload(part('meta', '{"n":1,"N":9}', 'application/json')), {
      status: 400,
      body: { errors: [{ pointer: '/body/meta/N', message: /letter case/ }] },
    });
    t.match(await upload(part('meta', '{"n":', 'application/json')), { status: 400, body: { errors: [{ message: 'is not valid JSON' }] } });
    // Bytes that are no UTF-8 (an overlong `C0 BC`, which Jackson reads as `<`): refused, not read as U+FFFD (the review).
    t.match(await uploadAs('latin1', part('meta', '{"n":3,"x":"\u00c0\u00bcscript"}', 'application/json')), {
      status: 400,
      body: { errors: [{ pointer: '/body/meta', message: 'is not valid JSON' }] },
    });
    // Read from its bytes, not by a look for U+FFFD in busboy's text: that character sent as UTF-8 is JSON.
    t.match(await upload(part('meta', '{"n":3,"x":"\ufffd"}', 'application/json')), { status: 200 });
    // Not JSON by its type nor by the document's encoding: a string, no object.
    t.match(await upload(part('meta', '{"n":3}')), {
      status: 400,
      body: { errors: [{ pointer: '/body/meta', message: 'must be object' }] },
    });
    // encoding.tags.contentType says JSON: parsed whatever the part's own type.
    t.match(await upload(part('tags', '["ab","cd"]')), { status: 200 });
    t.match(await upload(part('tags', '["abcdef"]')), { status: 400, body: { errors: [{ pointer: '/body/tags/0' }] } });
    // A JSON file (a browser's FormData Blob) for an object property: parsed too.
    t.match(await upload(part('meta', '{"n":9}', 'application/json', 'blob')), {
      status: 400,
      body: { errors: [{ pointer: '/body/meta/n' }] },
    });
  });

  t.test('quoted cookies are checked with and without their quotes, and refused with an escape', async (t) => {
    // PHP reads `"en"` with its quotes, which `enum: [en]` never allowed (round 21b; once let through).
    t.match(await prefs('lang="en"'), { status: 400, body: { errors: [{ pointer: '/cookie/lang' }] } });
    t.match(await prefs('theme="dark"'), { status: 200, body: { cookies: { theme: ['dark'] } } });
    t.match(await prefs('lang="de"'), { status: 400, body: { errors: [{ pointer: '/cookie/lang' }] } });
    t.match(await prefs('theme="<b>"'), { status: 400, body: { errors: [{ pointer: '/cookie/theme' }] } });
    t.match(await prefs('theme="\\074script\\076"'), {
      status: 400,
      body: { errors: [{ pointer: '/cookie/theme', message: /quoted and holds a "\\"/ }] },
    });
    t.match(await prefs('theme="..\\057..\\057etc\\057passwd"'), { status: 400, body: { errors: [{ pointer: '/cookie/theme' }] } });
    // What the backend makes of such a cookie, sent to it directly: the escapes decoded.
    const direct = await fetch(`${backend}/prefs`, { headers: { cookie: 'theme="\\074script\\076"' } }).then((r) => r.json());
    t.match(direct, { cookies: { theme: ['<script>'] } });
  });
});
