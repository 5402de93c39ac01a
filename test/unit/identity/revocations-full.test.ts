/**
 * A full list of revoked tokens refuses the next revocation (ERR_REVOCATIONS_FULL) rather than drop
 * one early: the token it was meant for keeps working. That refusal raised no security event; the
 * admin listener has no rescue, so the runtime raises it where it refuses.
 */
import t from 'tap';
import { parseSidecarConfig } from '../../../src/config/load.js';
import { WardenError } from '../../../src/errors.js';
import { createTokenRuntime } from '../../../src/identity/token-runtime.js';
import { TokenDenylist } from '../../../src/identity/token-denylist.js';
import { createEventBus, type EventAttributes, type EventName } from '../../../src/telemetry/events.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';
import { testConfigYaml } from '../../support/sidecar.js';
import { startForgedIssuer } from '../../support/token-forge.js';

t.test('a revocation refused because the list is full raises warden.token.revocation_refused', async (t) => {
  const forged = await startForgedIssuer(t);
  const { config } = parseSidecarConfig(
    's.yaml',
    await testConfigYaml('http://127.0.0.1:1', { tokens: { issuers: [{ id: 'corp', issuer: forged.issuer, audience: ['api'] }] } }),
  );
  const raised: (EventAttributes & { name: EventName })[] = [];
  const runtime = await createTokenRuntime(config.tokens!, {
    serviceName: 'svc',
    selfId: undefined,
    events: createEventBus([(name, _severity, attributes) => raised.push({ name, ...attributes })]),
    logger: createLogger({ level: 'silent' }),
    metrics: createMetrics({ serviceName: 'svc', processMetrics: false }).tokens,
    denylist: new TokenDenylist(1),
  });
  t.teardown(() => runtime.close());
  const exp = Math.floor(Date.now() / 1000) + 600;
  const sign = (sub: string) => forged.sign({ iss: forged.issuer, aud: 'api', sub, exp });

  await runtime.revoke(await sign('first'));
  const refused = await runtime.revoke(await sign('second')).catch((err: unknown) => err);
  t.ok(refused instanceof WardenError && refused.code === 'ERR_REVOCATIONS_FULL', 'the second is refused: the list holds one');
  const events = raised.filter((e) => e.name !== 'warden.token.revoked');
  t.match(
    events,
    [
      {
        name: 'warden.token.revocation_refused',
        'warden.code': 'ERR_REVOCATIONS_FULL',
        'warden.rule': 'tokens.revocations',
        'warden.token.hash': /^[0-9a-f]{16}$/,
      },
    ],
    'raised, with the token’s hash',
  );
  t.equal(events.length, 1, 'once');
});
