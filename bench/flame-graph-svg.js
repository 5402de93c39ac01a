// A flame graph of a V8 .cpuprofile (what `node --cpu-prof` writes) as one self-contained SVG:
// each box is a function on a call path, as wide as the samples taken in it and in what it called,
// its callers below it. Boxes are coloured by where the code lives (Warden's dist/, Node's own
// modules, npm packages, V8 and native entries), so Warden's share reads at a glance. Idle samples
// are left out: the width is the process's busy time. Hover a box for its name, file and share.
// No library does this offline for today's .cpuprofile format (thlorenz/flamegraph reads the old
// one; speedscope and flamebearer render in a browser), and the layout is a few lines.

import { indexCpuProfile } from './lib.js';

const KINDS = {
  warden: { label: 'Warden (dist/)', hue: 28 },
  node: { label: 'Node.js (node:*)', hue: 210 },
  npm: { label: 'npm packages', hue: 120 },
  script: { label: 'other scripts', hue: 280 },
  native: { label: 'V8, native, wasm', hue: 0, grey: true },
};

/** Where a frame's code lives, and a short name for it. */
export function placeOf(callFrame) {
  const url = callFrame.url ?? '';
  const fn = callFrame.functionName || '(anonymous)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return { kind: 'npm', name: fn, where: `npm:${pkg[1]}` };
  const dist = /\/dist\/(.*)$/.exec(url);
  if (dist) return { kind: 'warden', name: fn, where: `dist/${dist[1]}` };
  if (url.startsWith('node:')) return { kind: 'node', name: fn, where: url };
  // WebAssembly: undici's HTTP parser (llhttp), named by V8 by index only.
  if (url.startsWith('wasm:')) return { kind: 'native', name: fn, where: 'wasm' };
  if (url) return { kind: 'script', name: fn, where: url.replace(/^file:\/\/.*\/bench\//, 'bench/') };
  return { kind: 'native', name: fn, where: '' };
}

/** The functions in which Node dispatches an HTTP request: node:http's, and node:http2's. */
export const REQUEST_DISPATCH = ['parserOnIncoming', 'onSessionHeaders'];

/**
 * The call tree with the busy time per box, in µs: `{ frame, self, total, children }`, children
 * widest first. A sample counts for the time since the one before it (as DevTools counts it).
 * Samples in `(idle)` are dropped; a box with no busy sample below it is left out. With
 * `from` (function names), the samples before the first one taken inside one of them are dropped
 * too: `REQUEST_DISPATCH` leaves out the start-up (module loading, config and schema compilation).
 */
export function busyTree(profile, { from } = {}) {
  if (!Array.isArray(profile?.nodes) || !Array.isArray(profile?.samples)) {
    throw new TypeError('not a V8 CPU profile: it needs "nodes" and "samples" arrays');
  }
  const { byId, parent } = indexCpuProfile(profile);
  const inside = (id) => {
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) if (from.includes(byId.get(cur).callFrame.functionName)) return true;
    return false;
  };
  const first = from === undefined ? 0 : profile.samples.findIndex(inside);
  if (first < 0) throw new RangeError(`no sample was taken inside ${from.join(' or ')}`);
  const self = new Map();
  const deltas = profile.timeDeltas ?? [];
  for (let i = first; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + Math.max(0, deltas[i] ?? 0));
  }
  const root = profile.nodes[0];
  // Iterative post-order: a deep stack must not overflow this one.
  const built = new Map();
  const stack = [[root, false]];
  while (stack.length > 0) {
    const [node, visited] = stack.pop();
    if (!visited) {
      stack.push([node, true]);
      for (const c of node.children ?? []) if (byId.has(c)) stack.push([byId.get(c), false]);
      continue;
    }
    const idle = node.callFrame.functionName === '(idle)';
    const children = (node.children ?? [])
      .map((c) => built.get(c))
      .filter((c) => c !== undefined && c.total > 0)
      .sort((a, b) => b.total - a.total);
    const mine = idle ? 0 : (self.get(node.id) ?? 0);
    const total = mine + children.reduce((s, c) => s + c.total, 0);
    built.set(node.id, { frame: node.callFrame, self: mine, total, children });
  }
  return built.get(root.id);
}

