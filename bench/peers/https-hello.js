// The smallest HTTPS peer: node:https answering every request itself with a tiny JSON, no upstream.
// One hop where a proxy makes two: what the host's scheduling alone puts in a tail (bench/pingpong.js).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const [port, certFile, keyFile] = process.argv.slice(2);
createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end('{"ok":true}');
}).listen(Number(port), '127.0.0.1');
