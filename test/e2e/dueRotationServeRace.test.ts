import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { keyScope } from '../../src/domain/identities.js';
import { streamNames } from '../../src/journal/streamNames.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { cliHarness, ledgerDb, requireBuiltCli, tempDirs } from '../helpers/cliHarness.js';
import { type ServeProcess, startServeProcess, writeServeConfig } from '../helpers/serveProcess.js';
import { makeTestCertificates } from '../helpers/testCertificates.js';
import { makeJwtIssuer } from '../helpers/testJwt.js';

/**
 * Issue 16: several `keyledger serve` processes on one store never double-rotate a scope. Two real
 * servers on one sqlite file, each with its due-rotation timer on (every 1 s), a default policy
 * rotating every 3 s, N scopes: for the run's whole length every scope's rotations are at least a
 * period apart (exactly one rotation per due scope per period), read from the store's history, and
 * what the servers logged as done is exactly what the history holds.
 */
const { ok, env: ENV } = cliHarness();
const T1 = Buffer.from('tenant-1').toString('base64');
const SCOPES = Array.from({ length: 12 }, (_, i) => keyScope(T1, `table-${i}`));
const PERIOD_MS = 3000;
const RUN_MS = 8000;

interface Logged {
  readonly msg?: string;
  readonly results?: readonly { target: string; kind: string; outcome: string }[];
}

function loggedRuns(served: ServeProcess): Logged[] {
  return served
    .stderr()
    .split('\n')
    .flatMap((line) => {
      try {
        const parsed = JSON.parse(line) as Logged;
        return parsed.msg === 'rotate-due-keys' ? [parsed] : [];
      } catch {
        return [];
      }
    });
}

describe('keyledger serve: two servers racing on due rotations', () => {
  const dirs = tempDirs('kl-serve-due-');
  after(() => dirs.removeAll());

  it('one rotation per due scope per period, however the two timers interleave', async (t) => {
    requireBuiltCli();
    const dir = dirs.make();
    ok(dir, ['init']);
    const certs = makeTestCertificates();
    const issuer = await makeJwtIssuer();
    writeServeConfig(dir, certs, issuer.jwks, {
      rotateDueKeys: { every: '1s' },
      limits: { shutdownMs: 2000 },
    });
    ok(dir, ['enable-key-management', ...SCOPES.map((s) => `${s.custodian}:${s.namespace}`)]);
    ok(dir, ['set-rotation-policy', '@default', '--period', `${PERIOD_MS / 1000}s`]);
    const servers = await Promise.all([startServeProcess(dir, [], ENV), startServeProcess(dir, [], ENV)]);
    t.after(() => Promise.all(servers.map((s) => s.stop())));
    await sleep(RUN_MS);
    await Promise.all(servers.map((s) => s.stop()));

    const names = streamNames('kl-');
    const store = SqliteEventStore.open(ledgerDb(dir));
    t.after(() => store.close());
    let rotations = 0;
    for (const scope of SCOPES) {
      const activations = (await store.readStream(names.scope(scope)))
        .filter((e) => e.type === 'KeyManagementEnabled' || e.type === 'ManagedKeyRotated')
        .map((e) => ({ type: e.type, at: Date.parse((e.metadata as { occurredAt: string }).occurredAt) }));
      const rotated = activations.filter((a) => a.type === 'ManagedKeyRotated');
      assert.ok(rotated.length >= 1, `${scope.namespace}: never rotated in ${RUN_MS} ms`);
      // At most one rotation per period: each one at least a period after the key it replaced
      // became ACTIVE (a second server rotating the same due scope would put two inside one).
      for (let i = 1; i < activations.length; i++) {
        const gap = (activations[i]?.at ?? 0) - (activations[i - 1]?.at ?? 0);
        assert.ok(
          gap >= PERIOD_MS,
          `${scope.namespace}: rotated ${gap} ms after the previous key became ACTIVE`,
        );
      }
      rotations += rotated.length;
    }
    // What the servers say they did is what the history holds; a server that lost a race says not-due.
    const outcomes = servers.map((s) =>
      loggedRuns(s).flatMap((run) => (run.results ?? []).filter((r) => r.kind === 'rotate-key')),
    );
    const done = outcomes.map((o) => o.filter((r) => r.outcome === 'done').length);
    const notDue = outcomes.map((o) => o.filter((r) => r.outcome === 'not-due').length);
    for (const o of outcomes) {
      assert.ok(
        o.every((r) => r.outcome === 'done' || r.outcome === 'not-due'),
        JSON.stringify(o.filter((r) => r.outcome !== 'done' && r.outcome !== 'not-due')),
      );
    }
    assert.equal((done[0] ?? 0) + (done[1] ?? 0), rotations, 'rotations logged as done = rotations recorded');
    t.diagnostic(
      `${rotations} rotations; done per server ${done.join(' / ')}; lost races (not-due) ${notDue.join(' / ')}`,
    );
  });
});
