// The reference: a bare Node reverse proxy (node:https for HTTP/1.1, node:http2 for h2, undici Pool
// upstream) with hop-by-hop hygiene and nothing else. What Warden's overhead is measured against.
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as https } from 'node:https';
import { createSecureServer as h2 } from 'node:http2';
import { Pool } from 'undici';

const [h1Port, h2Port, upstream, certFile, keyFile, clientCaFile] = process.argv.slice(2);
const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
// mTLS variant (bench/handshake.js): client certificates required, chaining to this CA.
if (clientCaFile) Object.assign(tls, { ca: readFileSync(clientCaFile), requestCert: true, rejectUnauthorized: true });
const pool = new Pool(upstream, { connections: 128 });
const HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-connection',
  'host',
  'http2-settings',
]);

function proxy(req, res) {
  const headers = {};
  for (const k in req.headers) if (!HOP.has(k) && k[0] !== ':') headers[k] = req.headers[k];
  headers.host = req.headers.host ?? req.headers[':authority'];
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  // A client that goes away must release its upstream connection, or the pool leaks one per abort.
  // undici takes an EventEmitter as the signal: an AbortController per request cost ~35 % of rps here.
  const abort = new EventEmitter();
  res.once('close', () => abort.emit('abort'));
  pool
    .stream({ method: req.method, path: req.url, headers, body: hasBody ? req : null, signal: abort }, ({ statusCode, headers: h }) => {
      for (const k of HOP) delete h[k];
      res.writeHead(statusCode, h);
      return res;
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
}

// A clean exit on SIGTERM (bench.stop), so that --cpu-prof writes its profile (bench/side-profile.js).
process.on('SIGTERM', () => process.exit(0));

https(tls, proxy).listen(Number(h1Port), '127.0.0.1');
h2(tls, proxy).listen(Number(h2Port), '127.0.0.1', () => process.send?.('ready'));
