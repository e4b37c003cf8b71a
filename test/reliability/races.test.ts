import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { emptyKeymetaView, evolveKeymeta, scopeOf } from '../../projections/keymeta.js';
import { isLedgerEventType, type LedgerEvent, parseLedgerEvent } from '../../src/domain/events.js';
import { keyScope } from '../../src/domain/identities.js';
import { canTransition, isUsableForDecrypt, type KeyState } from '../../src/domain/keyState.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { openEventStore } from '../../src/store/storeUrl.js';
import { writeTestKeystore } from '../helpers/testKeystore.js';
import { RELIABILITY_FULL, scaled } from './reliabilityScale.js';

/**
 * Races (issue 15, part 2): 8 processes (test/fixtures/raceChild.ts) run random admin operations,
 * encrypts and decrypts on three scopes of one ledger for a fixed time, on sqlite (one new file)
 * and on the EventStoreDB test server (one server process, scripts/esdb-test-server.ts). Then:
 * (a) at most one ACTIVE key per scope at every position of the history (the view folded event by
 * event, checked after each); (b) every key state change allowed by the transition table; (c)
 * every acknowledged operation in the history; (d) every process, caught up to the final
 * position, holds the projection's view, its L1 cache holds nothing the projection does not allow,
 * and its resolver answers the projection's ACTIVE key per scope and a key for decrypt exactly
 * when the projection says it is usable.
 */

const CHILD = fileURLToPath(new URL('../fixtures/raceChild.ts', import.meta.url));
const ESDB_SERVER = fileURLToPath(new URL('../../scripts/esdb-test-server.ts', import.meta.url));
const RACERS = 8;
const RACE_MS = scaled(3000, 60_000);
const PASSWORD = 'race-Test1';
const CUST = Buffer.from('race-tenant').toString('base64');
const NAMESPACES = ['a', 'b', 'c'];

type Line = Record<string, unknown>;

/** A child process speaking JSON lines on stdout. */
class Child {
  readonly process: ChildProcessWithoutNullStreams;
  readonly lines: Line[] = [];
  readonly raw: string[] = [];
  stderr = '';
  readonly exited: Promise<void>;

  constructor(args: string[]) {
    this.process = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: 'pipe' });
    createInterface({ input: this.process.stdout }).on('line', (line) => {
      this.raw.push(line);
      try {
        this.lines.push(JSON.parse(line) as Line);
      } catch {
        // Not JSON (the esdb server's connection string): kept in raw.
      }
    });
    this.process.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.exited = new Promise((done) => this.process.once('exit', () => done()));
  }

  async waitFor(found: () => boolean, what: string, ms = 120_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!found()) {
      if (this.process.exitCode !== null)
        assert.fail(`child exited ${this.process.exitCode}: ${this.stderr}`);
      if (Date.now() > deadline) assert.fail(`child never said ${what}: ${this.stderr}`);
      await sleep(10);
    }
  }

  said(key: string): Line | undefined {
    return this.lines.find((line) => key in line);
  }

  send(line: string): void {
    this.process.stdin.write(`${line}\n`);
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    this.process.kill('SIGKILL');
    await this.exited;
  }
}

interface ScopeView {
  readonly marker: string | null;
  readonly states: Record<string, KeyState>;
}

interface Report {
  readonly position: string;
  readonly scopes: Record<
    string,
    ScopeView & { l1: string | null; resolved: string | null; decrypt: Record<string, string | null> }
  >;
}

/** (a), (b): folds the history event by event; returns the final view per namespace and the counts. */
function foldChecked(events: readonly LedgerEvent[]) {
  let view = emptyKeymetaView();
  let transitions = 0;
  for (const event of events) {
    const touched =
      'custodian' in event.data && 'namespace' in event.data && event.type !== 'KeyMaterialWrapped'
        ? keyScope(event.data.custodian as string, event.data.namespace as string)
        : null;
    const before = touched === null ? null : scopeOf(view, touched);
    view = evolveKeymeta(view, event);
    if (touched === null || before === null) continue;
    const afterState = scopeOf(view, touched);
    const active = [...afterState.keys.values()].filter((k) => k.state === 'ACTIVE');
    assert.ok(
      active.length <= 1,
      `(a) ${touched.namespace} has ${active.length} ACTIVE keys after ${event.type} at ${event.position}`,
    );
    assert.equal(afterState.activeKeyId, active[0]?.keyId ?? null, `(a) activeKeyId at ${event.position}`);
    for (const key of afterState.keys.values()) {
      const from = before.keys.get(key.keyId)?.state;
      if (from === undefined) {
        assert.ok(
          key.state === 'ACTIVE' || key.state === 'INACTIVE',
          `(b) a key entered ${key.state} at ${event.position}`,
        );
      } else if (from !== key.state) {
        transitions += 1;
        assert.ok(
          canTransition(from, key.state),
          `(b) ${key.keyId} went ${from} → ${key.state} by ${event.type} at ${event.position}`,
        );
      }
    }
  }
  const scopes: Record<string, ScopeView> = {};
  for (const ns of NAMESPACES) {
    const state = scopeOf(view, keyScope(CUST, ns));
    scopes[ns] = {
      marker: state.marker,
      states: Object.fromEntries([...state.keys.values()].map((k) => [k.keyId, k.state])),
    };
  }
  return { scopes, position: view.position, transitions };
}

/** The position of the last event of a race scope, for messages. */
function lastOf(events: readonly LedgerEvent[], ns: string): string {
  const last = events.findLast(
    (e) => 'namespace' in e.data && e.data.namespace === ns && e.type !== 'KeyMaterialWrapped',
  );
  return last === undefined ? 'none' : `${last.position} (${last.type})`;
}

