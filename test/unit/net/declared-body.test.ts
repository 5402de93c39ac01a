import t from 'tap';
import { declaresBody } from '../../../src/net/declared-body.js';

t.test('a body is declared by a Content-Length above 0 or a Transfer-Encoding', async (t) => {
  t.notOk(declaresBody({}), 'neither: no body');
  t.notOk(declaresBody({ 'content-length': '0' }));
  t.notOk(declaresBody({ 'content-length': '00' }), '00 is none');
  t.ok(declaresBody({ 'content-length': '1' }));
  t.ok(declaresBody({ 'transfer-encoding': 'chunked' }));
  t.notOk(
    declaresBody({ 'content-length': '0', 'transfer-encoding': 'chunked' }),
    'Content-Length decides when both are sent (the framing check refuses them together)',
  );
});
