import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUDIENCE } from '../helpers/testJwt.js';
import { type Answer, startTestServer, type TestServer } from '../helpers/testServer.js';

/** tenant-1 and tenant-2 in base64, the custodians grants name. */
const T1 = 'dGVuYW50LTE=';
const T2 = 'dGVuYW50LTI=';
const ORDERS = `${T1}:orders`;

function problem(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, answer.text);
  assert.match(String(answer.headers['content-type']), /^application\/problem\+json/);
  assert.equal(answer.json.code, code);
  assert.equal(answer.json.status, status);
  assert.equal(answer.json.type, `https://keyledger.dev/errors/${code}`);
  assert.equal(answer.json.requestId, answer.headers['x-request-id']);
  assert.equal(typeof answer.json.details, 'object');
}

describe('the server: unary operations over HTTPS', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s?.stop();
  });

  it('answers /healthz and /readyz without authentication', async () => {
    const health = await s.call('GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.json.status, 'ok');
    const ready = await s.call('GET', '/readyz');
    assert.equal(ready.status, 200, ready.text);
    assert.equal(ready.json.status, 'ready');
  });

  describe('401 without valid credentials, nothing written', () => {
    const refused = async (call: Parameters<TestServer['call']>[2], reason: string) => {
      const head = await s.head();
      const answer = await s.call('POST', '/v1/enable-key-management', { json: { scope: ORDERS }, ...call });
      problem(answer, 401, 'ERR_UNAUTHENTICATED');
      assert.equal(answer.headers['www-authenticate'], 'Bearer realm="keyledger"');
      assert.equal(answer.json.details.reason, reason);
      assert.equal(await s.head(), head);
    };
    it('no credentials', () => refused({}, 'missing'));
    it('a malformed API token', () => refused({ token: 'klt_abc' }, 'malformed'));
    it('a malformed JWT', () => refused({ token: 'aaa.bbb.ccc' }, 'malformed'));
    it('a JWT signed by an unknown key', async () =>
      refused({ token: await s.foreignJwt('ops', [`admin:*`]) }, 'bad-signature'));
    it('an expired JWT', async () =>
      refused(
        { token: await s.jwt('ops', ['admin:*'], { exp: Math.floor(Date.now() / 1000) - 60 }) },
        'expired',
      ));
    it('a JWT accepted once is refused after its exp, though it was remembered', async () => {
      const exp = Math.floor(Date.now() / 1000) + 2;
      const token = await s.jwt('brief', ['read:*'], { exp });
      const first = await s.call('POST', '/v1/list-scopes', { token, json: {} });
      assert.equal(first.status, 200, first.text);
      // The verified-token cache must not outlive the token's own expiry.
      await new Promise((resolve) => setTimeout(resolve, exp * 1000 - Date.now() + 1100));
      const answer = await s.call('POST', '/v1/list-scopes', { token, json: {} });
      problem(answer, 401, 'ERR_UNAUTHENTICATED');
      assert.equal(answer.json.details.reason, 'expired');
    });
    it('a JWT for another audience', async () =>
      refused({ token: await s.jwt('ops', ['admin:*'], { aud: `${AUDIENCE}-other` }) }, 'bad-aud'));
    it('a JWT of another issuer', async () =>
      refused({ token: await s.jwt('ops', ['admin:*'], { iss: 'https://evil.test' }) }, 'bad-iss'));
    it('a client certificate of another CA', () => refused({ cert: 'untrusted' }, 'untrusted-certificate'));
    it('a bad bearer token even with a trusted certificate', () =>
      refused({ cert: 'trusted', token: 'aaa.bbb.ccc' }, 'malformed'));
    it('counts the failures in /metrics', async () => {
      const metrics = await s.call('GET', '/metrics', { token: await s.jwt('scraper', ['audit:*']) });
      assert.equal(metrics.status, 200);
      assert.match(metrics.text, /keyledger_auth_failures_total\{scheme="jwt",reason="expired"\} [1-9]/);
    });
  });

  describe('403 when the grants do not allow it, nothing written', () => {
    it('a role that does not imply the permission', async () => {
      const head = await s.head();
      const token = await s.jwt('reader', [`read:*`, `encrypt:${T1}`]);
      const answer = await s.call('POST', '/v1/enable-key-management', { token, json: { scope: ORDERS } });
      problem(answer, 403, 'ERR_FORBIDDEN');
      assert.deepEqual(answer.json.details, { principal: 'reader', permission: 'operate', custodian: T1 });
      assert.equal(await s.head(), head);
    });
    it('the right role on another custodian', async () => {
      const head = await s.head();
      const token = await s.jwt('ops-2', [`operate:${T2}`]);
      const answer = await s.call('POST', '/v1/enable-key-management', { token, json: { scope: ORDERS } });
      problem(answer, 403, 'ERR_FORBIDDEN');
      assert.equal(await s.head(), head);
    });
    it('a ledger-wide operation without a grant over every custodian', async () => {
      const head = await s.head();
      const token = await s.jwt('ops-1', [`operate:${T1}`]);
      const answer = await s.call('POST', '/v1/checkpoint', { token, json: {} });
      problem(answer, 403, 'ERR_FORBIDDEN');
      assert.equal(answer.json.details.custodian, null);
      assert.equal(await s.head(), head);
    });
  });

  describe('400 for bad input, nothing written', () => {
    const bad = async (body: unknown, contentType?: string) => {
      const head = await s.head();
      const token = await s.jwt('ops', ['admin:*']);
      const answer =
        contentType === undefined
          ? await s.call('POST', '/v1/enable-key-management', { token, json: body })
          : await s.call('POST', '/v1/enable-key-management', {
              token,
              body: Buffer.from(String(body)),
              contentType,
            });
      problem(answer, 400, 'ERR_INVALID_ARGUMENT');
      assert.equal(await s.head(), head);
      return answer;
    };
    it('a missing field names the field', async () => {
      const answer = await bad({});
      assert.equal(typeof answer.json.details.scope, 'string');
    });
    it('a field of the wrong type', async () => {
      await bad({ scope: 42 });
    });
    it('an unknown field (an actor cannot be passed)', async () => {
      const answer = await bad({ scope: ORDERS, actor: 'someone-else' });
      assert.ok('(input)' in answer.json.details || 'actor' in answer.json.details, answer.text);
    });
    it('malformed JSON', async () => {
      await bad('{"scope":', 'application/json');
    });
    it('a Keyledger-Reason longer than an event holds', async () => {
      const head = await s.head();
      const token = await s.jwt('ops', ['admin:*']);
      const answer = await s.call('POST', '/v1/enable-key-management', {
        token,
        json: { scope: `${T1}:long-reason` },
        headers: { 'keyledger-reason': 'x'.repeat(1025) },
      });
      problem(answer, 400, 'ERR_INVALID_ARGUMENT');
      assert.equal(await s.head(), head);
    });
    it('a Keyledger-Reason whose percent-escapes are not UTF-8', async () => {
      const head = await s.head();
      const token = await s.jwt('ops', ['admin:*']);
      const answer = await s.call('POST', '/v1/enable-key-management', {
        token,
        json: { scope: `${T1}:bad-escape` },
        headers: { 'keyledger-reason': 'broken %C3%28 escape' },
      });
      problem(answer, 400, 'ERR_INVALID_ARGUMENT');
      assert.equal(await s.head(), head);
    });
    it('a scope the operation’s own checks refuse', async () => {
      const head = await s.head();
      const token = await s.jwt('ops', ['admin:*']);
      const answer = await s.call('POST', '/v1/enable-key-management', {
        token,
        json: { scope: 'no-colon' },
      });
      assert.equal(answer.status, 400, answer.text);
      assert.match(answer.json.code, /^ERR_INVALID_/);
      assert.equal(await s.head(), head);
    });
  });

  describe('API tokens (Bearer klt_…)', () => {
    it('a token made by an admin authenticates its principal with its grants, until revoked', async () => {
      const admin = await s.jwt('admin', ['admin:*']);
      const created = await s.call('POST', '/v1/token-create', {
        token: admin,
        json: { principal: 'svc-1', grant: [`operate:${T1}`] },
      });
      assert.equal(created.status, 200, created.text);
      const token: string = created.json.token;
      assert.match(token, /^klt_/);
      assert.ok(!JSON.stringify(s.log).includes(token), 'the access log never holds a token');
      const used = await s.call('POST', '/v1/enable-key-management', {
        token,
        json: { scope: `${T1}:tokens` },
        headers: { 'x-request-id': 'by-token-1' },
      });
      assert.equal(used.status, 200, used.text);
      const history = await s.call('POST', '/v1/history', { token: admin, json: { scope: `${T1}:tokens` } });
      assert.ok(
        history.json.some((e: { actor: string }) => e.actor === 'svc-1'),
        history.text,
      );
      problem(
        await s.call('POST', '/v1/enable-key-management', { token, json: { scope: `${T2}:tokens` } }),
        403,
        'ERR_FORBIDDEN',
      );
      const wrong = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
      const refusedWrong = await s.call('POST', '/v1/list-scopes', { token: wrong, json: {} });
      problem(refusedWrong, 401, 'ERR_UNAUTHENTICATED');
      assert.equal(refusedWrong.json.details.reason, 'unknown');
      const revoked = await s.call('POST', '/v1/token-revoke', {
        token: admin,
        json: { id: created.json.tokenId },
      });
      assert.equal(revoked.status, 200, revoked.text);
      const head = await s.head();
      const afterRevoke = await s.call('POST', '/v1/enable-key-management', {
        token,
        json: { scope: `${T1}:x` },
      });
      problem(afterRevoke, 401, 'ERR_UNAUTHENTICATED');
      assert.equal(afterRevoke.json.details.reason, 'revoked');
      assert.equal(await s.head(), head);
    });
  });

  it('404 for a route that does not exist, and for the local-only operations', async () => {
    const token = await s.jwt('ops', ['admin:*']);
    for (const path of ['/v1/init', '/v1/verify-export', '/v1/audit-export-file', '/v1/nope']) {
      problem(await s.call('POST', path, { token, json: {} }), 404, 'ERR_NOT_FOUND');
    }
    // Unauthenticated, a /v1 path is refused before anyone learns whether it exists.
    problem(await s.call('POST', '/v1/init', { json: {} }), 401, 'ERR_UNAUTHENTICATED');
    problem(await s.call('GET', '/nope'), 404, 'ERR_NOT_FOUND');
  });

  it('runs a write as the principal, with the request id as correlation id and the reason given', async () => {
    const token = await s.jwt('ops-1', [`operate:${T1}`, `audit:${T1}`]);
    const head = await s.head();
    const answer = await s.call('POST', '/v1/enable-key-management', {
      token,
      json: { scope: ORDERS },
      headers: {
        'x-request-id': 'req-enable-1',
        'keyledger-reason': 'onboarding tenant-1: 100% %C3%A9',
        'keyledger-actor': 'mallory',
        'x-keyledger-actor': 'mallory',
      },
    });
    assert.equal(answer.status, 200, answer.text);
    assert.match(String(answer.headers['content-type']), /^application\/json/);
    assert.equal(answer.headers['x-request-id'], 'req-enable-1');
    assert.equal(answer.json.key.state, 'ACTIVE');
    assert.ok((await s.head()) > head);
    const history = await s.call('POST', '/v1/history', { token, json: { scope: ORDERS } });
    assert.equal(history.status, 200, history.text);
    const written = history.json.filter((e: { correlationId: string }) => e.correlationId === 'req-enable-1');
    assert.ok(written.length > 0, history.text);
    for (const event of written) {
      assert.equal(event.actor, 'ops-1');
      // Escapes decoded; a % not followed by two hex digits kept.
      assert.equal(event.reason, 'onboarding tenant-1: 100% é');
    }
    const entry = await s.logEntry('req-enable-1');
    assert.equal(entry?.principal, 'ops-1');
    assert.equal(entry?.operation, 'enable-key-management');
    assert.equal(entry?.custodian, T1);
    assert.equal(entry?.scope, ORDERS);
    assert.equal(entry?.status, 200);
  });

  it('makes a request id when none (or a bad one) is given', async () => {
    const answer = await s.call('GET', '/healthz', { headers: { 'x-request-id': 'has space' } });
    assert.match(String(answer.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });

  it('a rule refusal is 409 with the ledger’s code; an unknown scope 404', async () => {
    const token = await s.jwt('ops', ['admin:*']);
    const head = await s.head();
    const again = await s.call('POST', '/v1/disable-managed-key', {
      token,
      json: { scope: `${T2}:none`, key: 'Tx_0ZJwlR7cf_tvELss_dwOa3PBzbFC5qWQNYzfPhEw' },
    });
    assert.ok([404, 409].includes(again.status), again.text);
    assert.equal(await s.head(), head);
    const missing = await s.call('POST', '/v1/history', { token, json: { scope: `${T2}:none` } });
    problem(missing, 404, 'ERR_SCOPE_NOT_FOUND');
  });

  it('authenticates a trusted client certificate as its subject', async () => {
    const answer = await s.call('POST', '/v1/list-scopes', { cert: 'trusted', json: {} });
    assert.equal(answer.status, 200, answer.text);
    assert.ok(Array.isArray(answer.json) || typeof answer.json === 'object');
    const entry = await s.logEntry(answer.headers['x-request-id']);
    assert.equal(entry?.principal, 'app-1');
  });

  it('serves the operations that read the store unreplayed (verify)', async () => {
    const token = await s.jwt('auditor', ['audit:*']);
    const answer = await s.call('POST', '/v1/verify', { token, json: {} });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.ok, true, answer.text);
  });

  it('an empty body counts as {}', async () => {
    const token = await s.jwt('ops', ['admin:*']);
    const answer = await s.call('POST', '/v1/list-scopes', { token });
    assert.equal(answer.status, 200, answer.text);
  });

  it('the access log names no token', () => {
    const text = JSON.stringify(s.log);
    assert.doesNotMatch(text, /eyJ/);
    assert.ok(s.log.length > 10);
  });
});

describe('the server: mTLS principal from the subject alternative name', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ principalFrom: 'san', mtlsGrants: { 'app-1.clients.test': ['read:*'] } });
  });
  after(async () => {
    await s?.stop();
  });

  it('names the principal by the certificate’s DNS SAN, with the grants configured for it', async () => {
    const listed = await s.call('POST', '/v1/list-scopes', { cert: 'trusted', json: {} });
    assert.equal(listed.status, 200, listed.text);
    const entry = await s.logEntry(listed.headers['x-request-id']);
    assert.equal(entry?.principal, 'app-1.clients.test');
    const head = await s.head();
    const refused = await s.call('POST', '/v1/checkpoint', { cert: 'trusted', json: {} });
    problem(refused, 403, 'ERR_FORBIDDEN');
    assert.equal(refused.json.details.principal, 'app-1.clients.test');
    assert.equal(await s.head(), head);
  });
});
