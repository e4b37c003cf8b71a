import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { type Answer, startTestServer, type TestServer } from '../helpers/testServer.js';

const T1 = Buffer.from('tenant-1').toString('base64');
const T2 = Buffer.from('tenant-2').toString('base64');
const OCTETS = 'application/octet-stream';

function problem(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, answer.text);
  assert.match(String(answer.headers['content-type']), /^application\/problem\+json/);
  assert.equal(answer.json.code, code);
}

describe('the server: bytes operations (encrypt, decrypt, audit-export)', () => {
  let s: TestServer;
  let admin: string;
  before(async () => {
    s = await startTestServer({ limits: { jsonBodyBytes: 64 * 1024, streamBodyBytes: 1024 * 1024 } });
    admin = await s.jwt('admin', ['admin:*']);
    for (const scope of [`${T1}:orders`, `${T2}:orders`]) {
      const answer = await s.call('POST', '/v1/enable-key-management', { token: admin, json: { scope } });
      assert.equal(answer.status, 200, answer.text);
    }
  });
  after(async () => {
    await s?.stop();
  });

  const encryptJson = async (custodian: string, data: Buffer) => {
    const token = await s.jwt(`app-${custodian}`, [`encrypt:${custodian}`]);
    const answer = await s.call('POST', '/v1/encrypt', {
      token,
      json: { custodian, namespace: ['orders'], data: data.toString('base64') },
    });
    assert.equal(answer.status, 200, answer.text);
    return answer;
  };

  it('JSON form: encrypt answers the key used and the ciphertext; decrypt gives the plaintext back', async () => {
    const plaintext = Buffer.from('hello, tenant-1');
    const encrypted = await encryptJson(T1, plaintext);
    assert.equal(encrypted.json.custodian, T1);
    assert.equal(encrypted.json.namespace, 'orders');
    assert.equal(typeof encrypted.json.keyId, 'string');
    const token = await s.jwt('reader-1', [`decrypt:${T1}`]);
    const decrypted = await s.call('POST', '/v1/decrypt', { token, json: { data: encrypted.json.data } });
    assert.equal(decrypted.status, 200, decrypted.text);
    assert.equal(Buffer.from(decrypted.json.data, 'base64').toString('utf8'), 'hello, tenant-1');
    assert.equal(decrypted.json.custodian, T1);
    assert.equal(decrypted.json.keyId, encrypted.json.keyId);
  });

  it('decrypt is authorised by the custodian in the ciphertext header: another tenant’s ciphertext is 403', async () => {
    const other = await encryptJson(T2, Buffer.from('tenant-2 secret'));
    const token = await s.jwt('reader-1', [`decrypt:${T1}`]);
    const head = await s.head();
    const answer = await s.call('POST', '/v1/decrypt', { token, json: { data: other.json.data } });
    problem(answer, 403, 'ERR_FORBIDDEN');
    assert.deepEqual(answer.json.details, { principal: 'reader-1', permission: 'decrypt', custodian: T2 });
    assert.ok(!answer.text.includes('tenant-2 secret'));
    assert.equal(await s.head(), head);
  });

  it('decrypt by a principal who may decrypt for no custodian is 403 before anything is read', async () => {
    const token = await s.jwt('encryptor', [`encrypt:${T1}`]);
    const answer = await s.call('POST', '/v1/decrypt', { token, json: { data: 'S0xF' } });
    problem(answer, 403, 'ERR_FORBIDDEN');
    assert.equal(answer.json.details.custodian, null);
  });

  it('decrypt naming a custodian the principal may not decrypt for is 403 before anything is read', async () => {
    const token = await s.jwt('reader-1', [`decrypt:${T1}`]);
    const answer = await s.call('POST', '/v1/decrypt', { token, json: { custodian: T2, data: '' } });
    problem(answer, 403, 'ERR_FORBIDDEN');
  });

  it('a tampered ciphertext is the one uniform 400 ERR_DECRYPTION_FAILED', async () => {
    const encrypted = await encryptJson(T1, Buffer.from('x'.repeat(100)));
    const bytes = Buffer.from(encrypted.json.data, 'base64');
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
    const token = await s.jwt('reader-1', [`decrypt:${T1}`]);
    const answer = await s.call('POST', '/v1/decrypt', { token, json: { data: bytes.toString('base64') } });
    problem(answer, 400, 'ERR_DECRYPTION_FAILED');
  });

  it('encrypt for a custodian the grants do not cover is 403; data that is not base64 is 400', async () => {
    const token = await s.jwt('app-2', [`encrypt:${T2}`]);
    problem(
      await s.call('POST', '/v1/encrypt', { token, json: { custodian: T1, data: 'aGk=' } }),
      403,
      'ERR_FORBIDDEN',
    );
    problem(
      await s.call('POST', '/v1/encrypt', { token, json: { custodian: T2, data: 'not base64!' } }),
      400,
      'ERR_INVALID_ARGUMENT',
    );
  });

  it('encrypt for a scope with no ACTIVE key is 409 ERR_NO_ACTIVE_KEY, in both forms', async () => {
    const token = await s.jwt('app-3', ['encrypt:*']);
    const nowhere = Buffer.from('tenant-never-enabled').toString('base64');
    problem(
      await s.call('POST', '/v1/encrypt', { token, json: { custodian: nowhere, data: 'aGk=' } }),
      409,
      'ERR_NO_ACTIVE_KEY',
    );
    problem(
      await s.call('POST', `/v1/encrypt?custodian=${encodeURIComponent(nowhere)}`, {
        token,
        body: Buffer.from('hi'),
        contentType: OCTETS,
      }),
      409,
      'ERR_NO_ACTIVE_KEY',
    );
  });

  it('streamed form: raw bytes in and out, the result as the Keyledger-Result trailer', async () => {
    const plaintext = randomBytes(300 * 1024);
    const enc = await s.jwt('app-1', [`encrypt:${T1}`]);
    const encrypted = await s.call(
      'POST',
      `/v1/encrypt?custodian=${encodeURIComponent(T1)}&namespace=orders`,
      {
        token: enc,
        body: plaintext,
        contentType: OCTETS,
      },
    );
    assert.equal(encrypted.status, 200, encrypted.text);
    assert.equal(encrypted.headers['content-type'], OCTETS);
    assert.equal(encrypted.headers.trailer, 'Keyledger-Result');
    const result = JSON.parse(String(encrypted.trailers['keyledger-result']));
    assert.equal(result.custodian, T1);
    assert.equal(result.namespace, 'orders');
    assert.ok(encrypted.bytes.length > plaintext.length);
    const dec = await s.jwt('reader-1', [`decrypt:${T1}`]);
    const decrypted = await s.call('POST', '/v1/decrypt', {
      token: dec,
      body: encrypted.bytes,
      contentType: OCTETS,
    });
    assert.equal(decrypted.status, 200, decrypted.text);
    assert.ok(decrypted.bytes.equals(plaintext));
    assert.equal(JSON.parse(String(decrypted.trailers['keyledger-result'])).keyId, result.keyId);
  });

  it('streamed decrypt of another tenant’s ciphertext is a 403 problem before any byte', async () => {
    const other = await encryptJson(T2, randomBytes(1000));
    const token = await s.jwt('reader-1', [`decrypt:${T1}`]);
    const answer = await s.call('POST', '/v1/decrypt', {
      token,
      body: Buffer.from(other.json.data, 'base64'),
      contentType: OCTETS,
    });
    problem(answer, 403, 'ERR_FORBIDDEN');
  });

  it('a streamed decrypt that fails after output began ends without the trailer', async () => {
    const enc = await s.jwt('app-1', [`encrypt:${T1}`]);
    const encrypted = await s.call(
      'POST',
      `/v1/encrypt?custodian=${encodeURIComponent(T1)}&namespace=orders`,
      {
        token: enc,
        body: randomBytes(200 * 1024),
        contentType: OCTETS,
      },
    );
    assert.equal(encrypted.status, 200, encrypted.text);
    const bytes = encrypted.bytes;
    const truncated = bytes.subarray(0, bytes.length - 1000);
    const token = await s.jwt('reader-1', [`decrypt:${T1}`]);
    const outcome = await s.call('POST', '/v1/decrypt', { token, body: truncated, contentType: OCTETS }).then(
      (answer) => answer,
      (error: Error) => error,
    );
    if (outcome instanceof Error) return; // the response was dropped midway: failed, as it must
    assert.ok(
      outcome.status !== 200 || outcome.trailers['keyledger-result'] === undefined,
      'no trailer on failure',
    );
  });

  it('413 for a JSON body or a stream over its limit, nothing written', async () => {
    const token = await s.jwt('app-1', [`encrypt:${T1}`]);
    const head = await s.head();
    problem(
      await s.call('POST', '/v1/encrypt', {
        token,
        json: { custodian: T1, data: randomBytes(100 * 1024).toString('base64') },
      }),
      413,
      'ERR_PAYLOAD_TOO_LARGE',
    );
    problem(
      await s.call('POST', `/v1/encrypt?custodian=${encodeURIComponent(T1)}`, {
        token,
        body: randomBytes(1024 * 1024 + 1),
        contentType: OCTETS,
      }),
      413,
      'ERR_PAYLOAD_TOO_LARGE',
    );
    assert.equal(await s.head(), head);
  });

  it('413 for a chunked stream (no Content-Length) that goes over the limit midway', async () => {
    const token = await s.jwt('app-1', [`encrypt:${T1}`]);
    const head = await s.head();
    const answer = await new Promise<{ status: number; body: string; dropped: boolean }>((resolve) => {
      const req = request(
        new URL(`/v1/encrypt?custodian=${encodeURIComponent(T1)}&namespace=orders`, s.url),
        {
          method: 'POST',
          ca: s.certs.pem(s.certs.caCert),
          agent: false,
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': OCTETS,
            'transfer-encoding': 'chunked',
          },
        },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => {
            body += chunk.toString('utf8');
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body, dropped: false }));
          res.on('error', () => resolve({ status: res.statusCode ?? 0, body, dropped: true }));
        },
      );
      req.on('error', () => {
        // The server may answer and stop reading before the upload ends.
      });
      let sent = 0;
      const more = () => {
        while (sent < 2 * 1024 * 1024) {
          sent += 128 * 1024;
          if (!req.write(randomBytes(128 * 1024))) {
            req.once('drain', more);
            return;
          }
        }
        req.end();
      };
      more();
    });
    // The ciphertext of the first MiB may have gone out already: then the answer is dropped (no
    // trailer); otherwise it is the 413 problem.
    if (answer.status === 413) assert.equal(JSON.parse(answer.body).code, 'ERR_PAYLOAD_TOO_LARGE');
    else assert.ok(answer.status === 200 && answer.dropped, JSON.stringify(answer).slice(0, 300));
    assert.equal(await s.head(), head);
  });

  it('audit-export streams the ledger as JSON lines to an auditor of every custodian', async () => {
    const token = await s.jwt('auditor', ['audit:*']);
    const answer = await s.call('POST', '/v1/audit-export', {
      token,
      body: Buffer.alloc(0),
      contentType: OCTETS,
    });
    assert.equal(answer.status, 200, answer.text);
    const lines = answer.text.trim().split('\n');
    assert.ok(lines.length > 3);
    for (const line of lines) JSON.parse(line);
    assert.ok(answer.trailers['keyledger-result']);
    const narrow = await s.jwt('auditor-1', [`audit:${T1}`]);
    problem(await s.call('POST', '/v1/audit-export', { token: narrow, json: {} }), 403, 'ERR_FORBIDDEN');
  });
});