const escapeXml = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

/** A stable shade per function name, so neighbouring boxes of one kind stay apart. */
function colourOf(kind, name) {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  const k = KINDS[kind];
  const light = 55 + (h % 20);
  return k.grey ? `hsl(0,0%,${light + 5}%)` : `hsl(${k.hue + (h % 16) - 8},70%,${light}%)`;
}

/**
 * The SVG text of `profile`'s flame graph. `width` in pixels; boxes narrower than `minWidth`
 * pixels are left out (their time stays in their caller's box); `from` as in busyTree. With
 * `requests`, times are shown per request; `fullScale` (µs, per request with `requests`) is the
 * time the full width stands for, by default the busy time: two graphs drawn to one scale
 * compare by their widths.
 */
export function flameGraphSvg(
  profile,
  { title = 'CPU flame graph', width = 1200, frameHeight = 16, minWidth = 1, from, requests, fullScale } = {},
) {
  const tree = busyTree(profile, { from });
  if (tree === undefined || tree.total === 0) throw new RangeError('the profile has no busy sample');
  const per = requests ?? 1;
  const unit = requests === undefined ? 'ms' : 'µs per request';
  const shown = (us) => (requests === undefined ? us / 1000 : us / per).toFixed(requests === undefined ? 3 : 2);
  const boxes = [];
  let depthMax = 0;
  const pending = [{ node: tree, x: 0, depth: 0 }];
  const scale = width / Math.max(tree.total, (fullScale ?? 0) * per);
  while (pending.length > 0) {
    const { node, x, depth } = pending.pop();
    if (node.total * scale < minWidth) continue;
    boxes.push({ node, x, depth });
    depthMax = Math.max(depthMax, depth);
    let cx = x;
    for (const c of node.children) {
      pending.push({ node: c, x: cx, depth: depth + 1 });
      cx += c.total;
    }
  }
  const top = 44;
  const height = top + (depthMax + 1) * frameHeight + 8;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fdfdf8"/>`,
    `<text x="6" y="16" font-size="14">${escapeXml(title)}</text>`,
    `<text x="6" y="34">busy ${shown(tree.total)} ${unit}; width = time (full width ${shown(width / scale)}); callers below, callees above</text>`,
  ];
  let lx = width - 6;
  for (const kind of Object.keys(KINDS).reverse()) {
    const label = KINDS[kind].label;
    lx = Math.round(lx - label.length * 6.6 - 22);
    out.push(
      `<rect x="${lx}" y="24" width="12" height="12" fill="${colourOf(kind, '')}"/><text x="${lx + 16}" y="34">${escapeXml(label)}</text>`,
    );
  }
  for (const { node, x, depth } of boxes) {
    const place = depth === 0 ? { kind: 'native', name: 'all', where: '' } : placeOf(node.frame);
    const px = x * scale;
    const w = node.total * scale;
    const y = height - 8 - (depth + 1) * frameHeight;
    const share = ((100 * node.total) / tree.total).toFixed(2);
    const line = place.where ? ` ${place.where}:${(node.frame.lineNumber ?? -1) + 1}` : '';
    const tip = `${place.name}${line}: ${shown(node.total)} ${unit} (${share} % of the busy time), ${shown(node.self)} in itself`;
    const chars = Math.floor((w - 4) / 6.6);
    const text = chars >= 3 ? (place.name.length <= chars ? place.name : `${place.name.slice(0, chars - 2)}..`) : '';
    out.push(
      `<g><title>${escapeXml(tip)}</title><rect x="${px.toFixed(2)}" y="${y}" width="${w.toFixed(2)}" height="${frameHeight - 1}" fill="${colourOf(place.kind, place.name)}" rx="1"/>` +
        (text ? `<text x="${(px + 2).toFixed(2)}" y="${y + frameHeight - 4}">${escapeXml(text)}</text>` : '') +
        '</g>',
    );
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
