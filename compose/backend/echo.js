// A demo backend: answers with what it received (method, path, headers — including the token the
// sidecar minted). It listens on 127.0.0.1 only: the sidecar in the same network namespace is the
// only way in.
const { createServer } = require('node:http');

const name = process.env.SERVICE_NAME ?? 'backend';
createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.stringify({ service: name, method: req.method, url: req.url, headers: req.headers, bytes: Buffer.concat(chunks).length });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}).listen(8080, '127.0.0.1', () => console.log(`${name} backend on 127.0.0.1:8080`));
