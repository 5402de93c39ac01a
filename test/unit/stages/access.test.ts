import t from 'tap';
import { WardenError } from '../../../src/errors.js';
import type { RequestContext } from '../../../src/pipeline/stage.js';
import { createAccessStage, isAccessNoop } from '../../../src/stages/access.js';
import { testContext } from '../../support/request-context.js';

function ctx(clientAddress: string): RequestContext {
  return testContext({ clientAddress });
}

const verdict = (stage: ReturnType<typeof createAccessStage>, address: string) => stage.run(ctx(address)) as WardenError | undefined;

t.test('an allow-everything config is a no-op the plan leaves out', async (t) => {
  t.ok(isAccessNoop({ action: 'allow', clients: { allow: [], deny: [] } }));
  t.notOk(isAccessNoop({ action: 'deny', clients: { allow: [], deny: [] } }));
  t.notOk(isAccessNoop({ action: 'allow', clients: { allow: ['10.0.0.0/8'], deny: [] } }));
});

t.test('route deny refuses every client', async (t) => {
  const stage = createAccessStage({ action: 'deny', clients: { allow: ['0.0.0.0/0'], deny: [] } });
  const v = verdict(stage, '127.0.0.1');
  t.ok(v instanceof WardenError);
  t.equal(v?.code, 'ERR_ACCESS_DENIED');
  t.equal(v?.status, 403);
  t.equal(v?.rule, 'access.action');
});

t.test('client allow list (IPv4, IPv6, v4-mapped) and deny list first', async (t) => {
  const stage = createAccessStage({
    action: 'allow',
    clients: { allow: ['10.0.0.0/8', '2001:db8::/32', '127.0.0.1'], deny: ['10.66.0.0/16'] },
  });
  t.equal(verdict(stage, '10.1.2.3'), undefined);
  t.equal(verdict(stage, '::ffff:10.1.2.3'), undefined, 'IPv4-mapped IPv6 matches the IPv4 rule');
  t.equal(verdict(stage, '2001:db8::1'), undefined);
  t.equal(verdict(stage, '127.0.0.1'), undefined);
  t.equal(verdict(stage, '10.66.1.1')?.rule, 'access.clients.deny', 'deny wins over a wider allow');
  t.equal(verdict(stage, '192.168.1.1')?.rule, 'access.clients.allow');
  t.equal(verdict(stage, '2001:db9::1')?.rule, 'access.clients.allow');
  t.equal(verdict(stage, 'not-an-ip')?.rule, 'access.clients.allow', 'garbage never matches an allow rule');
  // Repeated lookups come from the memo and must give the same answers.
  for (let i = 0; i < 3; i++) t.equal(verdict(stage, '192.168.1.1')?.rule, 'access.clients.allow');
});

t.test('deny list alone lets everyone else through', async (t) => {
  const stage = createAccessStage({ action: 'allow', clients: { allow: [], deny: ['192.0.2.0/24'] } });
  t.equal(verdict(stage, '192.0.2.9')?.code, 'ERR_ACCESS_DENIED');
  t.equal(verdict(stage, '198.51.100.1'), undefined);
});
