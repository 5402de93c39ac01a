import t from 'tap';
import { namespaceReading } from '../../../src/identity/namespace-reading.js';

t.test('a name in a namespace as a backend that trims and case-folds reads it', async (t) => {
  const client = namespaceReading('client:');
  for (const name of [
    'client:shop-web',
    'client:',
    ' client:x',
    '\t\r\n client:x',
    '\u0000client:x',
    '\u0085client:x',
    '\u00a0client:x',
    '\u2028client:x',
    '\ufeffclient:x',
    'Client:x',
    'CLIENT:x',
    'cl\u0131ent:x',
    'cl\u0130ent:shop-web',
    'CL\u0130ENT:x',
  ])
    t.ok(client(name), `${escape(name)}: in the namespace`);
  for (const name of ['', 'clien', 'client', 'clients:x', 'x client:x', '\u200bclient:x', 'cl\u0131ent', 'alice'])
    t.notOk(client(name), `${escape(name)}: not`);
  const spiffe = namespaceReading('spiffe:');
  t.ok(spiffe('spi\ufb00e://td/x'), 'a ligature folds to the letters it joins');
  t.ok(spiffe('SPIFFE://td/x'));
  t.ok(spiffe('sp\u0130ffe://td/x'), 'dotted İ: i to Java');
  t.notOk(spiffe('spiffe-like'));
});

t.test('the prefix must be given folded', async (t) => {
  t.throws(() => namespaceReading('Client:'));
});
