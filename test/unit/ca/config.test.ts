/** ca.yaml: the example documents every key with its default; errors name FILE:LINE field. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCaConfig, resolveCaConfig } from '../../../src/config/ca-load.js';
import { caSchema } from '../../../src/config/ca-schema.js';
import { ConfigError } from '../../../src/config/config-error.js';
import { repoRoot, testCaMaterial, TRUST_DOMAIN } from '../../support/ca-harness.js';

const example = readFileSync(join(repoRoot, 'ca.yaml.example'), 'utf8');

function keysOf(schema: unknown, out = new Set<string>()): Set<string> {
  for (const [key, sub] of Object.entries((schema as { properties?: Record<string, unknown> }).properties ?? {})) {
    out.add(key);
    keysOf(sub, out);
  }
  return out;
}

t.test('ca.yaml.example: valid, every value the default, every key mentioned', async (t) => {
  const { dir } = await testCaMaterial();
  const text = example.replace('trust_domain: example.org', `trust_domain: ${TRUST_DOMAIN}`).replaceAll('/var/lib/warden-ca', dir);
  const { config } = await parseCaConfig('ca.yaml.example', text);
  t.same(config, resolveCaConfig({ trust_domain: TRUST_DOMAIN, dir }), 'the example shows the defaults');
  t.equal(config.certificates.lifetime, 24 * 3_600_000);
  t.equal(config.database.path, join(dir, 'ca.db'));
  for (const key of keysOf(caSchema)) t.match(example, new RegExp(`^\\s*#?\\s*${key}:`, 'm'), `${key} documented`);
});

t.test('problems are reported at their line, all at once', async (t) => {
  const { dir } = await testCaMaterial();
  const text = `trust_domain: ${TRUST_DOMAIN}\ndir: ${dir}\nlisten:\n  port: "84x4"\ncrl:\n  next_update: soon\n  nextupdate: 1m\n`;
  const error = await parseCaConfig('ca.yaml', text).catch((e: unknown) => e);
  t.type(error, ConfigError);
  t.same((error as ConfigError).message.split('\n'), [
    'ca.yaml:4 listen.port: must be an integer 0–65535 (0 picks a free port), got "84x4"',
    'ca.yaml:6 crl.next_update: must be a duration like "10m", "24h" or a number of milliseconds, got "soon"',
    'ca.yaml:7 crl.nextupdate: unknown key (allowed: next_update)',
  ]);
  const wrongDomain = await parseCaConfig('ca.yaml', `trust_domain: other.test\ndir: ${dir}\n`).catch((e: unknown) => e);
  t.match((wrongDomain as Error).message, `ca.yaml:1 trust_domain: is "other.test" but the CA in ${dir} is for "${TRUST_DOMAIN}"`);
  const noDir = await parseCaConfig('ca.yaml', `trust_domain: x.test\ndir: /nonexistent\n`).catch((e: unknown) => e);
  t.match((noDir as Error).message, /^ca\.yaml:2 dir: cannot read \/nonexistent\/bundle\.pem \(ENOENT\)/);
  const blank = await parseCaConfig('ca.yaml', `trust_domain: ${TRUST_DOMAIN}\ndir: ${dir}\nlisten:\n  port:\n`).catch((e: unknown) => e);
  t.match((blank as Error).message, /^ca\.yaml:4 listen\.port: has no value \(a blank YAML value is null\)/, 'a blank port is not port 0');
});

t.test('certificates.max_active_per_identity: an integer from 2 (a renewal overlaps the current certificate) to 100000', async (t) => {
  const { dir } = await testCaMaterial();
  const base = `trust_domain: ${TRUST_DOMAIN}\ndir: ${dir}\ncertificates:\n  max_active_per_identity: `;
  t.equal(
    (await parseCaConfig('ca.yaml', `trust_domain: ${TRUST_DOMAIN}\ndir: ${dir}\n`)).config.certificates.max_active_per_identity,
    1024,
  );
  t.equal((await parseCaConfig('ca.yaml', `${base}2\n`)).config.certificates.max_active_per_identity, 2);
  for (const bad of ['1', '100001', '2.5', 'many']) {
    const error = await parseCaConfig('ca.yaml', `${base}${bad}\n`).catch((e: unknown) => e);
    t.match((error as Error).message, /^ca\.yaml:4 certificates\.max_active_per_identity: must be an integer from 2 to 100000/, bad);
  }
});

t.test('durations that would break the CA at run time are refused at load, each at its line', async (t) => {
  const { dir } = await testCaMaterial();
  const text = `trust_domain: ${TRUST_DOMAIN}
dir: ${dir}
certificates:
  lifetime: 0
  backdate: 2h
tokens:
  ttl: 1500ms
crl:
  next_update: 0
server:
  lifetime: 1ms
database:
  keep_expired: 1ms
`;
  const error = await parseCaConfig('ca.yaml', text).catch((e: unknown) => e);
  t.type(error, ConfigError);
  t.same((error as ConfigError).message.split('\n'), [
    'ca.yaml:4 certificates.lifetime: must be from 1s to 365d, got 0 ms',
    'ca.yaml:5 certificates.backdate: must be from 0 to 1h, got 7200000 ms',
    'ca.yaml:7 tokens.ttl: must be whole seconds from 1s to 7d (the token API takes seconds), got 1500 ms',
    'ca.yaml:9 crl.next_update: must be from 1m to 7d, got 0 ms',
    'ca.yaml:11 server.lifetime: must be from 1m to 365d, got 1 ms',
    'ca.yaml:13 database.keep_expired: must be from 1h to 87600h (10 years), got 1 ms',
  ]);
  const long = await parseCaConfig(
    'ca.yaml',
    `trust_domain: ${TRUST_DOMAIN}\ndir: ${dir}\ntokens:\n  ttl: 192h\ncrl:\n  next_update: 300000000h\n`,
  ).catch((e: unknown) => e);
  t.match((long as Error).message, /tokens\.ttl: must be whole seconds from 1s to 7d.*\n.*crl\.next_update: must be from 1m to 7d/);
  const edges = `trust_domain: ${TRUST_DOMAIN}\ndir: ${dir}\ncertificates:\n  lifetime: 1s\n  backdate: 0s\ntokens:\n  ttl: 168h\ncrl:\n  next_update: 1m\n`;
  await t.resolves(parseCaConfig('ca.yaml', edges), 'the bounds themselves are accepted');
  const keep = async (value: string) =>
    (await parseCaConfig('ca.yaml', `trust_domain: ${TRUST_DOMAIN}\ndir: ${dir}\ndatabase:\n  keep_expired: ${value}\n`)).config.database
      .keep_expired;
  t.equal(await keep('1h'), 3_600_000, 'database.keep_expired: 1h is the least');
  t.equal(await keep('87600h'), 3650 * 86_400_000, 'and ten years the most');
  t.equal(
    (await parseCaConfig('ca.yaml', `trust_domain: ${TRUST_DOMAIN}\ndir: ${dir}\n`)).config.database.keep_expired,
    720 * 3_600_000,
    '30 days by default',
  );
});
