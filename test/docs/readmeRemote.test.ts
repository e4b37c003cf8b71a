import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI_BIN, cliEnv, requireBuiltCli, tempDirs } from '../helpers/cliHarness.js';
import { type ServeProcess, startServeProcess, writeServeConfig } from '../helpers/serveProcess.js';
import { makeTestCertificates, type TestCertificates } from '../helpers/testCertificates.js';
import { makeJwtIssuer } from '../helpers/testJwt.js';
import { DocSession, tourCommands } from './docRunner.js';

/**
 * Issue 12: the README tour against `keyledger serve`. Two ledgers walk the tour in lockstep: one
 * with every command local (as readmeCommands.test.ts runs it), one whose `keyledger` adds
 * `--server <url> --token-file tour.token --ca-file ca.pem` (an admin API token made with `token
 * create --principal alice`) against a server on that ledger. Each command must exit the same way with the same
 * stdout, after normalising what differs between two ledgers (key ids, hashes, times, ids, tokens).
 * The token's principal is `alice`, the local runs' actor, so the actor columns agree as they are.
 * Commands on local files (init, `--out`, `verify --file`), `--help` and `completion` run locally,
 * as docs/cli.md "Remote (--server)" says.
 */

/** What differs between two ledgers walking the same tour (docRunner's KINDS, plus API tokens). */
const VOLATILE: readonly [RegExp, string][] = [
  [/klt_[A-Za-z0-9_.-]+/g, '<token>'],
  [/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, '<uuid>'],
  [/\b[0-9a-f]{64}\b/g, '<hex64>'],
  [/\b[0-9a-f]{32}\b/g, '<keyId>'],
  [/\b[0-9a-f]{16}\b/g, '<hex16>'],
  [/(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g, '<hash>'],
  [/\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z\b/g, '<time>'],
  [/(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{10}…/g, '<hash…>'],
  // show-key-status's AGE column moves between the two walks (and with it the column's width).
  [/(?<= {2})\d+[dhms](?: \d+[dhms])?(?= {2})/g, '<age>'],
  [/ {2,}/g, '  '],
];

function normalise(text: string): string {
  let out = text;
  for (const [pattern, replacement] of VOLATILE) out = out.replace(pattern, replacement);
  return out;
}

/** Commands whose stdout is not the ledger's but the process's own (cache and call counters). */
const PROCESS_LOCAL = /^keyledger metrics\b/;

describe('README.md tour against keyledger serve (--server, --token-file)', () => {
  const dirs = tempDirs('keyledger-readme-remote-');
  let certs: TestCertificates;
  let served: ServeProcess | undefined;
  before(() => requireBuiltCli());
  after(async () => {
    await served?.stop();
    certs?.remove();
    dirs.removeAll();
  });

  it('every tour command that can run remotely exits as locally, with the same stdout', async () => {
    const commands = tourCommands(new URL('../../README.md', import.meta.url).pathname).filter(
      (c) => !c.command.includes('esdb://'),
    );
    assert.equal(commands[0]?.command, 'keyledger init');
    const localDir = dirs.make();
    const remoteDir = dirs.make();
    const local = new DocSession(localDir);
    const remote = new DocSession(remoteDir);
    // The remote session's `keyledger`: --server once `.bin/server` names one, except for the commands
    // on local files (init, --out), --help and completion.
    const serverFile = join(remoteDir, '.bin', 'server');
    const wrapper = join(remoteDir, '.bin', 'keyledger');
    writeFileSync(
      wrapper,
      `#!/bin/bash
node="${process.execPath}"; cli="${CLI_BIN}"
for a in "$@"; do case "$a" in init|--out|--help|completion) exec "$node" "$cli" "$@";; esac; done
[ -f "${serverFile}" ] || exec "$node" "$cli" "$@"
exec "$node" "$cli" "$@" --server "$(cat "${serverFile}")" --token-file tour.token --ca-file ca.pem
`,
    );
    chmodSync(wrapper, 0o755);

    const both = (command: string) => {
      const doc = { where: 'setup', command, shown: null, showsError: false };
      const l = local.run(doc);
      const r = remote.run(doc);
      assert.equal(l.code, 0, `${command}: ${l.stderr}`);
      assert.equal(r.code, 0, `${command}: ${r.stderr}`);
      return r.stdout;
    };
    both('keyledger init');
    // The same token event on both ledgers, so their positions stay in step.
    const made = both(`keyledger token create --principal alice --grant 'admin:*' --json`);
    writeFileSync(join(remoteDir, 'tour.token'), `${JSON.parse(made).token}\n`, { mode: 0o600 });

    certs = makeTestCertificates();
    writeFileSync(join(remoteDir, 'ca.pem'), certs.pem(certs.caCert));
    const issuer = await makeJwtIssuer();
    writeServeConfig(remoteDir, certs, issuer.jwks, {
      limits: { shutdownMs: 2000 },
    });
    served = await startServeProcess(remoteDir, [], cliEnv('server'));
    writeFileSync(serverFile, served.url);

    let compared = 0;
    for (const doc of commands.slice(1)) {
      // Side by side: the two ledgers are independent.
      const [l, r] = await Promise.all([local.runAsync(doc), remote.runAsync(doc)]);
      const what = `${doc.where}: ${r.command}`;
      assert.equal(r.code, l.code, `${what}\nlocal: ${l.stderr}\nremote: ${r.stderr}`);
      if (PROCESS_LOCAL.test(doc.command)) continue;
      assert.equal(
        normalise(r.stdout.replaceAll(remoteDir, '<dir>')),
        normalise(l.stdout.replaceAll(localDir, '<dir>')),
        what,
      );
      compared++;
    }
    assert.ok(compared >= commands.length - 3, `compared ${compared} of ${commands.length}`);
    // The remote ledger's events were written by the server under the token's principal.
    const history = remote.run({
      where: 'check',
      command: 'keyledger history name=tenant-1:orders --json',
      shown: null,
      showsError: false,
    });
    assert.equal(history.code, 0, history.stderr);
    const actors = new Set((JSON.parse(history.stdout) as { actor: string }[]).map((e) => e.actor));
    assert.ok(actors.has('alice'), [...actors].join(','));
    assert.equal(await served.stop(), 0, served.stderr());
    served = undefined;
  });
});
