/**
 * red team 28 §7: load errors that named neither the key nor the fix. Each names what is wrong and
 * what to write instead.
 */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { loadOpenApiDocument, OpenApiError } from '../../../src/openapi/document.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-openapi-msg-'));
let n = 0;
async function problemOf(text: string): Promise<string> {
  const file = join(dir, `doc-${n++}.yaml`);
  writeFileSync(file, text);
  try {
    await loadOpenApiDocument(file);
  } catch (err) {
    if (err instanceof OpenApiError) return err.describeIn('DOC');
    throw err;
  }
  return 'accepted';
}

const HEAD31 = 'openapi: 3.1.0\ninfo: {title: t, version: "1"}\n';

t.test('3.1: an unknown key is named, as 3.0 names it', async (t) => {
  t.match(
    await problemOf(`${HEAD31}paths:\n  /a:\n    get:\n      secuirty: []\n      responses: {"200": {description: ok}}\n`),
    /^DOC #\/paths\/~1a\/get: unknown key "secuirty"/,
  );
  t.match(await problemOf(`${HEAD31}paths: {}\n$defs: {A: {type: integer}}\n`), /^DOC #\/\$defs: unknown key "\$defs"/);
});

t.test('openapi: 3.1 unquoted is read as a number: the message says to quote it', async (t) => {
  t.match(await problemOf('openapi: 3.1\ninfo: {title: t, version: "1"}\npaths: {}\n'), /#\/openapi: .*number 3\.1.*quote.*"3\.1\.0"/);
  t.match(await problemOf('openapi: 3.0\ninfo: {title: t, version: "1"}\npaths: {}\n'), /number 3.*"3\.0\.\d"/);
});

t.test('an empty, comment-only or too deeply nested document says so', async (t) => {
  t.match(await problemOf(''), /cannot read .*\(is empty/);
  t.match(await problemOf('# only a comment\n'), /cannot read .*\(is empty/);
  t.match(await problemOf('- a\n- b\n'), /cannot read .*\(is not a YAML or JSON object/);
  const deep = `${HEAD31}paths: {}\ncomponents:\n  schemas:\n    D: ${'{"items":'.repeat(2000)}{}${'}'.repeat(2000)}\n`;
  t.match(await problemOf(deep), /cannot read .*nested (more than \d+ levels deep|too deeply)/);
  const deepJson = `${HEAD31}paths: {}\ncomponents:\n  schemas:\n    D:\n${'      '}${'{"items":'.repeat(600)}{}${'}'.repeat(600)}\n`;
  t.match(await problemOf(deepJson), /cannot read .*nested more than 500 levels deep/);
});

t.test('a URL document with a relative $ref says it must be self-contained, naming the pointer', async (t) => {
  const doc = `${HEAD31}paths:\n  /p:\n    get:\n      responses:\n        "200":\n          description: ok\n          content: {application/json: {schema: {$ref: "schemas/pet.yaml"}}}\n`;
  const server = createServer((_req, res) => res.end(doc));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api.yaml`;
  const problem = await loadOpenApiDocument(url).then(
    () => 'accepted',
    (err: unknown) => (err instanceof OpenApiError ? err.describeIn('DOC') : String(err)),
  );
  t.match(
    problem,
    /^DOC #\/paths\/~1p\/get\/responses\/200\/content\/application~1json\/schema\/\$ref: "schemas\/pet\.yaml" .*self-contained/,
  );
});
