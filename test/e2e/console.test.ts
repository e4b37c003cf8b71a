import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { cliHarness, requireBuiltCli, storeHead, tempDirs } from '../helpers/cliHarness.js';
import { httpsCall } from '../helpers/httpsCall.js';
import { type ServeProcess, startServeProcess } from '../helpers/serveProcess.js';
import { makeTestCertificates, type TestCertificates } from '../helpers/testCertificates.js';

/**
 * The web console in a real browser: Debian's Chromium driven by playwright-core (no browser
 * download) against the built CLI's `keyledger serve` on 127.0.0.1, over a temp sqlite ledger.
 * Tokens are made with the CLI; the CLI also writes "from elsewhere" while the page is open.
 */
const { ok, env: ENV } = cliHarness();
const CHROMIUM = process.env.KEYLEDGER_CHROMIUM ?? '/usr/bin/chromium';
const IMAGES = new URL('../../docs/images/', import.meta.url).pathname;
const CONSOLE_INDEX = new URL('../../dist/console/index.html', import.meta.url).pathname;
const b64 = (text: string) => Buffer.from(text).toString('base64');
const T1 = b64('tenant-1');
const T2 = b64('tenant-2');

/** Polls a condition on the page (the page's CSP forbids the string evaluation waitForFunction uses). */
async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A locator's text (its textContent: playwright's, not the DOM's innerText). */
async function text(locator: Locator): Promise<string> {
  return (await locator.textContent()) ?? '';
}

interface HistoryRow {
  readonly position: string;
  readonly type: string;
  readonly actor: string;
  readonly reason: string | null;
  readonly keys: readonly { readonly metadataHash: string; readonly to: string }[];
}

