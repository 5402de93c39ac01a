/**
 * Loaded into tap's runner (`npm run tap`, package.json): the test processes it starts run without
 * tap's process-info loader.
 *
 * tap starts every test file with `--import=@tapjs/processinfo/import`, whatever `.taprc` says. That
 * loader serves coverage (off here) and `tap --changed` (not used); it cost each test process
 * ~0.75 CPU-s more to start (twelve one-assertion files: 1.71 CPU-s each with it, 0.97 without,
 * measured by hand), and more to files that load more modules: the suite's 173 files took 594 s
 * with it and 408 s without, on 2 cores. The children those processes start lose it too, in
 * test/support/plain-children.ts.
 *
 * The argument list reaches a child only through `ChildProcess.prototype.spawn`, which takes the
 * normalised options (`args`, `envPairs`): the one place to take that entry out again. This wrapper
 * is installed first, so any wrapper tap adds later (process-on-spawn) runs before it and it sees
 * the final options.
 */
import { ChildProcess } from 'node:child_process';

/** `--import=…`, `--loader=…`, `--experimental-loader=…` naming @tapjs/processinfo, quoted or not. */
const processInfoLoader = /^"?--(?:import|loader|experimental-loader)=.*@tapjs[\\/]processinfo[\\/]/;
const processInfoOption =
  /(?:"--(?:import|loader|experimental-loader)=[^"]*@tapjs[\\/]processinfo[^"]*"|--(?:import|loader|experimental-loader)=\S*@tapjs[\\/]processinfo\S*)/g;

const spawn = ChildProcess.prototype.spawn;
ChildProcess.prototype.spawn = function spawnWithoutProcessInfo(options) {
  if (Array.isArray(options?.args)) options.args = options.args.filter((arg) => !processInfoLoader.test(arg));
  if (Array.isArray(options?.envPairs)) {
    options.envPairs = options.envPairs.flatMap((pair) => {
      if (!pair.startsWith('NODE_OPTIONS=')) return [pair];
      const kept = pair.slice('NODE_OPTIONS='.length).replace(processInfoOption, '').replace(/\s+/g, ' ').trim();
      return kept === '' ? [] : [`NODE_OPTIONS=${kept}`];
    });
  }
  return spawn.call(this, options);
};
