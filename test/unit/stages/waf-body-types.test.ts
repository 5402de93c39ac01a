import t from 'tap';
import { isWafBufferedBody } from '../../../src/stages/waf.js';

t.test('the body types the waf reads: text formats by whole subtype token, never binary ones', async (t) => {
  for (const type of [
    'application/json',
    'application/x-json',
    'application/vnd.api+json',
    'application/merge-patch+json',
    'application/x-ndjson',
    'application/jsonl',
    'application/csp-report',
    'application/graphql',
    'application/javascript',
    'application/x-yaml',
    'application/sql',
    'text/csv',
    'application/xml',
    'application/x-www-form-urlencoded',
  ])
    t.ok(isWafBufferedBody(type), `${type}: read`);
  for (const type of [
    'application/octet-stream',
    'application/vnd.sqlite3',
    'application/x-sqlite3',
    'application/ubjson',
    'application/pdf',
    'application/zip',
    'application/vnd.oasis.opendocument.text',
    'image/png',
  ])
    t.notOk(isWafBufferedBody(type), `${type}: streamed unread`);
});
