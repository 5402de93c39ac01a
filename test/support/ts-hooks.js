/**
 * The test processes' TypeScript loader (module hooks, registered by test/support/ts-loader.js).
 *
 * It does only what the suite needs, and nothing for the hundreds of other modules a test loads:
 * - a relative `./x.js` import from a TypeScript file names `x.ts` when that file exists (the
 *   NodeNext convention the sources are written in);
 * - a module under src/ loads its compiled dist/ file when that file is newer than its source
 *   (`npm test` builds dist/ just before tap runs): a source edited since the last build is newer
 *   than its compiled file, so it alone goes through the transform — also when a compiled module
 *   imports it — and in the test process no module runs older than its source. The processes a test
 *   starts (`node bin/warden.js`) run dist/ as it is: `npm run build` before running tests by hand.
 *   Told by modification times: a source restored with an older time beside a later build
 *   (`tar -x`, `cp -p`) would not be seen; a clean checkout and `npm test` never meet that.
 * - any other `.ts`/`.mts` file is compiled by esbuild (type annotations stripped, as tsx does).
 *
 * Why not tsx: its hooks examine every module a process loads, node_modules included, which cost
 * each test process ~0.5 CPU-s more than these (importing the proxy's modules: 0.88 CPU-s under tsx,
 * 0.46 under hooks that do nothing, 0.37 with none; measured by hand) — and the suite starts 355.
 */
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { transformSync } from 'esbuild';

const root = fileURLToPath(new URL('../../', import.meta.url));
const srcPrefix = pathToFileURL(`${root}src/`).href;
const distPrefix = pathToFileURL(`${root}dist/`).href;
const typeScript = /\.[cm]?ts$/;
const { compilerOptions } = JSON.parse(readFileSync(`${root}tsconfig.json`, 'utf8'));
const tsconfigRaw = {
  compilerOptions: {
    target: compilerOptions.target,
    verbatimModuleSyntax: compilerOptions.verbatimModuleSyntax,
    useDefineForClassFields: true,
  },
};

function mtimeOf(url) {
  try {
    return statSync(fileURLToPath(url)).mtimeMs;
  } catch {
    return undefined;
  }
}

/**
 * One URL for each module of src/, however it was reached: `dist/x.js` when that is built from the
 * current `src/x.ts`, else the source — also for `dist/x.js` reached from another compiled module,
 * whose own imports stay in dist/ (a stale compiled file there would otherwise run beside fresh ones).
 */
function builtOrSource(url) {
  let source = url;
  if (url.startsWith(distPrefix) && url.endsWith('.js')) source = `${srcPrefix}${url.slice(distPrefix.length, -'.js'.length)}.ts`;
  else if (!url.startsWith(srcPrefix) || !url.endsWith('.ts')) return url;
  const built = `${distPrefix}${source.slice(srcPrefix.length, -'.ts'.length)}.js`;
  const builtTime = mtimeOf(built);
  const sourceTime = mtimeOf(source);
  if (sourceTime === undefined) return url; // a compiled file without a source (none today): as reached
  return builtTime !== undefined && builtTime > sourceTime ? built : source;
}

export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL;
  if (parent !== undefined && typeScript.test(parent) && specifier.endsWith('.js') && /^\.\.?\//.test(specifier)) {
    const source = new URL(`${specifier.slice(0, -'.js'.length)}.ts`, parent).href;
    if (mtimeOf(source) !== undefined) {
      const url = builtOrSource(source);
      return { url, format: url.endsWith('.js') ? 'module' : 'typescript', shortCircuit: true };
    }
  }
  const resolved = await nextResolve(specifier, context);
  if (!typeScript.test(resolved.url) && !resolved.url.startsWith(distPrefix)) return resolved;
  const url = builtOrSource(resolved.url);
  if (url === resolved.url) return resolved;
  return { ...resolved, url, format: url.endsWith('.js') ? 'module' : 'typescript' };
}

export async function load(url, context, nextLoad) {
  if (!typeScript.test(url)) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const { code } = transformSync(readFileSync(path, 'utf8'), {
    loader: 'ts',
    format: 'esm',
    target: 'node20',
    sourcemap: 'inline',
    sourcefile: path,
    tsconfigRaw,
  });
  return { format: 'module', source: code, shortCircuit: true };
}
