import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { requireBuiltCli, tempDirs } from '../helpers/cliHarness.js';
import { runDocCommands, tourCommands } from './docRunner.js';

const dirs = tempDirs('keyledger-readme-');
before(() => requireBuiltCli());
after(() => dirs.removeAll());

describe('README.md', () => {
  it('every command of the CLI tour runs, in order, as written', () => {
    const commands = tourCommands(new URL('../../README.md', import.meta.url).pathname);
    assert.ok(commands.length >= 25, `found ${commands.length} commands`);
    const ran = runDocCommands(dirs.make(), commands);
    assert.ok(ran >= commands.length - 1);
  });

  it('fails when a command errors where the doc shows success', () => {
    const failing = {
      where: 'here',
      command: 'keyledger rotate-managed-key',
      shown: null,
      showsError: false,
    };
    assert.throws(() => runDocCommands(dirs.make(), [failing]), /failed where the doc shows success/);
    assert.doesNotThrow(() => runDocCommands(dirs.make(), [{ ...failing, showsError: true }]));
  });
});
