/**
 * The admin console: one self-contained page (no build step, no external assets) on the admin
 * listener's `/`. It shows the workload identity and certificate expiry, request rates, token
 * cache hit ratios and the live security events (Server-Sent Events from /console/events).
 * Every value from the sidecar is inserted as text, never as HTML.
 */
import { createHash } from 'node:crypto';

export const CONSOLE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Warden console</title>
<style>
  :root { color-scheme: light dark; --muted: #777; --warn: #b7791f; --error: #c53030; --ok: #2f855a; }
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; padding: 1rem 1.5rem; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1rem; margin: 0 0 .5rem; }
  .sub { color: var(--muted); margin-bottom: 1rem; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(16rem, 1fr)); gap: .8rem; margin-bottom: 1rem; }
  .card { border: 1px solid #8884; border-radius: 8px; padding: .7rem .9rem; }
  .big { font-size: 1.6rem; font-weight: 600; }
  table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #8883; vertical-align: top; }
  th { font-weight: 600; color: var(--muted); } .sev-warn { color: var(--warn); } .sev-error { color: var(--error); }
  .mono { font-family: ui-monospace, monospace; font-size: 12.5px; } .muted { color: var(--muted); }
  #live { font-size: 12px; } #live.on { color: var(--ok); }
</style>
</head>
<body>
<h1>Warden <span id="service" class="muted"></span></h1>
<div class="sub"><span id="version"></span> · up <span id="uptime">–</span> · events <span id="live">connecting…</span></div>
<div class="cards">
  <div class="card"><h2>Identity</h2><div id="identity" class="mono">–</div><div id="expiry" class="big">–</div><div id="renewal" class="muted"></div></div>
  <div class="card"><h2>Requests</h2><div id="rate" class="big">–</div><div id="classes" class="muted">–</div></div>
  <div class="card"><h2>Token caches</h2><table id="caches"><tbody><tr><td class="muted">no token translation</td></tr></tbody></table></div>
  <div class="card"><h2>Security events</h2><div id="event-total" class="big">0</div><div id="event-names" class="muted"></div></div>
</div>
<h2>Live security events</h2>
<table id="events"><thead><tr><th>time</th><th>event</th><th>route</th><th>client</th><th>rule</th><th>detail</th></tr></thead><tbody></tbody></table>
<script>
  const $ = (id) => document.getElementById(id);
  const text = (el, value) => { el.textContent = value; return el; };
  const duration = (s) => s >= 86400 ? Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h'
    : s >= 3600 ? Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min'
    : s >= 60 ? Math.floor(s / 60) + ' min ' + (s % 60) + ' s' : s + ' s';
  let previous;
  async function refresh() {
    let st;
    try { st = await (await fetch('/console/status', { cache: 'no-store' })).json(); } catch { return; }
    text($('service'), st.service); text($('version'), 'v' + st.version); text($('uptime'), duration(st.uptimeSeconds));
    if (st.identity) {
      text($('identity'), st.identity.spiffeId);
      text($('expiry'), 'expires in ' + duration(st.identity.secondsToExpiry));
      text($('renewal'), st.identity.nextRenewalAt ? 'renews at ' + new Date(st.identity.nextRenewalAt).toLocaleTimeString() : '');
    } else { text($('identity'), 'no mesh identity (file certificate)'); text($('expiry'), '–'); }
    const now = Date.now();
    if (previous) {
      const rate = (st.requests.total - previous.total) / ((now - previous.at) / 1000);
      text($('rate'), rate.toFixed(1) + ' req/s');
    } else text($('rate'), st.requests.total + ' requests');
    previous = { total: st.requests.total, at: now };
    text($('classes'), Object.entries(st.requests.byClass).map(([k, v]) => k + ': ' + v).join(' · ') || 'none yet');
    const caches = $('caches').tBodies[0];
    const entries = Object.entries(st.caches);
    if (entries.length) {
      caches.replaceChildren(...entries.map(([name, c]) => {
        const tr = document.createElement('tr');
        tr.append(text(document.createElement('td'), name),
          text(document.createElement('td'), c.ratio === null ? '–' : (c.ratio * 100).toFixed(1) + ' % hits'),
          text(document.createElement('td'), c.lookups + ' lookups'));
        return tr;
      }));
    }
    const counts = Object.entries(st.events);
    text($('event-total'), counts.reduce((n, [, v]) => n + v, 0));
    text($('event-names'), counts.sort((a, b) => b[1] - a[1]).slice(0, 4).map(([k, v]) => k + ' ' + v).join(' · '));
  }
  refresh(); setInterval(refresh, 2000);

  const body = $('events').tBodies[0];
  const source = new EventSource('/console/events');
  source.onopen = () => { text($('live'), 'live').className = 'on'; };
  source.onerror = () => { text($('live'), 'reconnecting…').className = ''; };
  source.addEventListener('security', (message) => {
    const e = JSON.parse(message.data);
    const a = e.attributes || {};
    const tr = document.createElement('tr');
    tr.className = 'sev-' + e.severity;
    tr.dataset.event = e.name;
    for (const value of [new Date(e.time).toLocaleTimeString(), e.name, a['http.route'] || '', a['client.address'] || a['warden.peer.id'] || '',
      a['warden.rule'] || a['warden.code'] || '', a['warden.detail'] || (a['http.request.method'] ? a['http.request.method'] + ' ' + (a['url.path'] || '') : '')]) {
      tr.append(text(document.createElement('td'), String(value)));
    }
    tr.children[1].className = 'mono';
    body.prepend(tr);
    while (body.rows.length > 200) body.deleteRow(-1);
  });
</script>
</body>
</html>
`;

/** The page's one inline script, allowed by hash; nothing else runs, loads or frames it. */
const SCRIPT = /<script>([\s\S]*)<\/script>/.exec(CONSOLE_PAGE)?.[1] ?? '';
export const CONSOLE_CSP = [
  "default-src 'none'",
  `script-src 'sha256-${createHash('sha256').update(SCRIPT).digest('base64')}'`,
  "style-src 'unsafe-inline'",
  "connect-src 'self'",
  "frame-ancestors 'none'",
].join('; ');
