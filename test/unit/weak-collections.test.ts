// In V8 a scavenge keeps the entries of a WeakMap or WeakSet that lives in the old generation: keyed
// by per-request objects, every entry outlives its request, is promoted, and waits for a
// mark-compact, and every scavenge walks the whole table (bench/request-state-scavenge.js). A request body cache built that way
// cost the full pipeline a third of its scavenge time (docs/history/performance.md, "A WeakMap cache").
// Per-request state lives on the request context instead; a weak collection in src/ must be keyed
// by long-lived objects and listed here with what its keys are.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '../..');
const ALLOWED: Record<string, string> = {
  'src/telemetry/logger.ts': 'keyed by Logger instances (one per process and child logger)',
  'src/identity/token-hash.ts':
    'keyed by client connections (their sockets), one entry per open connection: a keep-alive connection outlives many requests, and one that carries a single request costs a TLS handshake besides',
  'src/identity/token-binding.ts':
    'keyed by principals of bound tokens (cnf or token_type DPoP only), each cached for its token across requests (tokens.cache.max_ttl)',
  'src/openapi/schema-types.ts': "keyed by the loaded OpenAPI document's schema objects (a parameter's shape, decided at load)",
};

function* sources(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(path);
    else if (entry.name.endsWith('.ts')) yield path;
  }
}

t.test('weak collections in src/ are keyed by long-lived objects only', async (t) => {
  const found = [...sources(join(root, 'src'))]
    .filter((file) => /new (WeakMap|WeakSet)\b/.test(readFileSync(file, 'utf8')))
    .map((file) => relative(root, file));
  t.ok(found.length > 0, 'the scan finds the allowed one');
  for (const file of found) t.ok(ALLOWED[file], `${file}: ${ALLOWED[file] ?? 'not listed: keep per-request state on the request context'}`);
});
