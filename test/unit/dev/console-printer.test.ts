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

t.test('bidirectional controls and line separators from a caller are shown as \\u{NNNN}', async (t) => {
  const line = terminalLine({
    time: 0,
    event: 'warden.input.invalid',
    'warden.detail': 'user \u202eadmin\u202c \u2066x\u2069 \u200f a\u2028b\u2029c',
  });
  t.notOk(/[\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(line ?? ''), 'none left');
  t.match(line, /detail=user \\u\{202e\}admin\\u\{202c\} \\u\{2066\}x\\u\{2069\} \\u\{200f\} a\\u\{2028\}b\\u\{2029\}c/);
});
