// The benchmark backend: plain HTTP on loopback, a tiny JSON answer, request bodies read and counted.
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 8080);
const body = Buffer.from('{"ok":true,"service":"bench"}');

createServer((req, res) => {
  let bytes = 0;
  req.on('data', (c) => (bytes += c.length));
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length, 'x-body-bytes': String(bytes) });
    res.end(body);
  });
}).listen(port, '127.0.0.1', () => process.send?.('ready'));
