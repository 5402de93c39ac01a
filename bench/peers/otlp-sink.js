// A stand-in OpenTelemetry collector for the telemetry bench: accepts OTLP/HTTP on /v1/* and
// answers 200 at once, counting requests and bytes per signal (reported over IPC on demand).
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 4318);
const seen = {};
createServer((req, res) => {
  const signal = (req.url ?? '').split('/').pop();
  const s = (seen[signal] ??= { requests: 0, bytes: 0 });
  s.requests++;
  req.on('data', (c) => (s.bytes += c.length));
  req.on('end', () => {
    res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf' });
    res.end();
  });
}).listen(port, '127.0.0.1', () => process.send?.('ready'));
process.on('message', () => process.send?.({ type: 'seen', seen }));
