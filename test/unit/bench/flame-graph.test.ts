// bench/flame-graph-svg.js: the busy time per call path of a .cpuprofile, and its SVG flame graph.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../../support/sidecar.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber?: number;
}
interface Box {
  frame: CallFrame;
  self: number;
  total: number;
  children: Box[];
}
interface FlameLib {
  REQUEST_DISPATCH: string[];
  placeOf(frame: CallFrame): { kind: string; name: string; where: string };
  busyTree(profile: unknown, opts?: { from?: string[] }): Box;
  flameGraphSvg(profile: unknown, opts?: { width?: number; from?: string[]; requests?: number; fullScale?: number }): string;
}
const lib = (await import(pathToFileURL(join(repoRoot, 'bench/flame-graph-svg.js')).href)) as FlameLib;

const frame = (functionName: string, url = '') => ({ functionName, url, scriptId: '0', lineNumber: 0, columnNumber: 0 });
// root ─┬─ handle (Warden) ── write (node:net)
//       ├─ (idle)
//       └─ <parse> (undici)
const profile = {
  nodes: [
    { id: 1, callFrame: frame('(root)'), children: [2, 4, 5] },
    { id: 2, callFrame: frame('handle', 'file:///srv/warden/dist/proxy/handler.js'), children: [3] },
    { id: 3, callFrame: frame('write', 'node:net') },
    { id: 4, callFrame: frame('(idle)') },
    { id: 5, callFrame: frame('<parse>', 'file:///srv/warden/node_modules/undici/lib/core/util.js') },
  ],
  samples: [2, 3, 3, 4, 5, 3],
  timeDeltas: [10, 10, 10, 500, 10, 10],
  startTime: 0,
  endTime: 560,
};

t.test('the busy time per call path: idle left out, callees inside their callers, widest first', async (t) => {
  const tree = lib.busyTree(profile);
  t.equal(tree.total, 50, 'every sample but the idle one, by the time since the sample before it');
  t.same(
    tree.children.map((c) => [c.frame.functionName, c.self, c.total]),
    [
      ['handle', 10, 40],
      ['<parse>', 10, 10],
    ],
  );
  t.same(
    tree.children[0]!.children.map((c) => [c.frame.functionName, c.self, c.total]),
    [['write', 30, 30]],
  );
});

t.test('from: the samples before the first one inside a named function are left out', async (t) => {
  const tree = lib.busyTree(profile, { from: ['write'] });
  t.equal(tree.total, 40, 'from the second sample on');
  t.same(
    tree.children.map((c) => [c.frame.functionName, c.self, c.total]),
    [
      ['handle', 0, 30],
      ['<parse>', 10, 10],
    ],
  );
  t.throws(() => lib.busyTree(profile, { from: lib.REQUEST_DISPATCH }), /no sample was taken inside parserOnIncoming or onSessionHeaders/);
});

t.test('places: Warden, Node, npm, wasm and V8 frames', async (t) => {
  t.same(lib.placeOf(profile.nodes[1]!.callFrame), { kind: 'warden', name: 'handle', where: 'dist/proxy/handler.js' });
  t.same(lib.placeOf(profile.nodes[2]!.callFrame), { kind: 'node', name: 'write', where: 'node:net' });
  t.same(lib.placeOf(profile.nodes[4]!.callFrame), { kind: 'npm', name: '<parse>', where: 'npm:undici' });
  t.same(lib.placeOf(frame('wasm-function[20]', 'wasm://wasm/00034eea')), { kind: 'native', name: 'wasm-function[20]', where: 'wasm' });
  t.same(lib.placeOf(frame('(garbage collector)')), { kind: 'native', name: '(garbage collector)', where: '' });
  t.same(lib.placeOf(frame('', 'node:events')).name, '(anonymous)');
});

t.test('the SVG: one box per call path, as wide as its time, names escaped', async (t) => {
  const svg = lib.flameGraphSvg(profile, { width: 1000 });
  const boxes = [...svg.matchAll(/<title>([^<]*)<\/title><rect x="([\d.]+)" y="(\d+)" width="([\d.]+)"/g)].map((m) => ({
    name: m[1]!.split(/[ :]/)[0],
    x: Number(m[2]),
    y: Number(m[3]),
    width: Number(m[4]),
  }));
  t.same(
    boxes.map((b) => [b.name, b.x, b.width]),
    [
      ['all', 0, 1000],
      ['&lt;parse&gt;', 800, 200],
      ['handle', 0, 800],
      ['write', 0, 600],
    ],
  );
  const y = Object.fromEntries(boxes.map((b) => [b.name, b.y]));
  t.ok(y['all']! > y['handle']! && y['handle']! > y['write']!, 'callers below their callees');
  t.notMatch(svg, /<title>[^<]*<parse>/, 'no markup from a function name');
  t.match(svg, /handle dist\/proxy\/handler\.js:1: 0\.040 ms/, 'the tooltip names the file and the time');
});

t.test('two graphs to one scale: per request, the full width standing for fullScale', async (t) => {
  // 50 µs over 10 requests is 5 µs each; the full width stands for 10 µs per request.
  const svg = lib.flameGraphSvg(profile, { width: 1000, requests: 10, fullScale: 10 });
  t.match(svg, /<title>all: 5\.00 µs per request[^<]*<\/title><rect x="0\.00" y="\d+" width="500\.00"/);
  t.match(svg, /busy 5\.00 µs per request; width = time \(full width 10\.00\)/);
});

t.test('bad input: a clear error, and one line from the command', async (t) => {
  t.throws(() => lib.flameGraphSvg({ nodes: [] }), /not a V8 CPU profile/);
  t.throws(() => lib.flameGraphSvg({ ...profile, samples: [4] }), /no busy sample/);
  const dir = t.testdir({ 'p.cpuprofile': JSON.stringify(profile), 'bad.cpuprofile': '{"nodes":' });
  const run = (...args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'bench/flame-graph.js'), ...args], { encoding: 'utf8' });
  const ok = run(join(dir, 'p.cpuprofile'));
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, /written: .*p\.svg/);
  const bad = run(join(dir, 'bad.cpuprofile'));
  t.equal(bad.status, 1);
  t.match(bad.stderr, /^flame-graph: .*bad\.cpuprofile: .*JSON/);
  t.equal(bad.stderr.trim().split('\n').length, 1, 'one line');
  t.equal(run().status, 2, 'no file: usage, exit 2');
  writeFileSync(join(dir, 'idle.cpuprofile'), JSON.stringify({ ...profile, samples: [4, 4] }));
  t.match(run(join(dir, 'idle.cpuprofile')).stderr, /no busy sample/);
});
