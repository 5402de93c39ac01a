// Where a sampled allocation profile (bench/peers/alloc-sampler.js) allocates: bytes per request by
// the function that allocated, and by the nearest Warden function on its stack (a `dist/` frame:
// Node's and the libraries' allocations charged to the Warden code that called them).

/** `{ byFunction, byWardenFrame }`: the top `top` of each, bytes per request, largest first. */
export function allocationSites(profile, requests, top = 15) {
  const byFunction = new Map();
  const byWardenFrame = new Map();
  const walk = (node, warden) => {
    const f = node.callFrame;
    const here = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${f.lineNumber + 1}`;
    const nearest = f.url.includes('/dist/') ? here : warden;
    if (node.selfSize > 0) {
      byFunction.set(here, (byFunction.get(here) ?? 0) + node.selfSize);
      const key = nearest ?? '(no Warden frame)';
      byWardenFrame.set(key, (byWardenFrame.get(key) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, nearest);
  };
  walk(profile.head, undefined);
  const rows = (m) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([site, bytes]) => ({ site, bytes_per_request: Math.round(bytes / requests) }));
  return { byFunction: rows(byFunction), byWardenFrame: rows(byWardenFrame) };
}
