import t from 'tap';
import { PassThrough } from 'node:stream';
import { WardenError } from '../../../src/errors.js';
import { createRescue, problemBody } from '../../../src/pipeline/rescue.js';
import { createEventBus } from '../../../src/telemetry/events.js';
import { createLogger } from '../../../src/telemetry/logger.js';

function fakeResponse() {
  const res = {
    headersSent: false,
    status: 0,
    headers: {} as Record<string, string | number>,
    body: '',
    destroyed: false,
    writeHead(status: number, headers: Record<string, string | number>) {
      res.status = status;
      res.headers = headers;
      res.headersSent = true;
    },
    end(body: string) {
      res.body = body;
    },
    destroy() {
      res.destroyed = true;
    },
  };
  return res;
}

const subject = { requestId: 'req-1', method: 'GET', path: '/admin', clientAddress: '192.0.2.1', userAgent: 'curl', route: 'admin' };

t.test('a refusal becomes RFC 9457 problem+json and exactly one event', async (t) => {
  const events: { name: string; attrs: Record<string, unknown> }[] = [];
  const bus = createEventBus([(name, _s, attrs) => events.push({ name, attrs: { ...attrs } })]);
  const rescue = createRescue({ events: bus, logger: createLogger({ level: 'silent', destination: new PassThrough() }) });
  const res = fakeResponse();
  rescue.respond(
    new WardenError('ERR_METHOD_NOT_ALLOWED', { rule: 'routing.methods', headers: { allow: 'GET' }, cause: new Error('secret cause') }),
    subject,
    res,
  );
  t.equal(res.status, 405);
  t.equal(res.headers['content-type'], 'application/problem+json');
  t.equal(res.headers.allow, 'GET');
  t.equal(res.headers['cache-control'], 'no-store');
  const body = JSON.parse(res.body);
  t.same(body, {
    type: 'urn:warden:problem:method-not-allowed',
    title: 'Method not allowed on this route',
    status: 405,
    code: 'ERR_METHOD_NOT_ALLOWED',
    request_id: 'req-1',
  });
  t.notMatch(res.body, /secret cause/, 'the cause is never sent');
  t.equal(events.length, 1);
  t.equal(events[0]?.name, 'warden.route.unknown');
  t.match(events[0]?.attrs, {
    'http.request.method': 'GET',
    'url.path': '/admin',
    'client.address': '192.0.2.1',
    'warden.code': 'ERR_METHOD_NOT_ALLOWED',
    'warden.rule': 'routing.methods',
    'http.route': 'admin',
    'warden.action': 'block',
    'http.response.status_code': 405,
  });
});

t.test('unexpected errors are 500 without details; started responses are aborted', async (t) => {
  const bus = createEventBus();
  const rescue = createRescue({ events: bus, logger: createLogger({ level: 'silent', destination: new PassThrough() }) });
  const res = fakeResponse();
  rescue.respond(new TypeError('boom at /secret/path'), subject, res);
  t.equal(res.status, 500);
  t.notMatch(res.body, /boom|secret/);

  const started = fakeResponse();
  started.headersSent = true;
  rescue.respond(new WardenError('ERR_UPSTREAM_TIMEOUT'), subject, started);
  t.ok(started.destroyed);
});

t.test('problem bodies carry detail when given', async (t) => {
  t.same(JSON.parse(problemBody(new WardenError('ERR_BODY_TOO_LARGE', { detail: 'At most 5 bytes.' }), undefined)), {
    type: 'urn:warden:problem:body-too-large',
    title: 'Request body too large',
    status: 413,
    code: 'ERR_BODY_TOO_LARGE',
    detail: 'At most 5 bytes.',
  });
});

t.test('401 token refusals carry an RFC 6750 Bearer challenge with the configured realm', async (t) => {
  const rescue = createRescue({
    events: createEventBus(),
    logger: createLogger({ level: 'silent', destination: new PassThrough() }),
    realm: 'orders',
  });
  const challengeOf = (error: WardenError) => {
    const res = fakeResponse();
    rescue.respond(error, subject, res);
    return { status: res.status, challenge: res.headers['www-authenticate'] };
  };
  t.same(challengeOf(new WardenError('ERR_AUTHN_TOKEN_MISSING')), { status: 401, challenge: 'Bearer realm="orders"' }, 'no error code');
  t.same(challengeOf(new WardenError('ERR_AUTHN_TOKEN_EXPIRED')), {
    status: 401,
    challenge: 'Bearer realm="orders", error="invalid_token", error_description="Access token expired"',
  });
  t.same(challengeOf(new WardenError('ERR_AUTHN_TOKEN_MALFORMED', { rule: 'authorization.scheme' })), {
    status: 401,
    challenge: 'Bearer realm="orders", error="invalid_request", error_description="Malformed credentials"',
  });
  t.equal(challengeOf(new WardenError('ERR_PEER_CERT_REQUIRED')).challenge, undefined, 'not for 401s that are not about tokens');
  t.equal(challengeOf(new WardenError('ERR_ACCESS_DENIED')).challenge, undefined, 'not for other statuses');

  const own = 'Bearer realm="orders", error="invalid_token", error_description="custom"';
  t.same(
    challengeOf(new WardenError('ERR_AUTHN_TOKEN_INVALID', { headers: { 'www-authenticate': own } })),
    { status: 401, challenge: own },
    'a challenge the error already carries is kept',
  );
});

t.test('the realm defaults to "warden" and loses characters that would break the quoted string', async (t) => {
  const logger = createLogger({ level: 'silent', destination: new PassThrough() });
  const plain = createRescue({ events: createEventBus(), logger });
  const res = fakeResponse();
  plain.respond(new WardenError('ERR_AUTHN_TOKEN_MISSING'), subject, res);
  t.equal(res.headers['www-authenticate'], 'Bearer realm="warden"');

  const quoted = createRescue({ events: createEventBus(), logger, realm: 'my "api"\\' });
  const res2 = fakeResponse();
  quoted.respond(new WardenError('ERR_AUTHN_TOKEN_MISSING'), subject, res2);
  t.equal(res2.headers['www-authenticate'], 'Bearer realm="my api"');
});
