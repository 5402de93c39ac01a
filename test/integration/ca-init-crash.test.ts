/**
 * `warden ca init` is all or nothing: killed (a real SIGKILL) at any step that changes the file
 * system, it leaves either a whole CA or no bundle.pem, and `test -f bundle.pem || warden ca init`
 * — what the compose and Kubernetes examples run at every start — then ends with a CA that serves.
 * Before, a kill after the first key was written left keys without bundle.pem, and every later init
 * refused the directory as holding a CA. The kill comes from a module preloaded into the child
 * (test/support/kill-at-fs-op.js), not from a hook in the code under test.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CA_PATHS } from '../../src/ca/api.js';
import { initCa } from '../../src/ca/init.js';
import { CA_FILES, loadCaMaterial } from '../../src/ca/layout.js';
import { openCaStore } from '../../src/ca/store.js';
import { startCaServer } from '../../src/ca/server.js';
import { resolveCaConfig } from '../../src/config/ca-load.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { makeCsr, postToCa, repoRoot, serveCaProcessIn } from '../support/ca-harness.js';

const TD = 'example.test';
const ALL = Object.values(CA_FILES).sort();
const STAGING = '.warden-ca-init';

/** The command line and environment of `warden ca init` into `root/ca`, killed before the `killAt`-th file-system step under `root`. */
function initCommand(root: string, options: { killAt?: number; trace?: string }) {
  const preload =
    options.killAt === undefined && options.trace === undefined ? [] : [`--import=${join(repoRoot, 'test/support/kill-at-fs-op.js')}`];
  const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_TEST_FS_ROOT: root, WARDEN_TEST_KILL_AT: String(options.killAt ?? 0) };
  if (options.trace !== undefined) env.WARDEN_TEST_FS_TRACE = options.trace;
  const args = [...preload, join(repoRoot, 'bin/warden.js'), 'ca', 'init', '--trust-domain', TD, '--dir', join(root, 'ca')];
  return { args, env };
}

function init(root: string, options: { killAt?: number; trace?: string } = {}) {
  const { args, env } = initCommand(root, options);
  return spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 20_000, env });
}

/** The same, not waited for: the signal it ended with. */
function initAsync(root: string, killAt: number): Promise<NodeJS.Signals | null> {
  const { args, env } = initCommand(root, { killAt });
  const child = spawn(process.execPath, args, { env, stdio: 'ignore' });
  return new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
}

/** The CA of `dir` started in-process: it enrolls a workload. */
async function enrolls(dir: string): Promise<number> {
  const ca = await startCaServer({
    config: resolveCaConfig({ trust_domain: TD, dir, listen: { host: '127.0.0.1', port: 0 }, log: { level: 'silent' } }),
    logger: createLogger({ level: 'silent' }),
  });
  try {
    const spiffeId = `spiffe://${TD}/ns/shop/sa/orders`;
    const { csrPem } = await makeCsr({ spiffeId });
    const reply = await postToCa(
      `${ca.url}${CA_PATHS.enroll}`,
      { token: ca.createToken({ spiffe_id: spiffeId }).token, csr: csrPem },
      { ca: ca.rootPem },
    );
    return reply.status;
  } finally {
    await ca.close();
  }
}

let trace: string[] | undefined;
/** The file-system steps of a whole init, and each fsync, in order (paths relative to the root). */
function traceOfInit(): string[] {
  if (trace) return trace;
  const root = mkdtempSync(join(tmpdir(), 'warden-ca-init-trace-'));
  const run = init(root, { trace: join(root, 'trace') });
  if (run.status !== 0) throw new Error(`ca init failed: ${run.stderr}`);
  return (trace = readFileSync(join(root, 'trace'), 'utf8').trim().split('\n'));
}

t.test('each file is synced before it is moved into DIR; DIR is synced before bundle.pem and after', async (t) => {
  const steps = traceOfInit();
  const at = (line: string) => steps.indexOf(line);
  for (const file of ALL) {
    const linked = at(`link ca/${STAGING}/${file} ca/${file}`);
    t.ok(linked >= 0, `${file}: moved into DIR from the staging directory (before: written there directly)`);
    t.ok(at(`fsync ca/${STAGING}/${file}`) >= 0 && at(`fsync ca/${STAGING}/${file}`) < linked, `${file}: synced before`);
  }
  const links = steps.filter((l) => l.startsWith('link ')).map(at);
  const bundle = at(`link ca/${STAGING}/bundle.pem ca/bundle.pem`);
  t.equal(Math.max(...links), bundle, 'bundle.pem last');
  t.ok(steps.slice(0, Math.min(...links)).includes(`fsync ca/${STAGING}`), 'the staging directory synced before the first move');
  t.ok(steps.slice(Math.max(...links.filter((l) => l !== bundle)), bundle).includes('fsync ca'), 'DIR synced before bundle.pem is linked');
  t.ok(steps.slice(bundle).includes('fsync ca'), 'and after');
});

