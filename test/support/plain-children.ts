/**
 * Loaded before every test file (.taprc `node-arg`): the Node processes a test starts (sidecars, the
 * CA, the CLI, oidc-provider) run without tap's process-info loader.
 *
 * tap adds `--import=@tapjs/processinfo/…` to the NODE_OPTIONS of every process its test processes
 * spawn (through `process-on-spawn`), to gather coverage of subprocesses. Coverage is off here
 * (.taprc), yet each such child paid ~250 ms more to start and ran every module it loaded through
 * the loader's hooks thread: the suite starts several hundred of them. This adds a listener after
 * tap's that takes that one entry out again, keeping any other option a test sets itself.
 */
const spawnHooks = Symbol.for('process-on-spawn@*:singletonId');
// As node-options-to-argv writes it: quoted when the path has a space.
const processInfoImport =
  /(?:"--(?:import|loader|experimental-loader)=[^"]*@tapjs[\\/]processinfo[^"]*"|--(?:import|loader|experimental-loader)=\S*@tapjs[\\/]processinfo\S*)/g;

interface SpawnOptions {
  env: Record<string, string | undefined>;
}
interface SpawnHookState {
  listeners: Array<(options: SpawnOptions) => void>;
}

const state = (globalThis as Record<symbol, SpawnHookState | undefined>)[spawnHooks];
if (state) {
  state.listeners.push((options) => {
    const nodeOptions = options.env.NODE_OPTIONS;
    if (nodeOptions === undefined) return;
    const kept = nodeOptions.replace(processInfoImport, '').replace(/\s+/g, ' ').trim();
    const env = { ...options.env };
    for (const name of Object.keys(env)) if (name.startsWith('_TAPJS_PROCESSINFO_')) delete env[name];
    if (kept === '') delete env.NODE_OPTIONS;
    else env.NODE_OPTIONS = kept;
    options.env = env;
  });
}
