/**
 * Multipart request bodies as validation reads them, through the shared multipart reader
 * (src/threats/multipart-stream.ts): what it cannot read is a violation, not skipped.
 */
import t from 'tap';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { testOperation } from '../../support/operation.js';

const TYPE = 'multipart/form-data; boundary=b';
const validator = compileRequestValidator(
  testOperation({
    id: 'upload',
    method: 'PUT',
    pointer: '#/paths/~1x/put',
    requestBody: {
      content: {
        'multipart/form-data': {
          schema: { type: 'object', properties: { title: { type: 'string', maxLength: 5 }, note: { type: 'string', pattern: '^x*$' } } },
        },
      },
    },
  }),
  { unknownQuery: 'allow' },
);
const part = (name: string, value: string, headers = '') =>
  `--b\r\nContent-Disposition: form-data; name="${name}"\r\n${headers}\r\n${value}\r\n`;
const body = (...parts: string[]) => ({ body: Buffer.from(`${parts.join('')}--b--\r\n`) });

t.test('a valid body passes; the schema still applies', async (t) => {
  t.equal(await validator.body(TYPE, body(part('title', 'abc'))), undefined);
  t.match(await validator.body(TYPE, body(part('title', 'too long'))), { pointer: '/body/title' });
});

t.test('a part in base64 is a violation (the waf and the scan read it as sent)', async (t) => {
  const v = await validator.body(TYPE, body(part('title', Buffer.from('abc').toString('base64'), 'Content-Transfer-Encoding: base64\r\n')));
  t.match(v, { pointer: '/body', message: 'is not valid multipart/form-data' });
});

t.test('parts beyond the limit are refused, not dropped unvalidated', async (t) => {
  const many = Array.from({ length: 1000 }, (_, i) => part(`f${i}`, 'x'));
  t.equal(await validator.body(TYPE, body(...many)), undefined, '1 000 parts are read');
  // The 1 001st is the one a schema would have refused: busboy used to stop emitting before it.
  t.match(await validator.body(TYPE, body(...many, part('title', 'too long'))), { pointer: '/body' });
});

t.test('a field over 1 MiB is read whole, not cut to what busboy keeps by default', async (t) => {
  // Only the tail breaks the pattern: cut at busboy's default 1 MiB, the field would pass.
  t.equal(await validator.body(TYPE, body(part('note', 'x'.repeat(1_100_000)))), undefined);
  t.match(await validator.body(TYPE, body(part('note', `${'x'.repeat(1_100_000)}y`))), { pointer: '/body/note' });
});

t.test('a part busboy cannot read the Content-Disposition of is a violation, not skipped unvalidated', async (t) => {
  // busboy skipped it (the schema saw no title), PHP reads title = "too long".
  const hidden = `--b\r\nContent-Disposition: form-data; name="title";\r\n\r\ntoo long\r\n`;
  t.match(await validator.body(TYPE, body(part('note', 'x'), hidden)), { pointer: '/body', message: 'is not valid multipart/form-data' });
});
