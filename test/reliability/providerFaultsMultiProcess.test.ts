import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { resolveKeystoreConfig } from '../../src/providers/keystore/keystoreConfig.js';
import { KeystoreKeyProvider } from '../../src/providers/keystore/keystoreKeyProvider.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { WRONG_ANSWERS } from '../helpers/chaosProvider.js';
import { writeTestKeystore } from '../helpers/testKeystore.js';
import { RELIABILITY_FULL, scaled } from './reliabilityScale.js';

/**
 * Provider faults across processes (issue 15, part 3): PROCESSES ledgers on one sqlite file, each
 * with a ChaosProvider (test/fixtures/faultChild.ts) and an L1 of four keys, so that many lookups of
 * the known keys are answered by L2 (the keymeta view's wrapped material, unwrapped with the held
 * system key). With the provider erroring, hanging or slow: every encrypt and decrypt of a known
 * key succeeds without a provider call. Lookups of new scopes end, typed, near the resolver's
 * deadline (the slowest is measured against it). An absent key is recorded FAILED; with the
 * provider back, a refresh makes every such scope ACTIVE. Wrong answers (another scope's key, a
 * 16-byte key, other bytes under the known metadata) to rotate and refresh are refused with the
 * store head unchanged and the ACTIVE key kept, while the other processes keep loading.
 */

const CHILD = fileURLToPath(new URL('../fixtures/faultChild.ts', import.meta.url));
const PROCESSES = 4;
const DEADLINE_MS = 200;
/** A loaded 2-core machine delays timers and turns: the slack a call may take past its deadline. */
const SLACK_MS = 1500;
const LOAD = scaled(100, 2000);
const COLD = scaled(5, 50);
const PASSWORD = 'faults-Test1';
const CUST = Buffer.from('tenant-faults').toString('base64');
const KNOWN = ['a', 'b', 'c', 'd'];

type Line = Record<string, Record<string, unknown>>;

class FaultChild {
  readonly process: ChildProcessWithoutNullStreams;
  readonly #answers: Line[] = [];
  readonly #waiting: ((line: Line) => void)[] = [];
  stderr = '';
  readonly exited: Promise<void>;

  constructor(args: string[]) {
    this.process = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: 'pipe' });
    createInterface({ input: this.process.stdout }).on('line', (text) => {
      const line = JSON.parse(text) as Line;
      const next = this.#waiting.shift();
      if (next) next(line);
      else this.#answers.push(line);
    });
    this.process.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.exited = new Promise((done) => this.process.once('exit', () => done()));
  }

  next(): Promise<Line> {
    const line = this.#answers.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve, reject) => {
      this.#waiting.push(resolve);
      this.process.once('exit', (code) => reject(new Error(`child exited ${code}: ${this.stderr}`)));
    });
  }

  async ask(command: string): Promise<Record<string, unknown>> {
    this.process.stdin.write(`${command}\n`);
    const line = await this.next();
    return Object.values(line)[0] as Record<string, unknown>;
  }
}

