/** sidecar.yaml.example is valid and documents every key the schema knows. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSidecarConfig } from '../../../src/config/load.js';
import { sidecarSchema } from '../../../src/config/sidecar-schema.js';
import { testCertificate } from '../../support/certs.js';
import { repoRoot } from '../../support/sidecar.js';

const example = readFileSync(join(repoRoot, 'sidecar.yaml.example'), 'utf8');

function keysOf(schema: unknown, out = new Set<string>()): Set<string> {
  const s = schema as { properties?: Record<string, unknown>; items?: unknown };
  for (const [key, sub] of Object.entries(s.properties ?? {})) {
    out.add(key);
    keysOf(sub, out);
  }
  if (s.items) keysOf(s.items, out);
  return out;
}

t.test('the example loads (with real certificate paths) and matches the defaults', async (t) => {
  const cert = await testCertificate();
  const text = example.replace('./certs/tls.crt', cert.certFile).replace('./certs/tls.key', cert.keyFile);
  const { config } = parseSidecarConfig('sidecar.yaml.example', text);
  const defaults = parseSidecarConfig(
    'defaults.yaml',
    `listeners: { inbound: { tls: { cert: ${cert.certFile}, key: ${cert.keyFile} } } }\nupstream: { url: "http://127.0.0.1:8080" }\n`,
  ).config;
  t.same(config, defaults, 'every value in the example is the default');
});

t.test('every schema key is documented in the example', async (t) => {
  for (const key of keysOf(sidecarSchema)) t.match(example, new RegExp(`^\\s*(#\\s*)?(- )?${key}:`, 'm'), key);
});
