import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../../src/config/config-error.js';
import { parseSidecarConfig } from '../../../src/config/load.js';
import { testConfigYaml } from '../../support/sidecar.js';

const ISSUER = { id: 'idp', issuer: 'https://idp.example.com', audience: ['orders'] };

async function yamlOf(extra: Record<string, unknown>): Promise<string> {
  return testConfigYaml('http://127.0.0.1:1', extra);
}

/** The ConfigError's lines for `extra` merged into the test config, and the YAML text that produced them. */
async function issuesOf(extra: Record<string, unknown>): Promise<{ lines: string[]; text: string }> {
  const text = await yamlOf(extra);
  try {
    parseSidecarConfig('sidecar.yaml', text);
  } catch (err) {
    if (err instanceof ConfigError) return { lines: err.message.split('\n'), text };
    throw err;
  }
  throw new Error('expected a ConfigError');
}

/** 1-based line of the first line of `text` containing `needle` at or after the line containing `after`. */
function lineOf(text: string, needle: string, after?: string): number {
  const lines = text.split('\n');
  const start = after === undefined ? 0 : lines.findIndex((l) => l.includes(after));
  const i = lines.findIndex((l, n) => n >= start && l.includes(needle));
  if (start < 0 || i < 0) throw new Error(`"${needle}" not in the test YAML`);
  return i + 1;
}