async function ledgerEvents(store: EventStore): Promise<{ events: LedgerEvent[]; positions: Set<string> }> {
  const events: LedgerEvent[] = [];
  const positions = new Set<string>();
  for await (const recorded of store.readAll()) {
    if (recorded.streamName.startsWith('$') || !isLedgerEventType(recorded.type)) continue;
    positions.add(recorded.position.toString());
    events.push(parseLedgerEvent(recorded));
  }
  return { events, positions };
}

describe('reliability: races of 8 processes on one ledger', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyledger-races-'));
  const keystorePath = join(dir, 'keys.p12');
  const passwordFile = join(dir, 'password');
  const children: Child[] = [];
  writeTestKeystore(keystorePath, passwordFile, PASSWORD, ['stk-a']);

  after(async () => {
    for (const child of children) await child.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function race(kind: string, url: string): Promise<void> {
    const racers = Array.from(
      { length: RACERS },
      (_, i) => new Child([CHILD, url, keystorePath, passwordFile, String(7000 + i)]),
    );
    children.push(...racers);
    await Promise.all(racers.map((r) => r.waitFor(() => r.said('loaded') !== undefined, 'loaded')));
    for (const racer of racers) racer.send('go');
    await Promise.all(racers.map((r) => r.waitFor(() => r.said('opened') !== undefined, 'opened')));
    await sleep(RACE_MS);
    for (const racer of racers) racer.send('stop');
    await Promise.all(racers.map((r) => r.waitFor(() => r.said('stopped') !== undefined, 'stopped')));

    const store = openEventStore(url);
    try {
      const head = await store.headPosition();
      for (const racer of racers) racer.send(`report ${head}`);
      await Promise.all(racers.map((r) => r.waitFor(() => r.said('report') !== undefined, 'report')));
      const { events, positions } = await ledgerEvents(store);
      const folded = foldChecked(events);

      // (c) every acknowledged operation is in the history.
      const acked = racers.flatMap((r) => r.lines.filter((line) => 'ack' in line));
      const refused = racers.flatMap((r) => r.lines.filter((line) => 'refused' in line));
      for (const ack of acked) {
        if (ack.position === null) continue;
        assert.ok(
          positions.has(String(ack.position)),
          `(c) acknowledged ${ack.op} at ${ack.position} is missing`,
        );
      }

      // (d) every process agrees with the projection: its own view, L1, and what it resolves.
      let cacheHits = 0;
      for (const [i, racer] of racers.entries()) {
        const report = (racer.said('report') as { report: Report }).report;
        for (const ns of NAMESPACES) {
          const want = folded.scopes[ns] as ScopeView;
          const got = report.scopes[ns];
          assert.ok(got, `(d) racer ${i} reports no ${ns}`);
          assert.deepEqual(
            { marker: got.marker, states: got.states },
            want,
            `(d) racer ${i}'s projection of ${ns} (its position ${report.position}, head ${head}, the scope's last event at ${lastOf(events, ns)})`,
          );
          const active = Object.entries(want.states).find(([, state]) => state === 'ACTIVE')?.[0] ?? null;
          if (got.l1 !== 'miss') {
            cacheHits += 1;
            assert.equal(got.l1, active, `(d) racer ${i}'s L1 holds a stale ACTIVE key for ${ns}`);
          }
          assert.equal(got.resolved, active, `(d) racer ${i} resolves the wrong ACTIVE key for ${ns}`);
          for (const [keyId, state] of Object.entries(want.states)) {
            const usable = isUsableForDecrypt(state);
            assert.equal(
              got.decrypt[keyId] ?? null,
              usable ? state : null,
              `(d) racer ${i} resolves ${keyId} (${state}) for decrypt`,
            );
          }
        }
      }
      for (const racer of racers) racer.send('exit');
      await Promise.all(racers.map((r) => r.exited));
      for (const racer of racers) assert.equal(racer.process.exitCode, 0, racer.stderr);

      const conflicts = refused.filter((line) => line.refused === 'ERR_VERSION_CONFLICT').length;
      const ops = new Map<string, number>();
      for (const ack of acked) ops.set(String(ack.op), (ops.get(String(ack.op)) ?? 0) + 1);
      console.log(
        `races (${kind}): ${RACERS} processes × ${RACE_MS / 1000} s, ${acked.length} acknowledged operations ${JSON.stringify(Object.fromEntries(ops))}, ${refused.length} refused (${conflicts} ERR_VERSION_CONFLICT), ${events.length} events folded one by one, ${folded.transitions} key state changes checked, ${RACERS * NAMESPACES.length} process × scope reports (${cacheHits} L1 entries) compared; 0 invariant violations`,
      );
      assert.ok(acked.length > RACERS, 'the racers acknowledged almost nothing: the test proved little');
    } finally {
      await store.close();
    }
  }

  const timeout = RELIABILITY_FULL ? 1_800_000 : 240_000;

  it(
    `on sqlite: ${RACERS} processes creating one new file and racing for ${RACE_MS / 1000} s`,
    { timeout },
    () => race('sqlite', `sqlite:${join(dir, 'race.db')}`),
  );

  it(`on EventStoreDB: one test server process, ${RACERS} ledger processes racing for ${RACE_MS / 1000} s`, {
    timeout,
  }, async () => {
    const server = new Child([ESDB_SERVER]);
    children.push(server);
    await server.waitFor(
      () => server.raw.some((line) => line.startsWith('esdb://')),
      'its connection string',
    );
    const url = server.raw.find((line) => line.startsWith('esdb://')) as string;
    await race('esdb', url);
    server.process.kill('SIGTERM');
    await server.exited;
  });
});
