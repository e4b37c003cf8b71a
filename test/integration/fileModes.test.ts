import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { cliHarness, requireBuiltCli } from '../helpers/cliHarness.js';

/**
 * Issue 11, finding 6 (files): the ledger's data is created private to its user, and what was made
 * looser before (or by hand) is named in a warning rather than silently used.
 */
const modeOf = (path: string) => statSync(path).mode & 0o777;

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-modes-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `open` and returns the KEYLEDGER_FILE_MODE warnings it emitted. */
async function warningsOf(open: () => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  const listener = (warning: Error & { code?: string }) => {
    if (warning.code === 'KEYLEDGER_FILE_MODE') seen.push(warning.message);
  };
  process.on('warning', listener);
  try {
    await open();
    // process.emitWarning delivers on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', listener);
  }
  return seen;
}

async function touch(path: string): Promise<void> {
  const store = SqliteEventStore.open(path);
  try {
    await store.append(
      'kl-test',
      [{ eventId: crypto.randomUUID(), type: 'T', data: {}, metadata: {} }],
      'any',
    );
  } finally {
    await store.close();
  }
}

describe('ledger file modes (issue 11, finding 6)', () => {
  it('sqlite creates its folder 0700 and the .db, -wal and -shm files 0600, whatever the umask', async () => {
    const previous = process.umask(0o022);
    try {
      const path = join(dir, 'new', 'nested', 'ledger.db');
      const store = SqliteEventStore.open(path);
      try {
        await store.append(
          'kl-test',
          [{ eventId: crypto.randomUUID(), type: 'T', data: {}, metadata: {} }],
          'any',
        );
        assert.equal(modeOf(join(dir, 'new', 'nested')), 0o700);
        assert.equal(modeOf(join(dir, 'new')), 0o700);
        for (const file of [path, `${path}-wal`, `${path}-shm`]) assert.equal(modeOf(file), 0o600, file);
      } finally {
        await store.close();
      }
    } finally {
      process.umask(previous);
    }
  });

  it('an existing looser file or folder is kept but named in a warning (once per process)', async () => {
    const folder = join(dir, 'shared');
    mkdirSync(folder, { mode: 0o700 });
    const path = join(folder, 'ledger.db');
    await touch(path);
    assert.deepEqual(await warningsOf(() => touch(path)), [], 'private files: no warning');
    chmodSync(path, 0o644);
    chmodSync(folder, 0o775);
    const warnings = await warningsOf(() => touch(path));
    assert.equal(warnings.length, 2, warnings.join('\n'));
    assert.match(warnings.join('\n'), new RegExp(`${folder} is writable by group or others \\(mode 0775\\)`));
    assert.match(warnings.join('\n'), new RegExp(`${path} is accessible by group or others \\(mode 0644\\)`));
    assert.equal(modeOf(path), 0o644, 'an existing mode is the operator’s: not changed');
    assert.deepEqual(await warningsOf(() => touch(path)), [], 'warned once');
  });

  it('init writes the config 0600 and the ledger 0600 in a 0700 .keyledger/', () => {
    requireBuiltCli();
    const cli = cliHarness();
    const project = join(dir, 'project');
    mkdirSync(project, { mode: 0o755 });
    cli.ok(project, ['init']);
    assert.equal(modeOf(join(project, 'keyledger.config.json')), 0o600);
    assert.equal(modeOf(join(project, '.keyledger')), 0o700);
    for (const name of ['ledger.db', 'keystore.p12', 'keystore.pass']) {
      assert.equal(modeOf(join(project, '.keyledger', name)), 0o600, name);
    }
  });

  it('a keystore password file others can read is refused, naming the file and its mode', async () => {
    requireBuiltCli();
    const cli = cliHarness();
    const project = join(dir, 'loose-password');
    mkdirSync(project, { mode: 0o700 });
    cli.ok(project, ['init']);
    const file = join(project, '.keyledger', 'keystore.pass');
    chmodSync(file, 0o644);
    // enable-key-management needs the system key, so it reads the password file.
    const run = await cli.refused(project, ['enable-key-management', '*'], 'ERR_INVALID_CONFIG', 2);
    assert.match(run.stderr, new RegExp(`${file} is accessible by group or others \\(mode 0644\\)`));
    chmodSync(file, 0o600);
    cli.ok(project, ['enable-key-management', '*']);
  });
});
