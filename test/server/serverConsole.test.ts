import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/testServer.js';

/**
 * The web console's static routes (src/server/consoleRoutes.ts) on a real server: served without
 * authentication, with the security headers, from the given folder only; everything else unchanged.
 */
describe('the server’s web console routes', () => {
  let folder: string;
  let s: TestServer;
  let none: TestServer;
  before(async () => {
    folder = mkdtempSync(join(tmpdir(), 'kl-console-files-'));
    mkdirSync(join(folder, 'assets'));
    writeFileSync(
      join(folder, 'index.html'),
      '<!doctype html><script type="module" src="/assets/a.js"></script>',
    );
    writeFileSync(join(folder, 'assets', 'a.js'), 'export {};');
    writeFileSync(join(folder, 'assets', 'notes.txt'), 'not served: no known type');
    writeFileSync(join(folder, 'secret.txt'), 'outside assets');
    s = await startTestServer({ consoleDir: folder });
    none = await startTestServer({ consoleDir: null });
  });
  after(async () => {
    await s?.stop();
    await none?.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  it('serves / and its assets unauthenticated, with a strict CSP and the usual headers', async () => {
    const page = await s.call('GET', '/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(page.text, /assets\/a\.js/);
    const csp = String(page.headers['content-security-policy']);
    for (const directive of [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "frame-ancestors 'none'",
    ]) {
      assert.ok(csp.includes(directive), `${directive} in ${csp}`);
    }
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.equal(page.headers['x-frame-options'], 'DENY');
    assert.equal(page.headers['referrer-policy'], 'no-referrer');
    assert.equal(page.headers['cache-control'], 'no-cache');
    const script = await s.call('GET', '/assets/a.js');
    assert.equal(script.status, 200);
    assert.match(String(script.headers['content-type']), /^text\/javascript/);
    assert.match(String(script.headers['cache-control']), /immutable/);
    assert.equal(script.headers['x-content-type-options'], 'nosniff');
  });

  it('answers nothing else from the folder: unknown, untyped or escaping names are 404 problems', async () => {
    for (const path of [
      '/assets/b.js',
      '/assets/notes.txt',
      '/assets/..%2Fsecret.txt',
      '/assets/%2e%2e%2fsecret.txt',
      '/secret.txt',
      '/index.html',
    ]) {
      const answer = await s.call('GET', path);
      assert.equal(answer.status, 404, path);
      assert.equal(answer.json.code, 'ERR_NOT_FOUND', path);
      assert.doesNotMatch(answer.text, /outside assets/);
    }
    // The API is unchanged: authenticated as before.
    const api = await s.call('POST', '/v1/list-scopes', { json: {} });
    assert.equal(api.status, 401);
    assert.equal(api.json.code, 'ERR_UNAUTHENTICATED');
  });

  it('without a built console, / is a 404 problem', async () => {
    const page = await none.call('GET', '/');
    assert.equal(page.status, 404);
    assert.equal(page.json.code, 'ERR_NOT_FOUND');
  });
});
