import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatScope, keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { resolveKeystoreConfig } from '../../src/providers/keystore/keystoreConfig.js';
import { KeystoreKeyProvider } from '../../src/providers/keystore/keystoreKeyProvider.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { LineChild } from '../helpers/lineChild.js';
import { writeTestKeystore } from '../helpers/testKeystore.js';
import { scaled } from '../reliability/reliabilityScale.js';

/**
 * A key never serves two scopes, across processes (issue 16): two keyledger processes on one sqlite
 * file import the same keystore alias into two scopes at the same moment, round after round. The
 * claim stream (src/domain/decideKeyClaim.ts) lets exactly one stand; the other gets
 * ERR_KEY_IN_OTHER_SCOPE naming the winner, and wrote nothing. Then a process killed between its
 * claim and its import event: the retry of the same import finishes it.
 */

const CHILD = fileURLToPath(new URL('../fixtures/importChild.ts', import.meta.url));
const CUST = Buffer.from('tenant-1').toString('base64');
const ROUNDS = scaled(12, 60);
const ALIASES = Array.from({ length: ROUNDS + 1 }, (_, i) => `legacy-${i}`);

type Answer =
  | { readonly ok: true; readonly keyId: string; readonly checksum: string }
  | { readonly error: string; readonly otherScope: string | null };

function importChild(path: string, env: Record<string, string> = {}): LineChild {
  return new LineChild(CHILD, [path, dir], env);
}

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-import-race-'));
  writeTestKeystore(join(dir, 'keystore.p12'), join(dir, 'keystore.pw'), 'race-Test1', ['stk', ...ALIASES]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function provider(): KeystoreKeyProvider {
  return new KeystoreKeyProvider(
    resolveKeystoreConfig(
      {
        path: join(dir, 'keystore.p12'),
        password: { file: join(dir, 'keystore.pw') },
        systemKeyAlias: 'stk',
      },
      dir,
    ),
  );
}

async function openLedger(path: string) {
  const store = SqliteEventStore.open(path, { pollIntervalMs: 5 });
  const ledger = await Ledger.open({ store, provider: provider(), checkpointEvery: 0 });
  return {
    store,
    ledger,
    close: async () => {
      await ledger.close();
      await store.close();
    },
  };
}

describe('import-managed-key in two processes on one sqlite store', () => {
  it(`one alias into two scopes at once, ${ROUNDS} times: exactly one succeeds, the other gets ERR_KEY_IN_OTHER_SCOPE`, async (t) => {
    const path = join(dir, 'race.db');
    const parent = await openLedger(path);
    t.after(parent.close);
    await parent.ledger.initialise();
    const children = [importChild(path), importChild(path)];
    t.after(() => Promise.all(children.map((c) => c.stop())));
    await Promise.all(children.map((c) => c.ready()));
    const scopes = ['a', 'b'].map((ns) => keyScope(CUST, ns));
    const wins = [0, 0];
    for (let round = 0; round < ROUNDS; round++) {
      const alias = ALIASES[round] ?? '';
      const head = await parent.store.headPosition();
      await Promise.all(children.map((c) => c.ask(`wait ${head}`)));
      const go = Date.now() + 150;
      const answers = await Promise.all(
        children.map((c, i) => c.ask<Answer>(`import ${scopes[i]?.namespace} ${alias} ${go}`)),
      );
      const winners = answers.flatMap((a, i) => ('ok' in a ? [i] : []));
      assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify(answers)}`);
      const w = winners[0] ?? 0;
      wins[w] = (wins[w] ?? 0) + 1;
      const won = answers[w] as Extract<Answer, { ok: true }>;
      const lost = answers[1 - w] as Extract<Answer, { error: string }>;
      const winner = scopes[w] ?? keyScope(CUST, 'a');
      const loser = scopes[1 - w] ?? keyScope(CUST, 'b');
      assert.equal(lost.error, 'ERR_KEY_IN_OTHER_SCOPE', `round ${round}`);
      assert.equal(lost.otherScope, formatScope(winner), `round ${round}`);
      // Nothing half-written: one claim, the winner's; the loser's scope never saw the key.
      const claim = await parent.store.readStream(parent.ledger.streamNames.keyClaim(won.checksum));
      assert.deepEqual(
        claim.map((e) => e.data),
        [{ ...winner, keyId: won.keyId, checksum: won.checksum }],
      );
      for await (const e of parent.store.readAll({ after: head })) {
        assert.notEqual(
          e.streamName,
          parent.ledger.streamNames.scope(loser),
          `round ${round}: loser wrote ${e.type}`,
        );
      }
    }
    await parent.ledger.waitForPosition(await parent.store.headPosition());
    for (const scope of scopes) {
      const checksums = (await parent.ledger.admin.getManagedKeys(scope.custodian, scope.namespace)).map(
        (k) => k.checksum,
      );
      assert.equal(new Set(checksums).size, checksums.length);
    }
    const a = new Set((await parent.ledger.admin.getManagedKeys(CUST, 'a')).map((k) => k.checksum));
    for (const k of await parent.ledger.admin.getManagedKeys(CUST, 'b')) assert.ok(!a.has(k.checksum));
    assert.equal(
      (await parent.ledger.admin.getManagedKeys(CUST, 'a')).length +
        (await parent.ledger.admin.getManagedKeys(CUST, 'b')).length,
      ROUNDS,
    );
    t.diagnostic(`wins per process: ${wins.join(' / ')}`);
    assert.equal((await parent.ledger.verify()).ok, true);
  });

  it('a process SIGKILLed between its claim and its import event: the retry of the same import finishes it', async (t) => {
    const path = join(dir, 'crash.db');
    const parent = await openLedger(path);
    t.after(parent.close);
    await parent.ledger.initialise();
    const alias = ALIASES[ROUNDS] ?? '';
    const victim = importChild(path, { KEYLEDGER_TEST_KILL_BEFORE_IMPORT: '1' });
    t.after(() => victim.stop());
    await victim.ready();
    victim.send(`import a ${alias} 0`);
    await victim.exited;
    assert.equal(victim.signal, 'SIGKILL');
    await parent.ledger.waitForPosition(await parent.store.headPosition());
    // The resumable state: the claim (and the material) stand, no import event.
    assert.equal((await parent.ledger.admin.getManagedKeys(CUST, 'a')).length, 0);
    const head = await parent.store.headPosition();
    const other = importChild(path);
    t.after(() => other.stop());
    await other.ready();
    await other.ask(`wait ${head}`);
    const refused = await other.ask<Answer>(`import b ${alias} 0`);
    assert.deepEqual(refused, {
      error: 'ERR_KEY_IN_OTHER_SCOPE',
      otherScope: formatScope(keyScope(CUST, 'a')),
    });
    assert.equal(await parent.store.headPosition(), head, 'the refusal wrote nothing');
    const retried = await other.ask<Answer>(`import a ${alias} 0`);
    assert.ok('ok' in retried, JSON.stringify(retried));
    const claim = await parent.store.readStream(parent.ledger.streamNames.keyClaim(retried.checksum));
    assert.equal(claim.length, 1);
    await parent.ledger.waitForPosition(await parent.store.headPosition());
    assert.deepEqual(
      (await parent.ledger.admin.getManagedKeys(CUST, 'a')).map((k) => k.state),
      ['INACTIVE'],
    );
    assert.equal((await parent.ledger.verify()).ok, true);
  });
});