t.test('a valid tokens section gets its defaults', async (t) => {
  const { config } = parseSidecarConfig('sidecar.yaml', await yamlOf({ tokens: { issuers: [ISSUER] } }));
  const tokens = config.tokens;
  if (!tokens) throw new Error('tokens section missing');
  t.same(tokens.sources, [{ from: 'authorization' }]);
  t.equal(tokens.leeway, 30_000);
  t.equal(tokens.max_token_bytes, 8192);
  t.equal(tokens.cache.max_ttl, 60_000);
  t.equal(tokens.cache.negative_ttl, 0);
  t.equal(tokens.mint.enabled, true);
  t.equal(tokens.mint.ttl, 300_000);
  t.equal(tokens.mint.header, 'authorization');
  t.same(tokens.mint.claims, {});
  t.equal(tokens.idp.grace, 0);
  t.same(tokens.dpop, {
    max_age: 60_000,
    clock_skew: 5_000,
    algorithms: ['ES256', 'ES384', 'ES512', 'RS256', 'PS256', 'EdDSA'],
    replay_cache_entries: 200_000,
  });
  t.same(tokens.idp.breaker, { failures: 5, open_for: 10_000 });
  t.same(tokens.authn, { mode: 'auto', optional: false, issuers: [] });
  t.same(tokens.issuers[0]?.jwt.algorithms, ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA']);
  t.equal(tokens.issuers[0]?.discovery, true);
});

t.test('an issuer needs an audience (or allow_any_audience)', async (t) => {
  const { lines, text } = await issuesOf({ tokens: { issuers: [{ id: 'idp', issuer: 'https://idp.example.com' }] } });
  t.same(lines, [
    `sidecar.yaml:${lineOf(text, '- id: idp')} tokens.issuers[0].audience: is required: list the aud values meant for this service (or set allow_any_audience: true)`,
  ]);
  const any = await yamlOf({ tokens: { issuers: [{ id: 'idp', issuer: 'https://idp.example.com', allow_any_audience: true }] } });
  t.equal(parseSidecarConfig('sidecar.yaml', any).config.tokens?.issuers[0]?.allow_any_audience, true, 'allowed when said so');
});

t.test('symmetric algorithms and "none" are refused', async (t) => {
  for (const alg of ['HS256', 'none']) {
    const { lines, text } = await issuesOf({ tokens: { issuers: [{ ...ISSUER, jwt: { algorithms: [alg] } }] } });
    t.equal(lines.length, 1);
    t.match(
      lines[0],
      new RegExp(
        `^sidecar\\.yaml:${lineOf(text, `- ${alg}`)} tokens\\.issuers\\[0\\]\\.jwt\\.algorithms\\[0\\]: must be an asymmetric JWS algorithm \\(.*\\), got "${alg}"$`,
      ),
      alg,
    );
  }
});

t.test('introspection client authentication needs its secret or key', async (t) => {
  const basic = await issuesOf({ tokens: { issuers: [{ ...ISSUER, introspection: { client_id: 'warden' } }] } });
  t.same(basic.lines, [
    `sidecar.yaml:${lineOf(basic.text, 'introspection:')} tokens.issuers[0].introspection.client_secret: is required for auth_method client_secret_basic (use \${ENV} or \${file:…})`,
  ]);

  const noKey = await issuesOf({
    tokens: { issuers: [{ ...ISSUER, introspection: { client_id: 'warden', auth_method: 'private_key_jwt' } }] },
  });
  t.same(noKey.lines, [
    `sidecar.yaml:${lineOf(noKey.text, 'introspection:')} tokens.issuers[0].introspection.private_key: is required for auth_method private_key_jwt (a PKCS#8 PEM file)`,
  ]);

  const unreadable = await issuesOf({
    tokens: {
      issuers: [{ ...ISSUER, introspection: { client_id: 'warden', auth_method: 'private_key_jwt', private_key: '/nonexistent/k.pem' } }],
    },
  });
  t.same(unreadable.lines, [
    `sidecar.yaml:${lineOf(unreadable.text, 'private_key:')} tokens.issuers[0].introspection.private_key: cannot read /nonexistent/k.pem (ENOENT)`,
  ]);

  // Read up to a bound: /dev/zero was read until memory ran out (0.8 GB in config check).
  const endless = await issuesOf({
    tokens: {
      issuers: [{ ...ISSUER, introspection: { client_id: 'warden', auth_method: 'private_key_jwt', private_key: '/dev/zero' } }],
    },
  });
  t.same(endless.lines, [
    `sidecar.yaml:${lineOf(endless.text, 'private_key:')} tokens.issuers[0].introspection.private_key: cannot read /dev/zero (larger than 1 MiB)`,
  ]);

  const dir = mkdtempSync(join(tmpdir(), 'warden-tokens-'));
  writeFileSync(join(dir, 'not-a-key.pem'), 'hello\n');
  const garbage = await issuesOf({
    tokens: {
      issuers: [
        { ...ISSUER, introspection: { client_id: 'warden', auth_method: 'private_key_jwt', private_key: join(dir, 'not-a-key.pem') } },
      ],
    },
  });
  t.match(garbage.lines, [/^sidecar\.yaml:\d+ tokens\.issuers\[0\]\.introspection\.private_key: is not a PEM private key \(/]);

  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(join(dir, 'k.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const good = await yamlOf({
    tokens: {
      issuers: [{ ...ISSUER, introspection: { client_id: 'warden', auth_method: 'private_key_jwt', private_key: join(dir, 'k.pem') } }],
    },
  });
  t.equal(parseSidecarConfig('sidecar.yaml', good).config.tokens?.issuers[0]?.introspection?.private_key_alg, 'ES256', 'a real key loads');
  const secret = await yamlOf({ tokens: { issuers: [{ ...ISSUER, introspection: { client_id: 'warden', client_secret: 's3cret' } }] } });
  t.equal(parseSidecarConfig('sidecar.yaml', secret).config.tokens?.issuers[0]?.introspection?.auth_method, 'client_secret_basic');
});

t.test('leeway is clock skew, at most 5m', async (t) => {
  const { lines, text } = await issuesOf({ tokens: { issuers: [ISSUER], leeway: '10m' } });
  t.same(lines, [`sidecar.yaml:${lineOf(text, 'leeway:')} tokens.leeway: must be at most 5m (300000 ms): clock skew, not a grace period`]);
  const fiveMinutes = await yamlOf({ tokens: { issuers: [ISSUER], leeway: '5m' } });
  t.equal(parseSidecarConfig('sidecar.yaml', fiveMinutes).config.tokens?.leeway, 300_000, 'exactly 5m is accepted');
});

t.test('one entry per issuer: a JWT is attributed by its iss alone', async (t) => {
  const { lines } = await issuesOf({ tokens: { issuers: [ISSUER, { ...ISSUER, id: 'idp-partner', audience: ['other'] }] } });
  t.match(lines, [/^sidecar\.yaml:\d+ tokens\.issuers\[1\]\.issuer: repeats tokens\.issuers\[0\]\.issuer: one entry per IdP/]);
});

t.test('dpop: a proof window of at most 5m, asymmetric algorithms only', async (t) => {
  const { lines, text } = await issuesOf({ tokens: { issuers: [ISSUER], dpop: { max_age: '10m', clock_skew: '6m' } } });
  t.same(lines, [
    `sidecar.yaml:${lineOf(text, 'max_age:')} tokens.dpop.max_age: must be at most 5m (300000 ms): a proof is fresh, not a credential`,
    `sidecar.yaml:${lineOf(text, 'clock_skew:')} tokens.dpop.clock_skew: must be at most 5m (300000 ms): clock skew, not a grace period`,
  ]);
  const hs = await issuesOf({ tokens: { issuers: [ISSUER], dpop: { algorithms: ['HS256'] } } });
  t.equal(hs.lines.length, 1);
  t.match(hs.lines[0], /tokens\.dpop\.algorithms\[0\]/);
  const share = await issuesOf({ tokens: { issuers: [ISSUER], dpop: { replay_entries_per_caller: 0 } } });
  t.equal(share.lines.length, 1);
  t.match(share.lines[0], /tokens\.dpop\.replay_entries_per_caller: .*an integer 1–10000000 \(default: an eighth of replay_cache_entries/);
  t.equal(
    parseSidecarConfig('sidecar.yaml', await yamlOf({ tokens: { issuers: [ISSUER], dpop: { replay_entries_per_caller: 500 } } })).config
      .tokens?.dpop.replay_entries_per_caller,
    500,
  );
});

t.test('a route naming an unknown issuer id', async (t) => {
  const { lines, text } = await issuesOf({
    tokens: { issuers: [ISSUER] },
    routes: [{ id: 'r', path: '/', authn: { issuers: ['idp', 'nope'] } }],
  });
  t.same(lines, [`sidecar.yaml:${lineOf(text, '- nope')} routes[0].authn.issuers[1]: unknown issuer id "nope" (known: idp)`]);
});

t.test('route scopes (and authn) need a tokens section', async (t) => {
  const { lines, text } = await issuesOf({ routes: [{ id: 'r', path: '/', authn: { optional: true }, scopes: { all_of: ['a'] } }] });
  t.same(lines, [
    `sidecar.yaml:${lineOf(text, 'authn:')} routes[0].authn: needs a tokens section (the issuers tokens are checked against)`,
    `sidecar.yaml:${lineOf(text, 'scopes:')} routes[0].scopes: needs a tokens section: scopes come from validated tokens`,
  ]);
});

t.test('mint.claims cannot map over reserved claims', async (t) => {
  for (const reserved of ['iss', 'exp']) {
    const { lines, text } = await issuesOf({ tokens: { issuers: [ISSUER], mint: { claims: { email: 'email', [reserved]: 'email' } } } });
    t.equal(lines.length, 1, reserved);
    t.match(lines[0], new RegExp(`^sidecar\\.yaml:${lineOf(text, 'claims:')} tokens\\.mint\\.claims: .*got "${reserved}"$`), reserved);
  }
  const fine = await yamlOf({ tokens: { issuers: [ISSUER], mint: { claims: { email: 'email', tenant: 'org_id' } } } });
  t.same(parseSidecarConfig('sidecar.yaml', fine).config.tokens?.mint.claims, { email: 'email', tenant: 'org_id' });
});

t.test('a header, cookie or query source needs a name', async (t) => {
  const { lines, text } = await issuesOf({ tokens: { issuers: [ISSUER], sources: [{ from: 'authorization' }, { from: 'header' }] } });
  t.same(lines, [
    `sidecar.yaml:${lineOf(text, '- from: header')} tokens.sources[1].name: is required for from: header (the header name to read)`,
  ]);
  const named = await yamlOf({ tokens: { issuers: [ISSUER], sources: [{ from: 'cookie', name: 'at' }] } });
  t.same(parseSidecarConfig('sidecar.yaml', named).config.tokens?.sources, [{ from: 'cookie', name: 'at' }]);
});

t.test('authn mode introspect needs an issuer with an introspection client', async (t) => {
  const { lines, text } = await issuesOf({
    tokens: { issuers: [ISSUER] },
    routes: [{ id: 'r', path: '/', authn: { mode: 'introspect' } }],
  });
  t.same(lines, [
    `sidecar.yaml:${lineOf(text, 'mode: introspect')} routes[0].authn.mode: is "introspect" but no issuer has an introspection client (tokens.issuers[].introspection)`,
  ]);
  const withClient = await yamlOf({
    tokens: { issuers: [{ ...ISSUER, introspection: { client_id: 'warden', client_secret: 's' } }] },
    routes: [{ id: 'r', path: '/', authn: { mode: 'introspect' } }],
  });
  t.equal(parseSidecarConfig('sidecar.yaml', withClient).config.routes[0]?.authn?.mode, 'introspect');
});

t.test('opaque tokens cannot reach two introspecting issuers: whose a token is, nothing says (defect 172)', async (t) => {
  const client = { client_id: 'warden', client_secret: 's' };
  const a = { ...ISSUER, id: 'a', issuer: 'https://a.example', introspection: client };
  const b = { ...ISSUER, id: 'b', issuer: 'https://b.example', introspection: client };
  const both = await issuesOf({ tokens: { issuers: [a, b] } });
  t.equal(both.lines.length, 1);
  t.match(
    both.lines[0],
    /^sidecar\.yaml:\d+ tokens\.authn\.issuers: lets opaque tokens reach 2 issuers that introspect \(a, b\), and an opaque token does not say whose it is: name one in authn\.issuers \(a route per issuer\), or take JWTs only there \(authn\.mode: jwt\)$/,
  );
  const perRoute = await issuesOf({
    tokens: { issuers: [a, b], authn: { issuers: ['a'] } },
    routes: [
      { id: 'a-only', path: '/a', authn: { issuers: ['a'] } },
      { id: 'both', path: '/both', authn: { issuers: ['a', 'b'] } },
      { id: 'jwt', path: '/jwt', authn: { mode: 'jwt', issuers: ['a', 'b'] } },
    ],
  });
  t.equal(perRoute.lines.length, 1, 'only the route that reaches both');
  t.match(perRoute.lines[0], /routes\[1\]\.authn\.issuers: lets opaque tokens reach 2 issuers that introspect \(a, b\)/);
  const narrowed = await yamlOf({
    tokens: { issuers: [a, b], authn: { mode: 'jwt' } },
    routes: [{ id: 'b', path: '/b', authn: { mode: 'auto', issuers: ['b'] } }],
  });
  t.equal(parseSidecarConfig('sidecar.yaml', narrowed).config.routes[0]?.authn?.issuers?.[0], 'b', 'one per route, or JWTs only, loads');
  const oneIntrospects = await yamlOf({ tokens: { issuers: [a, { ...ISSUER, id: 'c', issuer: 'https://c.example' }] } });
  t.ok(parseSidecarConfig('sidecar.yaml', oneIntrospects).config.tokens, 'one introspecting issuer beside JWT-only ones loads');
});

t.test('tokens.shared: a key of its own, or an introspection client to derive it from', async (t) => {
  const shared = { redis: 'redis://127.0.0.1:6379' };
  const { lines } = await issuesOf({ tokens: { issuers: [ISSUER], shared } });
  t.match(lines, [/tokens\.shared\.key: is required when no issuer introspects/]);
  const short = await issuesOf({ tokens: { issuers: [ISSUER], shared: { ...shared, key: 'S3CRET-short' } } });
  t.match(short.lines, [/tokens\.shared\.key: must be a secret of at least 32 characters/]);
  t.notOk(short.lines.join('\n').includes('S3CRET'), 'the key is not shown');
  const { config } = parseSidecarConfig(
    'sidecar.yaml',
    await yamlOf({ tokens: { issuers: [ISSUER], shared: { ...shared, key: 'k'.repeat(32) } } }),
  );
  t.equal(config.tokens?.shared?.prefix, undefined, 'no prefix given: warden:<service.name>: (set by the token runtime)');
  t.equal(config.tokens?.shared?.write_back, 30_000, 'revocations written back every 30 s by default');
  const busy = await issuesOf({ tokens: { issuers: [ISSUER], shared: { ...shared, key: 'k'.repeat(32), write_back: '10ms' } } });
  t.match(busy.lines, [/tokens\.shared\.write_back: must be at least 100ms/]);
  const introspecting = { ...ISSUER, introspection: { client_id: 'orders', client_secret: 'secret' } };
  t.ok(parseSidecarConfig('sidecar.yaml', await yamlOf({ tokens: { issuers: [introspecting], shared } })).config.tokens?.shared);
});

t.test('introspection.token_types cannot require a refresh or ID token: such tokens are always refused', async (t) => {
  const introspection = {
    client_id: 'warden',
    client_secret: 's',
    token_types: ['Bearer', 'Refresh_Token', 'urn:ietf:params:oauth:token-type:id_token'],
  };
  const { lines } = await issuesOf({ tokens: { issuers: [{ ...ISSUER, introspection }] } });
  t.match(lines, [
    /^sidecar\.yaml:\d+ tokens\.issuers\[0\]\.introspection\.token_types\[1\]: "Refresh_Token" is not an access token's type: such tokens are always refused \(list e\.g\. "Bearer"\)$/,
    /^sidecar\.yaml:\d+ tokens\.issuers\[0\]\.introspection\.token_types\[2\]: "urn:ietf:params:oauth:token-type:id_token" is not/,
  ]);
  t.equal(lines.length, 2);
  const bearer = await yamlOf({
    tokens: { issuers: [{ ...ISSUER, introspection: { ...introspection, token_types: ['Bearer', 'DPoP'] } }] },
  });
  t.ok(parseSidecarConfig('sidecar.yaml', bearer).config.tokens, 'access token types are accepted');
});

t.test('tokens.mint.key_rotation: at least 90s, refused below rather than raised without a word', async (t) => {
  const short = await issuesOf({ tokens: { issuers: [ISSUER], mint: { key_rotation: '80s' } } });
  t.match(short.lines, [
    /^sidecar\.yaml:\d+ tokens\.mint\.key_rotation: must be at least 90s: a key is published that long before it signs/,
  ]);
  const { config } = parseSidecarConfig('sidecar.yaml', await yamlOf({ tokens: { issuers: [ISSUER], mint: { key_rotation: '90s' } } }));
  t.equal(config.tokens?.mint.key_rotation, 90_000, '90s loads');
});
