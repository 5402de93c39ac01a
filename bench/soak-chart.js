// The soak's chart: latency percentiles, throughput and errors per window, RSS and heap over time,
// as one self-contained SVG; pngOf renders it with headless Chromium when it is installed.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';

const W = 960;
const PANEL_H = 240;
const M = { left: 70, right: 150, top: 36, bottom: 34 };
const COLORS = ['#1f77b4', '#ff7f0e', '#d62728', '#2ca02c', '#9467bd'];

const esc = (s) => String(s).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]);

/** One panel: series of [x, y] points sharing axes, with a legend on the right. */
function panel(y0, title, unit, series, xMax) {
  const w = W - M.left - M.right;
  const h = PANEL_H - M.top - M.bottom;
  const yMax = Math.max(1e-9, ...series.flatMap((s) => s.points.map((p) => p[1]))) * 1.1;
  const sx = (x) => M.left + (x / Math.max(xMax, 1e-9)) * w;
  const sy = (y) => y0 + M.top + h - (y / yMax) * h;
  const out = [`<text x="${M.left}" y="${y0 + 22}" font-size="15" font-weight="bold">${esc(title)}</text>`];
  out.push(`<rect x="${M.left}" y="${y0 + M.top}" width="${w}" height="${h}" fill="none" stroke="#999"/>`);
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    const y = sy(v);
    out.push(`<line x1="${M.left}" x2="${M.left + w}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${y + 4}" font-size="11" text-anchor="end">${esc(v < 10 ? v.toFixed(2) : v.toFixed(0))}</text>`);
  }
  for (let i = 0; i <= 6; i++) {
    const x = (xMax * i) / 6;
    out.push(`<text x="${sx(x)}" y="${y0 + M.top + h + 16}" font-size="11" text-anchor="middle">${x.toFixed(0)} s</text>`);
  }
  out.push(`<text x="14" y="${y0 + M.top + h / 2}" font-size="11" transform="rotate(-90 14 ${y0 + M.top + h / 2})">${esc(unit)}</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join('');
    if (d) out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.8"/>`);
    out.push(`<rect x="${W - M.right + 14}" y="${y0 + M.top + i * 18}" width="12" height="3" fill="${color}"/>`);
    out.push(`<text x="${W - M.right + 32}" y="${y0 + M.top + i * 18 + 5}" font-size="12">${esc(s.name)}</text>`);
  });
  return out.join('\n');
}

/** The chart of a soak result (bench/soak.js). */
export function soakSvg(result) {
  const { windows, memory } = result;
  const xMax = Math.max(...windows.map((w) => w.t), ...memory.map((m) => m.t), 1);
  const at = (key) => windows.map((w) => [w.t, w[key]]);
  const panels = [
    panel(
      40,
      'Latency per window (from when each request was due)',
      'ms',
      [
        { name: 'p50', points: at('p50_ms') },
        { name: 'p99', points: at('p99_ms') },
        { name: 'p99.9', points: at('p999_ms') },
      ],
      xMax,
    ),
    panel(
      40 + PANEL_H,
      'Throughput and errors per window',
      'requests/s',
      [
        { name: 'answered 200', points: windows.map((w) => [w.t, w.ok / w.seconds]) },
        { name: 'errors', points: windows.map((w) => [w.t, (w.errors + w.overload) / w.seconds]) },
      ],
      xMax,
    ),
    panel(
      40 + 2 * PANEL_H,
      'Sidecar memory',
      'MiB',
      [
        { name: 'RSS', points: memory.map((m) => [m.t, m.rss_mib]) },
        { name: 'heap used', points: memory.filter((m) => m.heap_mib !== undefined).map((m) => [m.t, m.heap_mib]) },
      ],
      xMax,
    ),
  ];
  const s = result.settings;
  const verdict = result.pass ? 'PASS' : `FAIL: ${result.failures.join('; ')}`;
  const head = `Warden soak ${result.date}: ${s.rate} req/s for ${s.seconds} s, ${s.h2 ? 'h2' : 'HTTPS/1.1'}, full pipeline — ${verdict}`;
  const height = 40 + 3 * PANEL_H + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${M.left}" y="24" font-size="14">${esc(head)}</text>`,
    ...panels,
    '</svg>',
  ].join('\n');
}

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** Renders an SVG file to PNG with headless Chromium; false when none is installed. */
export function pngOf(svgFile, pngFile, width, height) {
  const browser = CHROMIUM.find((b) => existsSync(b));
  if (!browser) return false;
  execFileSync(
    browser,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--hide-scrollbars',
      `--window-size=${width},${height}`,
      `--screenshot=${pngFile}`,
      `file://${svgFile}`,
    ],
    { stdio: 'ignore', timeout: 60_000 },
  );
  return existsSync(pngFile);
}

export function writeChart(result, svgFile, pngFile) {
  const svg = soakSvg(result);
  writeFileSync(svgFile, svg);
  const [, w, h] = /width="(\d+)" height="(\d+)"/.exec(svg);
  return pngOf(svgFile, pngFile, Number(w), Number(h));
}
