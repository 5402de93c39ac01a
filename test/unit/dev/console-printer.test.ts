/**
 * `warden dev` prints requests and events to the operator's terminal: a value a caller chose (a
 * path, an event's detail) must not carry an escape sequence or a line break to it.
 */
import t from 'tap';
import { terminalLine } from '../../../src/dev/console-printer.js';

t.test('control characters from a caller are shown as \\xNN, never sent to the terminal', async (t) => {
  const line = terminalLine({
    time: 0,
    event: 'warden.input.invalid',
    'warden.detail': 'The _charset_ parameter names \u001b[2J\u001b[31mFAKE\nERROR forged line\u009b',
  });
  t.ok(line);
  t.notOk(
    [...(line ?? '')].some((c) => c < ' ' || (c >= '\u007f' && c <= '\u009f')),
    'no control character left',
  );
  t.match(line, /detail=The _charset_ parameter names \\x1b\[2J\\x1b\[31mFAKE\\x0aERROR forged line\\x9b/);

  const request = terminalLine({
    time: 0,
    msg: 'request',
    'http.request.method': 'GET',
    'url.path': '/a\rb',
    'http.route': 'r',
    'http.response.status_code': 200,
    'network.protocol.version': '1.1',
    duration_ms: 1,
  });
  t.match(request, /GET \/a\\x0db {2}route=r h1\.1 1 ms/);
});
