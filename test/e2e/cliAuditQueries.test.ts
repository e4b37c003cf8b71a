import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { CLI_BIN, cliHarness, requireBuiltCli, storeHead } from '../helpers/cliHarness.js';

const TENANT = Buffer.from('tenant-1').toString('base64');
const SCOPE = `${TENANT}:orders`;
const cli = cliHarness({ errorAtStart: true });
const { ok } = cli;
const ENV = cli.env;

/** A refusal (see cliHarness) that also prints nothing on stdout: no half-written result. */
async function refused(cwd: string, args: readonly string[], code: string): Promise<void> {
  const run = await cli.refused(cwd, args, code);
  assert.equal(run.stdout, '');
}

/** Resolves with the child's exit code (or signal), rejecting if it takes longer than `ms`. */
function exited(child: ChildProcess, ms = 20_000): Promise<number | string | null> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('child did not exit in time')), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal);
    });
  });
}

/** Resolves with the child's stdout once it holds `lines` lines. */
function linesOf(child: ChildProcess, lines: number, ms = 20_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`fewer than ${lines} lines: ${text}`)), ms);
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const got = text.split('\n').filter((l) => l.length > 0);
      if (got.length >= lines) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

let dir: string;
let firstHash: string;
let secondHash: string;
let afterEnable: bigint;
let enabledAt: string;

