// The soak's load generator, in a process of its own on the load cores: POSTs at a fixed rate
// (open loop: a slow answer does not slow the sending, so latency counts from when a request was
// due, not when it left — no coordinated omission), over mTLS with the client certificate, h1 or h2,
// rotating through the given tokens and varying the body's free text. Reports one record per
// window over IPC, then { type: 'done' }.
// Each window also gives the latency from when a request left (`sent_*`) and the sender's lag
// (`lag_*`: left − due). The sender wakes every millisecond, so a request waits up to 1 ms plus
// the timer's lateness before it leaves; on a shared core that lag is the client's, and it is in
// the latencies from due (the conservative figure) but not in those from sent.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { latencyQuantiles, quantile, round3 } from '../lib.js';

process.once('message', async (o) => {
  const agent = new Agent({
    connections: o.connections,
    allowH2: o.h2,
    pipelining: 1,
    connect: { ca: readFileSync(o.ca), cert: readFileSync(o.cert), key: readFileSync(o.key), servername: 'localhost' },
  });
  const started = performance.now();
  const endAt = started + o.seconds * 1000;
  const total = Math.floor(o.seconds * o.rate);
  let sent = 0;
  let inFlight = 0;
  const emptyWindow = () => ({ latencies: [], sentLatencies: [], lags: [], ok: 0, errors: 0, statuses: {}, overload: 0 });
  let window = emptyWindow();
  let windowStart = started;
  let warmedUp = false;

  const flush = (now, warmup = false) => {
    const w = window;
    window = emptyWindow();
    const sorted = Float64Array.from(w.latencies).sort();
    const sent = Float64Array.from(w.sentLatencies).sort();
    const lags = Float64Array.from(w.lags).sort();
    process.send({
      type: 'window',
      warmup,
      t: round3((now - started) / 1000),
      seconds: round3((now - windowStart) / 1000),
      completed: sorted.length,
      ok: w.ok,
      errors: w.errors,
      overload: w.overload,
      statuses: w.statuses,
      ...latencyQuantiles(sorted),
      max_ms: round3(sorted.length ? sorted[sorted.length - 1] : 0),
      ...latencyQuantiles(sent, 'sent_'),
      lag_p50_ms: round3(quantile(lags, 0.5)),
      lag_p99_ms: round3(quantile(lags, 0.99)),
    });
    windowStart = now;
  };

  const fire = (due, i) => {
    inFlight++;
    const sentAt = performance.now();
    const body = JSON.stringify({
      customer: `Customer ${i % 997}, purchasing department`,
      note: `Order ${i}: deliver to the loading dock at the rear of the building; call ahead.`,
      items: [
        { sku: `SKU-${1000 + (i % 50)}`, quantity: 1 + (i % 9), price: 9.99 },
        { sku: 'SKU-2000', quantity: 2 },
      ],
    });
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${o.tokens[i % o.tokens.length]}` };
    request(o.url, { dispatcher: agent, method: 'POST', headers, body, headersTimeout: 10_000, bodyTimeout: 10_000 })
      .then(async (res) => {
        await res.body.dump();
        window.statuses[res.statusCode] = (window.statuses[res.statusCode] ?? 0) + 1;
        if (res.statusCode === 200) window.ok++;
        else window.errors++;
      })
      .catch((err) => {
        const code = err.code ?? err.name ?? 'error';
        window.statuses[code] = (window.statuses[code] ?? 0) + 1;
        window.errors++;
      })
      .finally(() => {
        inFlight--;
        const now = performance.now();
        window.latencies.push(now - due);
        window.sentLatencies.push(now - sentAt);
        window.lags.push(sentAt - due);
      });
  };

  // Every tick sends what is due by now; at most maxInFlight outstanding (beyond that the sidecar
  // is not keeping up, and what was due counts as overload instead of piling up without bound).
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      // Request k is due at k / rate: by now, those up to floor(elapsed × rate) are.
      const due = Math.min(total, Math.floor(((now - started) / 1000) * o.rate) + 1);
      while (sent < due) {
        const dueAt = started + (sent * 1000) / o.rate;
        if (inFlight >= o.maxInFlight) window.overload++;
        else fire(dueAt, sent);
        sent++;
      }
      // An optional warm-up (connections, TLS handshakes, caches) is reported as a window of its own.
      if (!warmedUp && now - started >= (o.warmup ?? 0) * 1000) {
        warmedUp = true;
        if (o.warmup) flush(now, true);
      }
      if (now - windowStart >= o.window * 1000) flush(now);
      if (now >= endAt) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  const drainBy = performance.now() + 15_000;
  while (inFlight > 0 && performance.now() < drainBy) await new Promise((r) => setTimeout(r, 20));
  flush(performance.now());
  await agent.close();
  process.send({ type: 'done', sent, unanswered: inFlight });
  process.exit(0);
});
process.send({ type: 'ready' });
