/**
 * ajv's optimisation pass fills V8's table of transitions from the empty object's map, and then
 * every `{}` given a new first property, and every object literal with computed keys (Node's
 * process.nextTick builds one per call), gets a map of its own: Warden's whole process ran slower
 * (src/config/ajv-codegen.ts). A child process compiles the schemas and reports whether the table
 * still has room; the control, ajv's default code generation on the same sidecar schema, shows
 * that the probe sees a full table. A major GC between the compile and the probe would clear the
 * table and void both answers (CI once saw the control come back `shared` that way), so the child
 * runs without one and reports that it saw none.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../support/sidecar.js';

const run = promisify(execFile);

// A mark-compact clears dead transitions and would make room again: an old space this large has
// none due in the child (which counts them, see the probe).
const noMajorGc = '--initial-old-space-size=512';

async function probe(mode: 'ajv-default' | 'warden'): Promise<{ shared: boolean; majorGcs: number }> {
  const { stdout } = await run(
    process.execPath,
    [noMajorGc, '--import', 'tsx', '--allow-natives-syntax', join(repoRoot, 'test/support/root-map-probe.ts')],
    {
      cwd: repoRoot,
      env: { ...process.env, PROBE: mode },
      timeout: 60_000,
    },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { shared: boolean; majorGcs: number };
}

t.test("control: ajv's default code generation fills the table (the probe can tell)", async (t) => {
  t.same(await probe('ajv-default'), { shared: false, majorGcs: 0 });
});

t.test("Warden's config and OpenAPI loaders leave room in it", async (t) => {
  t.same(await probe('warden'), { shared: true, majorGcs: 0 });
});
