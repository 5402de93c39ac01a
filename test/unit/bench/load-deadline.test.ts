// Every load tool run by the benches is bounded (bench/lib.js loadDeadlineMs): h2load -D can keep
// sending for good when a connection opens after its duration, and the bench must fail, not hang.
import t from 'tap';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../../support/sidecar.js';

interface LoadLib {
  loadDeadlineMs(seconds: number): number;
  runLoadTool(bench: object, tool: string, args: string[], seconds: number): string;
  LoadToolTimeout: new (...args: never[]) => Error;
}
const lib = (await import(pathToFileURL(join(repoRoot, 'bench/lib.js')).href)) as LoadLib;
// No pinning: the tool runs as given.
const bench = { onCpus: (_cpus: string, cmd: string, args: string[]) => [cmd, args], LOAD_CPUS: '0' };

t.test('a tool that ends in time gives its output', async (t) => {
  t.equal(lib.runLoadTool(bench, 'echo', ['report'], 0), 'report\n');
});

t.test('a tool still running past its deadline is killed and the run fails with LoadToolTimeout', async (t) => {
  t.equal(lib.loadDeadlineMs(0), 10_000, 'twice the duration plus 10 s');
  const started = Date.now();
  t.throws(() => lib.runLoadTool(bench, 'sleep', ['60'], 0), lib.LoadToolTimeout);
  const took = Date.now() - started;
  t.ok(took >= 10_000 && took < 20_000, `killed at the deadline (${took} ms)`);
});