describe('web console (Chromium against keyledger serve)', () => {
  const dirs = tempDirs('kl-console-');
  let dir: string;
  let certs: TestCertificates;
  let served: ServeProcess | null = null;
  let browser: Browser | null = null;
  const tokens: Record<string, string> = {};
  const history = (scope: string): HistoryRow[] => JSON.parse(ok(dir, ['history', scope, '--json']));
  /** The same history over the API (no CLI start-up: the test stays within its time budget). */
  const apiHistory = async (scope: string): Promise<HistoryRow[]> => {
    assert.ok(served !== null);
    const answer = await httpsCall(served.url, 'POST', '/v1/history', {
      ca: certs.pem(certs.caCert),
      token: tokens.auditor ?? '',
      json: { scope },
    });
    assert.equal(answer.status, 200, answer.text);
    return answer.json;
  };

  before(async () => {
    requireBuiltCli();
    assert.ok(existsSync(CONSOLE_INDEX), `${CONSOLE_INDEX} is missing: run npm run build`);
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/ensure-system-deps.sh installs it`);
    dir = dirs.make();
    ok(dir, ['init']);
    certs = makeTestCertificates();
    const configFile = join(dir, 'keyledger.config.json');
    const config = JSON.parse(readFileSync(configFile, 'utf8'));
    config.server = { listen: '127.0.0.1:0', tls: { cert: certs.serverCert, key: certs.serverKey } };
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    ok(dir, ['enable-key-management', 'name=tenant-1:orders', '--reason', 'tenant-1 onboarding']);
    ok(dir, ['enable-key-management', 'name=tenant-1:billing', '--reason', 'tenant-1 onboarding']);
    ok(dir, ['enable-key-management', 'name=tenant-2:orders', '--reason', 'tenant-2 onboarding']);
    const token = (principal: string, grants: readonly string[]) =>
      JSON.parse(
        ok(dir, [
          'token',
          'create',
          '--principal',
          principal,
          ...grants.flatMap((g) => ['--grant', g]),
          '--json',
        ]),
      ).token as string;
    tokens.admin = token('console-admin', ['admin:*']);
    tokens.auditor = token('auditor-1', ['audit:*']);
    tokens.tenant = token('tenant-1-ops', ['operate:name=tenant-1', 'audit:name=tenant-1']);
    tokens.encryptOnly = token('app-1', ['encrypt:name=tenant-1']);
    served = await startServeProcess(dir, [], ENV);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // The tests run as root in CI containers, where Chromium's sandbox cannot start.
      args: ['--no-sandbox'],
    });
  });
  after(async () => {
    await browser?.close();
    await served?.stop();
    certs?.remove();
    dirs.removeAll();
  });

  /** A fresh tab (its own sessionStorage), with every CSP violation or page error collected. */
  async function open(): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
    assert.ok(browser !== null && served !== null);
    const context = await browser.newContext({
      ignoreHTTPSErrors: true,
      viewport: { width: 1440, height: 900 },
      deviceScaleFactor: 1,
    });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && !/401|403/.test(m.text())) problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(String(e)));
    return { context, page, problems };
  }

  async function signIn(page: Page, token: string): Promise<void> {
    assert.ok(served !== null);
    await page.goto(served.url);
    await page.getByLabel('Token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  /** From the scopes list: the timeline of one scope (`custodian:namespace`). */
  async function openTimeline(page: Page, scope: string): Promise<void> {
    await page
      .locator(`tr[data-scope="${scope}"]`)
      .getByRole('button', { name: /Timeline/ })
      .click();
  }

  it('serves the page with a strict CSP and security headers; a bad token shows an error and keeps nothing', async () => {
    assert.ok(served !== null);
    const { context, page, problems } = await open();
    try {
      const response = await page.goto(served.url);
      assert.ok(response !== null);
      const headers = response.headers();
      const csp = headers['content-security-policy'] ?? '';
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.equal(headers['x-content-type-options'], 'nosniff');
      assert.equal(headers['referrer-policy'], 'no-referrer');
      const html = await response.text();
      assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)/, 'no inline script');
      assert.doesNotMatch(html, /\sstyle=/, 'no inline style');
      const before = await storeHead(dir);
      await page.getByLabel('Token').fill('klt_notatoken_000000');
      await page.getByRole('button', { name: 'Sign in' }).click();
      const alert = page.getByRole('alert');
      await alert.waitFor();
      assert.match(await text(alert), /ERR_UNAUTHENTICATED/);
      assert.deepEqual(
        await page.evaluate('[sessionStorage.length, localStorage.length]'),
        [0, 0],
        'a refused token is kept nowhere',
      );
      assert.equal(await storeHead(dir), before, 'nothing was written');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('signs in: the overview lists the scopes, the token is in sessionStorage only; screenshot', async () => {
    const { context, page, problems } = await open();
    try {
      await signIn(page, tokens.admin ?? '');
      await page.locator('tr[data-scope]').first().waitFor();
      const listed = await page
        .locator('tr[data-scope]')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-scope')));
      assert.deepEqual(new Set(listed), new Set([`${T1}:orders`, `${T1}:billing`, `${T2}:orders`]));
      assert.match(await text(page.locator('.principal')), /console-admin/);
      const row = page.locator(`tr[data-scope="${T2}:orders"]`);
      assert.match(await text(row), /tenant-2/);
      // The integrity panel ran verify; the system keys panel lists STK #1.
      await page.getByText('✓ intact').waitFor();
      await page.locator('#stk-title').waitFor();
      const stored = (await page.evaluate(
        '({ session: Object.keys(sessionStorage), local: localStorage.length, url: location.href })',
      )) as { session: string[]; local: number; url: string };
      assert.deepEqual(stored.session, ['keyledger.token']);
      assert.equal(stored.local, 0);
      assert.doesNotMatch(stored.url, /klt_/);
      // Signing out forgets the token.
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('Token').waitFor();
      assert.equal(await page.evaluate('sessionStorage.length'), 0);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('rotates from the console with a reason; follows a CLI rotation live; shows the scope as of before it', async () => {
    const { context, page, problems } = await open();
    try {
      await signIn(page, tokens.admin ?? '');
      await openTimeline(page, `${T1}:orders`);
      await page.locator('#timeline-title').waitFor();
      await page.getByText('connected').waitFor();
      const lanes = page.locator('.timeline g.lane');
      const lanesBefore = await lanes.count();

      // Rotate from the console: a confirmation with a required reason.
      await page.getByRole('button', { name: 'Rotate key…' }).click();
      const dialog = page.getByRole('dialog');
      const confirm = dialog.getByRole('button', { name: 'Rotate' });
      assert.equal(await confirm.isDisabled(), true, 'no reason, no rotation');
      await dialog.getByLabel('Reason').fill('quarterly rotation from the console');
      await confirm.click();
      await dialog.waitFor({ state: 'detached' });
      await until(async () => (await lanes.count()) === lanesBefore + 1, 'a lane more');
      const rotated = history('name=tenant-1:orders').at(-1);
      assert.equal(rotated?.type, 'ManagedKeyRotated');
      assert.equal(rotated?.actor, 'console-admin');
      assert.equal(rotated?.reason, 'quarterly rotation from the console');
      const row = page.locator(`tr[data-position="${rotated?.position}"]`);
      await row.waitFor();
      assert.equal(await text(row.locator('.actor')), 'console-admin');
      assert.equal(await text(row.locator('.reason')), 'quarterly rotation from the console');
      const consoleKey = rotated?.keys.find((k) => k.to === 'ACTIVE')?.metadataHash;
      assert.ok(consoleKey !== undefined);

      // A mark shows its event on focus (keyboard).
      await page.locator(`.timeline .mark[data-position="${rotated?.position}"]`).first().focus();
      const tip = page.locator('.tip');
      await tip.waitFor();
      assert.match(await text(tip), /console-admin/);
      assert.match(await text(tip), /quarterly rotation from the console/);

      // A rotation by the CLI, another process, appears on the open page within a second.
      const cli: { position: string } = JSON.parse(
        ok(dir, ['rotate-managed-key', 'name=tenant-1:orders', '--reason', 'rotation by the CLI', '--json']),
      );
      const started = Date.now();
      await page.locator(`.feed-list li[data-position="${cli.position}"]`).waitFor({ timeout: 1000 });
      await page.locator(`tr[data-position="${cli.position}"]`).waitFor({ timeout: 1000 });
      const seenAfter = Date.now() - started;
      assert.ok(seenAfter <= 1000, `seen after ${seenAfter} ms`);
      assert.match(
        await text(page.locator(`tr[data-position="${cli.position}"] .reason`)),
        /rotation by the CLI/,
      );
      await until(async () => (await lanes.count()) === lanesBefore + 2, 'two lanes more');

      // As of the event before the CLI's rotation: the console's key is still the ACTIVE one.
      const slider = page.getByLabel('As of');
      await slider.focus();
      await page.keyboard.press('ArrowLeft'); // the CLI's rotation itself
      await page.keyboard.press('ArrowLeft'); // the event before it
      const tag = page.locator('.asof-tag');
      await tag.waitFor();
      assert.match(await text(tag), new RegExp(`position ${rotated?.position}\\b`));
      const keyRow = page.locator(`tr[data-key="${consoleKey}"]`);
      await until(async () => (await text(keyRow.locator('.badge'))) === 'ACTIVE', 'the key ACTIVE then');
      assert.equal(await page.locator('.keys tbody tr').count(), lanesBefore, 'the keys as they were then');
      assert.equal(await keyRow.getByRole('button').count(), 0, 'no action on the past');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('disables a key and schedules its destruction from the console; screenshots of a timeline and the overview', async () => {
    const { context, page, problems } = await open();
    try {
      await signIn(page, tokens.admin ?? '');
      await openTimeline(page, `${T1}:orders`);
      await page.getByText('connected').waitFor();
      const first = (await apiHistory('name=tenant-1:orders'))[0]?.keys[0]?.metadataHash ?? '';
      const row = page.locator(`tr[data-key="${first}"]`);
      const act = async (button: string, confirm: string, reason: string) => {
        await row.getByRole('button', { name: button }).click();
        const dialog = page.getByRole('dialog');
        await dialog.getByLabel('Reason').fill(reason);
        await dialog.getByRole('button', { name: confirm }).click();
        await dialog.waitFor({ state: 'detached' });
      };
      await act('Disable…', 'Disable', 'suspected exposure in a backup');
      await until(async () => (await text(row.locator('.badge'))) === 'DISABLED', 'the key DISABLED');
      await act('Destroy…', 'Schedule destruction', 'exposure confirmed: shred it');
      await row.getByRole('button', { name: 'Cancel destruction…' }).waitFor();
      const written = (await apiHistory('name=tenant-1:orders')).slice(-2);
      assert.deepEqual(
        written.map((e) => [e.actor, e.reason]),
        [
          ['console-admin', 'suspected exposure in a backup'],
          ['console-admin', 'exposure confirmed: shred it'],
        ],
      );
      const last = written.at(-1)?.position;
      await page.locator(`.timeline .mark[data-position="${last}"]`).first().waitFor();
      await page.locator(`.timeline .mark[data-position="${last}"]`).first().focus();
      await page.locator('.tip').waitFor();
      mkdirSync(IMAGES, { recursive: true });
      await page.screenshot({ path: join(IMAGES, 'console-timeline.png'), fullPage: true });

      await page.getByRole('button', { name: 'All scopes' }).click();
      const due = page.locator('#destructions-title + table tbody tr');
      await due.first().waitFor();
      assert.equal(await due.count(), 1);
      await page.getByRole('button', { name: 'Run verify' }).click();
      await page.getByText('✓ intact').waitFor();
      await page.locator('.feed-list li').nth(1).waitFor();
      await page.screenshot({ path: join(IMAGES, 'console-overview.png'), fullPage: true });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('an audit-only principal sees no action buttons', async () => {
    const { context, page, problems } = await open();
    try {
      await signIn(page, tokens.auditor ?? '');
      await page.locator('tr[data-scope]').first().waitFor();
      assert.equal(await page.locator('tr[data-scope]').count(), 3);
      assert.equal(await page.locator('#new-scope').count(), 0);
      await openTimeline(page, `${T1}:orders`);
      await page.locator('.history tbody tr').first().waitFor();
      await page.locator('.keys tbody tr').first().waitFor();
      await page.locator('.mark').first().waitFor();
      const actions = page.locator('main button', { hasText: /Rotate|Disable|Enable|Destroy|Cancel/ });
      assert.deepEqual(await actions.allInnerTexts(), []);
      // The page has buttons (back to the scopes): the locator does find buttons.
      assert.ok((await page.locator('main button').count()) > 0);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('a one-custodian principal sees only its custodian', async () => {
    const { context, page, problems } = await open();
    try {
      await signIn(page, tokens.tenant ?? '');
      await page.locator('tr[data-scope]').first().waitFor();
      const listed = await page
        .locator('tr[data-scope]')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-scope')));
      assert.deepEqual(new Set(listed), new Set([`${T1}:orders`, `${T1}:billing`]));
      // Ledger-wide panels say what they need instead of failing.
      await page.getByText('Needs an audit grant over every custodian (*).').waitFor();
      await openTimeline(page, `${T1}:billing`);
      await page.getByRole('button', { name: 'Rotate key…' }).waitFor();
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('whoami answers every authenticated principal; list-scopes --custodian is checked on that custodian', async () => {
    assert.ok(served !== null);
    const ca = certs.pem(certs.caCert);
    const me = await httpsCall(served.url, 'POST', '/v1/whoami', {
      ca,
      token: tokens.encryptOnly ?? '',
      json: {},
    });
    assert.equal(me.status, 200, me.text);
    assert.deepEqual(me.json, { principal: 'app-1', grants: [`encrypt:${T1}`] });
    const anonymous = await httpsCall(served.url, 'POST', '/v1/whoami', { ca, json: {} });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.json.code, 'ERR_UNAUTHENTICATED');
    const other = await httpsCall(served.url, 'POST', '/v1/list-scopes', {
      ca,
      token: tokens.tenant ?? '',
      json: { custodian: 'name=tenant-2' },
    });
    assert.equal(other.status, 403, other.text);
    assert.equal(other.json.code, 'ERR_FORBIDDEN');
    const unknownField = await httpsCall(served.url, 'POST', '/v1/whoami', {
      ca,
      token: tokens.admin ?? '',
      json: { principal: 'someone-else' },
    });
    assert.equal(unknownField.status, 400);
    assert.equal(unknownField.json.code, 'ERR_INVALID_ARGUMENT');
    const asset = await httpsCall(served.url, 'GET', '/assets/nothing.js', { ca });
    assert.equal(asset.status, 404);
    assert.equal(asset.json.code, 'ERR_NOT_FOUND');
  });
});
