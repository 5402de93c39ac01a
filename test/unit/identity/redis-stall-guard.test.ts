// src/identity/redis-stall-guard.ts against a real redis-server: an error Redis answers with is an
// answer, not a stall; a Redis that answers nothing is given up on after BREAKER_FAILURES timeouts.
import t from 'tap';
import { Redis } from 'ioredis';
import { BREAKER_FAILURES, createRedisStallGuard, RedisStalledError } from '../../../src/identity/redis-stall-guard.js';
import { startTestRedis } from '../../support/redis.js';

t.test('errors Redis answers with (WRONGTYPE) never count as a stall', async (t) => {
  const server = await startTestRedis(t);
  const redis = new Redis(server.url, { commandTimeout: 200, maxRetriesPerRequest: 0 });
  t.teardown(() => redis.disconnect());
  const guard = createRedisStallGuard(redis);
  await redis.hset('a-hash', 'f', 'v');
  // A stall drops the connection (failing every command queued on it, other requests' too).
  let dropped = 0;
  redis.on('close', () => dropped++);
  for (let i = 0; i < BREAKER_FAILURES + 2; i++) {
    await t.rejects(
      guard.run(() => redis.get('a-hash')),
      { name: 'ReplyError' },
      `WRONGTYPE ${i + 1}: answered, and passed on`,
    );
    // Past FAILURE_SPACING_MS, so that each would count as a failure of its own.
    await new Promise((r) => setTimeout(r, 120));
  }
  t.equal(await guard.run(() => redis.set('k', 'v')), 'OK', 'still sent: Redis answered every one of them');
  t.equal(dropped, 0, 'and the connection was kept');
});

t.test('a paused Redis: refused at once after a few timeouts, without sending; used again once it answers', async (t) => {
  const server = await startTestRedis(t);
  const redis = new Redis(server.url, {
    commandTimeout: 100,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    retryStrategy: () => 50,
  });
  t.teardown(() => redis.disconnect());
  await new Promise((resolve) => redis.once('ready', resolve));
  const guard = createRedisStallGuard(redis);
  let sent = 0;
  const command = () => {
    sent++;
    return redis.get('k');
  };
  server.pause();
  t.teardown(() => server.resume());
  for (let i = 0; i < BREAKER_FAILURES; i++) {
    await t.rejects(guard.run(command), /timed out/i, `timeout ${i + 1}`);
    // Failures closer together than FAILURE_SPACING_MS count once.
    await new Promise((r) => setTimeout(r, 120));
  }
  t.equal(sent, BREAKER_FAILURES);
  await t.rejects(guard.run(command), RedisStalledError, 'then refused at once');
  t.equal(sent, BREAKER_FAILURES, 'without being sent');

  server.resume();
  let answered = false;
  for (let i = 0; i < 50 && !answered; i++) {
    answered = await guard.run(command).then(
      () => true,
      () => false,
    );
    if (!answered) await new Promise((r) => setTimeout(r, 100));
  }
  t.ok(answered, 'Redis answering again: commands go through');
});