describe('reliability: provider faults across processes, with L2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyledger-faults-mp-'));
  const db = join(dir, 'ledger.db');
  const keystorePath = join(dir, 'keys.p12');
  const passwordFile = join(dir, 'password');
  const corpusFile = join(dir, 'corpus');
  const children: FaultChild[] = [];

  after(async () => {
    for (const child of children) {
      if (child.process.exitCode === null) child.process.kill('SIGKILL');
      await child.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it(`${PROCESSES} processes, faulty providers, under load`, {
    timeout: RELIABILITY_FULL ? 1_800_000 : 240_000,
  }, async () => {
    writeTestKeystore(keystorePath, passwordFile, PASSWORD, ['stk-a']);
    // The ledger: four scopes, each rotated once, and ciphertexts under both keys of each.
    const store = SqliteEventStore.open(db, { pollIntervalMs: 5 });
    const provider = new GeneratedKeyProvider({
      systemKeys: new KeystoreKeyProvider(
        resolveKeystoreConfig(
          { path: keystorePath, password: { file: passwordFile }, systemKeyAlias: 'stk-a' },
          dir,
        ),
      ),
    });
    const ledger = await Ledger.open({ store, provider, actor: 'setup' });
    const corpus: Buffer[] = [];
    try {
      await ledger.initialise();
      for (const ns of KNOWN) {
        await ledger.admin.enableKeyManagement(CUST, ns);
        corpus.push(await ledger.envelope.encrypt(randomBytes(40), { custodian: CUST, namespaces: [ns] }));
        await ledger.admin.rotateManagedKey(CUST, ns);
        corpus.push(await ledger.envelope.encrypt(randomBytes(40), { custodian: CUST, namespaces: [ns] }));
      }
    } finally {
      await ledger.close();
      await store.close();
    }
    writeFileSync(corpusFile, corpus.map((ct) => ct.toString('base64')).join('\n'));

    const all = Array.from(
      { length: PROCESSES },
      (_, i) => new FaultChild([db, keystorePath, passwordFile, corpusFile, String(i), String(DEADLINE_MS)]),
    );
    children.push(...all);
    await Promise.all(all.map((child) => child.next()));
    const codes = new Set<string>();
    const counts = {
      wrongRecorded: 0,
      coldStk: 0,
      faultedLoads: 0,
      l2Hits: 0,
      l1Hits: 0,
      coldCalls: 0,
      wrongRefused: 0,
      maxOverMs: 0,
    };

    // A process that never used the system key, with the provider hanging, then down: every call
    // ends typed by its deadline (before the fix: hung as long as the provider, or an untyped error).
    // One process each: the held calls of `hang` go on when it ends, and bring the key along.
    for (const [i, mode] of ['hang', 'error'].entries()) {
      const a = await (all[i] as FaultChild).ask(`load ${mode} ${COLD}`);
      assert.equal(a.untyped, 0, `cold system key, ${mode}: ${JSON.stringify(a.failures)}`);
      assert.equal((a.failures as string[]).length, COLD, `cold system key, ${mode}: a call succeeded`);
      assert.ok(Number(a.maxMs) < DEADLINE_MS + SLACK_MS, `cold system key, ${mode}: ${a.maxMs} ms`);
      counts.maxOverMs = Math.max(counts.maxOverMs, Number(a.maxMs) - DEADLINE_MS);
      counts.coldStk += COLD;
    }
    // Warm-up with the provider up: the system key is held from now on (as in a process serving).
    for (const [i, a] of (await Promise.all(all.map((child) => child.ask(`load up ${LOAD}`)))).entries()) {
      assert.deepEqual(a.failures, [], `warm-up in process ${i}`);
    }

    // Known keys through L1 and L2 while the provider fails: all succeed, the provider is never asked.
    for (const mode of ['error', 'hang', 'slow']) {
      // Every L1 emptied first (CacheCleared, with the provider up): the load starts in L2.
      const cleared = await (all[0] as FaultChild).ask('clear');
      await Promise.all(all.map((child) => child.ask(`sync ${cleared.position}`)));
      const answers = await Promise.all(all.map((child) => child.ask(`load ${mode} ${LOAD}`)));
      for (const [i, a] of answers.entries()) {
        assert.deepEqual(a.failures, [], `load ${mode} in process ${i}`);
        assert.equal(a.providerCalls, 0, `load ${mode} in process ${i}: a known key went to the provider`);
        counts.faultedLoads += Number(a.ops);
        counts.l1Hits += Number(a.l1Hits);
        counts.l2Hits += Number(a.l2Hits);
      }
    }
    assert.ok(counts.l2Hits > 0, 'no lookup was answered by L2: the test did not reach it');

    // New scopes while the provider fails: each lookup ends, typed, by its deadline (plus slack).
    for (const mode of ['error', 'hang', 'slow', 'absent']) {
      const answers = await Promise.all(all.map((child) => child.ask(`cold ${mode} ${COLD}`)));
      for (const [i, a] of answers.entries()) {
        assert.equal(a.untyped, 0, `cold ${mode} in process ${i}: an untyped failure`);
        assert.equal(a.ok, 0, `cold ${mode} in process ${i}: a lookup succeeded with the provider failing`);
        const over = Number(a.maxMs) - DEADLINE_MS;
        counts.maxOverMs = Math.max(counts.maxOverMs, over);
        assert.ok(
          Number(a.maxMs) < DEADLINE_MS + SLACK_MS,
          `cold ${mode} in process ${i}: the slowest took ${Number(a.maxMs).toFixed(0)} ms (deadline ${DEADLINE_MS})`,
        );
        counts.coldCalls += Number(a.calls);
      }
    }

    // Wrong answers in one process at a time, the others loading meanwhile (they write nothing).
    for (const [i, child] of all.entries()) {
      for (const mode of WRONG_ANSWERS) {
        const others = all
          .filter((other) => other !== child)
          .map((other) => other.ask(`load up ${LOAD / 4}`));
        const a = await child.ask(`wrong ${mode}`);
        for (const other of await Promise.all(others)) assert.deepEqual(other.failures, []);
        assert.equal(
          a.headChanged,
          0,
          `${mode} in process ${i}: a refused answer wrote something: ${JSON.stringify(a)}`,
        );
        assert.equal(a.activeChanged, 0, `${mode} in process ${i}: the ACTIVE key changed`);
        counts.wrongRefused += (a.refused as string[]).length;
        counts.wrongRecorded += Number(a.recorded);
        for (const code of a.refused as string[]) codes.add(code);
      }
    }

    assert.ok(counts.wrongRefused > 0, 'no wrong answer was refused');

    // The provider back: every scope the faults left FAILED (or unknown) becomes ACTIVE on refresh.
    const refreshed = await Promise.all(all.map((child) => child.ask('refresh')));
    let failed = 0;
    for (const [i, r] of refreshed.entries()) {
      assert.equal(r.recovered, r.scopes, `process ${i}: ${JSON.stringify(r)}`);
      failed += Number(r.failedBefore);
    }
    assert.ok(
      failed > 0,
      `no scope was recorded FAILED: the absent answers were not recorded: ${JSON.stringify(refreshed)}`,
    );

    for (const child of all) child.process.stdin.end('exit\n');
    await Promise.all(all.map((child) => child.exited));
    for (const child of all) assert.equal(child.process.exitCode, 0, child.stderr);
    console.log(
      `provider faults (multi-process): ${PROCESSES} processes; ${counts.coldStk} calls needing a system key not yet held, provider hanging/down: all typed, by the deadline; ${counts.faultedLoads} encrypt/decrypt under error/hang/slow providers (L1 hits ${counts.l1Hits}, L2 hits ${counts.l2Hits}), 0 failed, 0 provider calls; ${counts.coldCalls} new-scope lookups under error/hang/slow/absent, 0 succeeded, 0 untyped, slowest ${counts.maxOverMs.toFixed(0)} ms past the ${DEADLINE_MS} ms deadline; ${counts.wrongRefused} wrong answers refused (${[...codes].join(', ')}), nothing written by a refusal, ${counts.wrongRecorded} refreshes recorded instead, 0 ACTIVE keys changed; ${failed} FAILED scopes recovered by refresh`,
    );
  });
});
