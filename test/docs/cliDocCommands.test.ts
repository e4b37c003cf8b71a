import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { requireBuiltCli, tempDirs } from '../helpers/cliHarness.js';
import { runDocCommands, sessionCommands } from './docRunner.js';

const dirs = tempDirs('keyledger-clidoc-');
before(() => requireBuiltCli());
after(() => dirs.removeAll());

describe('docs/cli.md', () => {
  it('every `$ keyledger` example runs, in order; those shown succeeding succeed', () => {
    const commands = sessionCommands(new URL('../../docs/cli.md', import.meta.url).pathname);
    assert.ok(commands.length >= 35, `found ${commands.length} commands`);
    assert.ok(commands.some((c) => c.showsError) && commands.some((c) => !c.showsError));
    runDocCommands(dirs.make(), commands);
  });
});
