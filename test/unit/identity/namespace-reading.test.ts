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
    // NFKC (Django's normalize_username, PRECIS): full-width, small form and astral compatibility letters.
    '\uff43lient:web',
    'client\uff1aweb',
    'client\ufe55web',
    '\uff23\uff2c\uff29\uff25\uff2e\uff34\uff1ax',
    '\u{1d41c}\u{1d425}\u{1d422}\u{1d41e}\u{1d427}\u{1d42d}:x',
    'clI\u0307ent:x',
    ' \uff43lient:x',
    '\u3000client:x',
  ])
    t.ok(client(name), `${escape(name)}: in the namespace`);
  for (const name of [
    '',
    'clien',
    'client',
    'clients:x',
    'x client:x',
    '\u200bclient:x',
    'cl\u0131ent',
    'alice',
    'client\u0338:x',
    '\uff43lient',
    'c\u0327lient:x',
  ])
    t.notOk(client(name), `${escape(name)}: not`);
  const spiffe = namespaceReading('spiffe:');
  t.ok(spiffe('spi\ufb00e://td/x'), 'a ligature folds to the letters it joins');
  t.ok(spiffe('SPIFFE://td/x'));
  t.ok(spiffe('sp\u0130ffe://td/x'), 'dotted İ: i to Java');
  t.notOk(spiffe('spiffe-like'));
  t.ok(spiffe('\uff53piffe://example.org/ns/a/sa/b'), 'full-width s: spiffe: under NFKC');
  t.ok(spiffe('spiffe\ufe55//td/x'), 'small colon');
  t.ok(spiffe(`\uff53piffe://${'x'.repeat(1 << 20)}`), 'a long name: only its start is normalised');
});

t.test('only a name that starts with the prefix once normalised is in the namespace', async (t) => {
  const client = namespaceReading('client:');
  // Marks after the window's end could compose only with the prefix's last character, and `:` takes none.
  const long = `client:${'\u0301'.repeat(100)}`;
  t.equal(client(long), long.normalize('NFKC').startsWith('client:'));
  t.throws(() => namespaceReading('client'), /must end in ":"/);
});

t.test('the prefix must be given folded', async (t) => {
  t.throws(() => namespaceReading('Client:'));
});