before(() => {
  requireBuiltCli();
  dir = mkdtempSync(join(tmpdir(), 'keyledger-e2e-audit-'));
  ok(dir, ['init']);
  ok(dir, ['enable-key-management', SCOPE, '--reason', 'onboarding']);
  ok(dir, ['rotate-managed-key', SCOPE, '--reason', 'yearly']);
  const keys = JSON.parse(ok(dir, ['show-key-status', SCOPE, '--json'])) as { metadataHash: string }[];
  firstHash = keys[0]?.metadataHash ?? '';
  secondHash = keys[1]?.metadataHash ?? '';
  ok(dir, ['disable-managed-key', SCOPE, firstHash, '--reason', 'leaked']);
  const history = JSON.parse(ok(dir, ['history', SCOPE, '--json'])) as {
    position: string;
    occurredAt: string;
  }[];
  afterEnable = BigInt(history[0]?.position ?? '0');
  enabledAt = history[0]?.occurredAt ?? '';
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('keyledger history', () => {
  it('lists a scope, or one key with its material wraps, as a table or JSON', () => {
    const scope = JSON.parse(ok(dir, ['history', SCOPE, '--json'])) as {
      type: string;
      reason: string | null;
    }[];
    assert.deepEqual(
      scope.map((e) => [e.type, e.reason]),
      [
        ['KeyManagementEnabled', 'onboarding'],
        ['ManagedKeyRotated', 'yearly'],
        ['ManagedKeyDisabled', 'leaked'],
      ],
    );
    const key = JSON.parse(ok(dir, ['history', SCOPE, '--key', secondHash, '--json'])) as {
      type: string;
      material: { stkIdentity: string } | null;
    }[];
    assert.deepEqual(
      key.map((e) => e.type),
      ['KeyMaterialWrapped', 'ManagedKeyRotated'],
    );
    assert.match(key[0]?.material?.stkIdentity ?? '', /^[0-9a-f]{16}$/);
    const table = ok(dir, ['history', SCOPE, '--key', firstHash]);
    assert.match(table, /^POSITION +TIME +EVENT +CHANGE +ACTOR +REASON/);
    assert.match(table, /ManagedKeyDisabled .*INACTIVE → DISABLED +e2e +leaked/);
    assert.doesNotMatch(table, /ManagedKeyRotated.*new → ACTIVE$/m);
  });

  it('refuses an unknown scope, an unknown key, a malformed hash and foreign options', async () => {
    await refused(dir, ['history', `${TENANT}:returns`], 'ERR_SCOPE_NOT_FOUND');
    await refused(dir, ['history', SCOPE, '--key', 'A'.repeat(43)], 'ERR_KEY_NOT_FOUND');
    await refused(dir, ['history', SCOPE, '--key', 'nope'], 'ERR_INVALID_METADATA');
    await refused(dir, ['history', 'not base64!'], 'ERR_INVALID_CUSTODIAN');
    await refused(dir, ['history'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['history', SCOPE, '--at', '3'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['rotate-managed-key', SCOPE, '--since', '2026-01-01'], 'ERR_INVALID_ARGUMENT');
  });
});

describe('keyledger show-key-status --at', () => {
  it('shows the keys as they were at a position and at a time', () => {
    const atEnable = JSON.parse(
      ok(dir, ['show-key-status', SCOPE, '--at', String(afterEnable), '--json']),
    ) as {
      position: string;
      marker: string;
      keys: { metadataHash: string; state: string }[];
    };
    assert.equal(atEnable.position, String(afterEnable));
    assert.equal(atEnable.marker, 'ACTIVE');
    assert.deepEqual(
      atEnable.keys.map((k) => [k.metadataHash, k.state]),
      [[firstHash, 'ACTIVE']],
    );
    const byTime = JSON.parse(ok(dir, ['show-key-status', SCOPE, '--at', enabledAt, '--json'])) as {
      position: string;
      keys: { state: string }[];
    };
    assert.equal(byTime.position, String(afterEnable));
    assert.deepEqual(
      byTime.keys.map((k) => k.state),
      ['ACTIVE'],
    );
    const now = ok(dir, ['show-key-status', SCOPE, '--at', new Date().toISOString()]);
    assert.match(now, /as of .* \(events up to position \d+\): marker ACTIVE/);
    assert.match(now, new RegExp(`DISABLED +${firstHash}`));
    assert.match(now, new RegExp(`ACTIVE +${secondHash}`));
  });

  it('refuses a future, a too early, an unparseable moment and an unknown scope', async () => {
    const future = new Date(Date.now() + 3_600_000).toISOString();
    await refused(dir, ['show-key-status', SCOPE, '--at', future], 'ERR_AS_OF_IN_FUTURE');
    await refused(dir, ['show-key-status', SCOPE, '--at', '999999'], 'ERR_AS_OF_IN_FUTURE');
    await refused(dir, ['show-key-status', SCOPE, '--at', '2000-01-01T00:00:00Z'], 'ERR_AS_OF_BEFORE_LEDGER');
    await refused(dir, ['show-key-status', SCOPE, '--at', '0'], 'ERR_AS_OF_BEFORE_LEDGER');
    await refused(dir, ['show-key-status', SCOPE, '--at', 'yesterday'], 'ERR_INVALID_AS_OF');
    await refused(dir, ['show-key-status', SCOPE, '--at', '2026-01-01'], 'ERR_INVALID_AS_OF');
    await refused(dir, ['show-key-status', `${TENANT}:returns`, '--at', '1'], 'ERR_SCOPE_NOT_FOUND');
  });
});

describe('keyledger watch', () => {
  it('prints one JSON line per event, without wrapped material, and survives `| head`', async () => {
    const wrapped: string[] = [];
    const store = SqliteEventStore.open(join(dir, '.keyledger', 'ledger.db'));
    for await (const e of store.readAll())
      if (e.type === 'KeyMaterialWrapped') wrapped.push(String((e.data as { wrapped: string }).wrapped));
    await store.close();
    assert.ok(wrapped.length > 0);
    const pipeline = spawn('sh', ['-c', `"${process.execPath}" "${CLI_BIN}" watch --from start | head -3`], {
      cwd: dir,
      env: ENV,
    });
    let stderr = '';
    pipeline.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exit = exited(pipeline);
    const lines = await linesOf(pipeline, 3);
    // watch learns that head has gone when it next writes: give it an event to write.
    ok(dir, ['refresh-managed-keys', SCOPE]);
    assert.equal(await exit, 0);
    assert.equal(stderr, '');
    const events = lines.map((l) => JSON.parse(l) as { position: string; type: string; data: object });
    assert.deepEqual(
      events.map((e) => e.position),
      ['1', '2', '3'],
    );
    assert.equal(events[0]?.type, 'SystemKeyRecorded');
    for (const line of lines) for (const w of wrapped) assert.ok(!line.includes(w), 'no wrapped material');
    assert.ok(lines.some((l) => l.includes('"wrapped":"[redacted]"')));
  });

  it('follows live events from a position, filtered by type and scope, until SIGTERM (exit 0)', async () => {
    const from = await storeHead(dir);
    const child = spawn(
      process.execPath,
      [
        CLI_BIN,
        'watch',
        '--from',
        String(from),
        '--types',
        'ManagedKeyRotated,ManagedKeyDisabled',
        '--scope',
        SCOPE,
      ],
      { cwd: dir, env: ENV },
    );
    const exit = exited(child);
    try {
      const lines = linesOf(child, 1);
      ok(dir, ['enable-key-management', `${TENANT}:billing`]);
      ok(dir, ['rotate-managed-key', `${TENANT}:billing`]);
      ok(dir, ['rotate-managed-key', SCOPE, '--reason', 'live']);
      const [line] = await lines;
      const event = JSON.parse(line ?? '') as {
        position: string;
        type: string;
        data: { namespace: string };
        meta: { reason: string };
      };
      assert.equal(event.type, 'ManagedKeyRotated');
      assert.equal(event.data.namespace, 'orders');
      assert.equal(event.meta.reason, 'live');
      assert.ok(BigInt(event.position) > from);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exit, 0);
  });

  it('refuses unknown event types, a bad --from or --scope, and arguments', async () => {
    await refused(dir, ['watch', '--types', 'KeyRotated'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['watch', '--types', 'ManagedKeyRotated,'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['watch', '--from', 'yesterday'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['watch', '--scope', 'not base64!'], 'ERR_INVALID_CUSTODIAN');
    await refused(dir, ['watch', SCOPE], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['watch', '--at', '3'], 'ERR_INVALID_ARGUMENT');
  });
});

describe('keyledger metrics', () => {
  it('reports keys per state and transitions per day, for the ledger or a scope', () => {
    const today = new Date().toISOString().slice(0, 10);
    const all = JSON.parse(ok(dir, ['metrics', '--json'])) as {
      until: string;
      days: { date: string; keys: Record<string, number>; transitions: Record<string, number> }[];
    };
    assert.equal(all.until, today);
    const last = all.days.at(-1);
    assert.ok(last !== undefined);
    assert.ok((last.keys.DISABLED ?? 0) >= 1);
    assert.ok((last.transitions['NEW->ACTIVE'] ?? 0) >= 2);
    const scope = JSON.parse(ok(dir, ['metrics', SCOPE, '--since', today, '--until', today, '--json'])) as {
      days: { keys: Record<string, number> }[];
    };
    assert.equal(scope.days.length, 1);
    assert.equal(scope.days[0]?.keys.DISABLED, 1);
    assert.match(
      ok(dir, ['metrics', SCOPE]),
      /^DATE +ACTIVE +INACTIVE +DISABLED +FAILED +DESTROYED +EVENTS +TRANSITIONS/,
    );
  });

  it('refuses bad dates, an inverted window and an unknown scope', async () => {
    await refused(dir, ['metrics', '--since', '2026-02-30'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['metrics', '--since', 'last week'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['metrics', '--since', '2026-03-02', '--until', '2026-03-01'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['metrics', `${TENANT}:returns`], 'ERR_SCOPE_NOT_FOUND');
    await refused(dir, ['metrics', SCOPE, 'extra'], 'ERR_INVALID_ARGUMENT');
  });
});