t.test('killed at any step, test -f bundle.pem || warden ca init ends with a CA that serves', async (t) => {
  const steps = traceOfInit().filter((l) => !l.startsWith('fsync ')).length;
  t.ok(steps > 10, `${steps} steps`);
  // The killed inits first, three at a time (a process each: the slow part), then each checked.
  const runs = Array.from({ length: steps }, (_, i) => ({
    k: i + 1,
    root: mkdtempSync(join(tmpdir(), 'warden-ca-init-kill-')),
    signal: '',
  }));
  const queue = [...runs];
  const worker = async () => {
    for (let run = queue.shift(); run; run = queue.shift()) run.signal = String(await initAsync(run.root, run.k));
  };
  await Promise.all([worker(), worker(), worker()]);
  for (const { k, root, signal } of runs) {
    const dir = join(root, 'ca');
    t.equal(signal, 'SIGKILL', `step ${k}: killed`);
    const left = existsSync(dir) ? readdirSync(dir) : [];
    t.same(
      left.filter((f) => f !== STAGING && !(ALL as string[]).includes(f)),
      [],
      `step ${k}: nothing left but CA files and the staging directory`,
    );
    // The rerun in-process (the CLI's own runs are above and below): a process per step is slow enough.
    if (left.includes(CA_FILES.bundle)) {
      // Past the last move: every file is there (the staging directory may be, empty of keys).
      t.same(left.filter((f) => f !== STAGING).sort(), ALL, `step ${k}: bundle.pem there, so is every other file`);
      await t.rejects(initCa({ trustDomain: TD, dir }), { name: 'CaExistsError' }, `step ${k}: a whole CA: init refuses it, as before`);
    } else {
      const rerun = await initCa({ trustDomain: TD, dir }).catch((err: Error) => err);
      if (rerun instanceof Error) {
        // Before: "already holds CA files" once a key was written, at this and every later start.
        t.fail(`step ${k}: ca init again failed: ${rerun.message}`);
        continue;
      }
      if (left.includes(STAGING))
        t.ok(rerun.removed.includes(join(dir, STAGING)), `step ${k}: ca init again removed what the killed one left`);
    }
    t.same(readdirSync(dir).sort(), ALL, `step ${k}: a whole CA, nothing else`);
    // What ca serve checks before it listens; an enrollment at some steps (each costs a server start).
    t.ok(await loadCaMaterial(dir), `step ${k}: the CA directory loads`);
    openCaStore(join(dir, CA_FILES.database), { trustDomain: TD }).close();
    if (k % 8 === 1 || k === steps) t.equal(await enrolls(dir), 201, `step ${k}: it serves (enrollment)`);
  }
});

t.test('killed after its first key reached DIR: the next warden ca init removes it, says so, and makes the CA', async (t) => {
  const steps = traceOfInit().filter((l) => !l.startsWith('fsync '));
  // Killed just after root.key was linked into DIR, before its staged name was unlinked.
  const step = steps.indexOf(`link ca/${STAGING}/root.key ca/root.key`) + 2;
  const root = mkdtempSync(join(tmpdir(), 'warden-ca-init-kill-'));
  const dir = join(root, 'ca');
  t.equal(init(root, { killAt: step }).signal, 'SIGKILL');
  t.same(readdirSync(dir).sort(), [STAGING, CA_FILES.rootKey].sort(), 'a key in DIR, no bundle.pem');
  const rerun = init(root);
  t.equal(rerun.status, 0, 'ca init again: created (before: exit 2, "already holds CA files (root.key)", at every start)');
  t.equal(
    rerun.stderr,
    `warden ca init: removed what an interrupted warden ca init had left: ${join(dir, CA_FILES.rootKey)}, ${join(dir, STAGING)}\n`,
  );
  t.match(rerun.stdout, /^Created a Warden CA for trust domain example\.test/);
  t.same(readdirSync(dir).sort(), ALL);
  t.equal(await enrolls(dir), 201, 'it serves');
  const serve = await serveCaProcessIn(t, dir);
  t.match(serve.output(), /warden CA listening/, 'warden ca serve starts on it');
});

t.test('keys without bundle.pem from an init before this change: refused, saying what to remove', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'warden-ca-init-old-'));
  const dir = join(root, 'ca');
  t.equal(init(root).status, 0);
  rmSync(join(dir, CA_FILES.bundle));
  const run = init(root);
  t.equal(run.status, 2, 'not removed without a word: a bundle.pem deleted by hand from a live CA looks the same');
  t.match(
    run.stderr,
    /^warden ca init: \S+ already holds CA files \(.*\); refusing to overwrite — choose an empty --dir; without bundle\.pem \(written last\) they may be the leftovers of an interrupted warden ca init: if no CA was ever served from \S+, remove them \(rm \S+\/root\.crt \S+\/root\.key .*\S+\/ca\.db\) and run it again\n$/,
  );
});
