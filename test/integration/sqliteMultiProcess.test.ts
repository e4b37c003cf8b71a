import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { RecordedEvent } from '../../src/store/eventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = fileURLToPath(new URL('../fixtures/sqliteChild.ts', import.meta.url));
const WAIT_MS = 20_000;

type Line = Record<string, string | number>;

/** A child process on the shared file, with its stdout as parsed lines. */
class Child {
  readonly process: ChildProcess;
  readonly lines: Line[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.process = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout = this.process.stdout;
    assert.ok(stdout !== null);
    createInterface({ input: stdout }).on('line', (line) => this.lines.push(JSON.parse(line) as Line));
    this.process.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.exited = new Promise((done) => this.process.once('exit', (code) => done(code)));
  }

  of(kind: string): Line[] {
    return this.lines.filter((line) => line.kind === kind);
  }

  async waitFor(kind: string, count = 1): Promise<Line[]> {
    const deadline = Date.now() + WAIT_MS;
    while (this.of(kind).length < count) {
      if (this.process.exitCode !== null && this.process.exitCode !== 0) {
        assert.fail(`child exited with ${this.process.exitCode}: ${this.stderr}`);
      }
      if (Date.now() > deadline)
        assert.fail(`timed out waiting for ${count} ${kind} lines; stderr: ${this.stderr}`);
      await sleep(5);
    }
    return this.of(kind);
  }

  /** The child must end by itself: a store that keeps the process alive after close is a bug. */
  async exitCode(): Promise<number | null> {
    // Unref'd so that this watchdog does not itself keep the test process alive.
    const code = await Promise.race([this.exited, sleep(WAIT_MS, 'timeout' as const, { ref: false })]);
    if (code === 'timeout') assert.fail(`child did not exit; stderr: ${this.stderr}`);
    return code;
  }
}

describe('sqlite store shared by several processes', { timeout: 120_000 }, () => {
  let dir: string;
  let path: string;
  let store: SqliteEventStore;
  const children: Child[] = [];

  function child(...args: string[]): Child {
    const started = new Child(args);
    children.push(started);
    return started;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyledger-multiprocess-'));
    path = join(dir, 'ledger.db');
    store = SqliteEventStore.open(path, { pollIntervalMs: 5 });
  });
  afterEach(async () => {
    // Whatever happened in the test, no child outlives it.
    for (const started of children.splice(0)) {
      if (started.process.exitCode === null && started.process.signalCode === null) {
        started.process.kill('SIGKILL');
        await started.exited;
      }
    }
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("a subscriber in another process sees this process's events, caught up and live", async () => {
    const prefix = `parent-${randomUUID()}`;
    const written: string[] = [];
    for (let i = 0; i < 3; i++) {
      const eventId = randomUUID();
      await store.append(`${prefix}-s`, [{ eventId, type: 'FromParent', data: { i }, metadata: {} }], 'any');
      written.push(eventId);
    }
    const subscriber = child('subscribe', path, prefix, '10');
    await subscriber.waitFor('ready');
    for (let i = 3; i < 10; i++) {
      const eventId = randomUUID();
      await store.append(
        `${prefix}-${i % 2}`,
        [{ eventId, type: 'FromParent', data: { i }, metadata: {} }],
        'any',
      );
      written.push(eventId);
      await sleep(i % 2 === 0 ? 0 : 15);
    }
    const seen = await subscriber.waitFor('event', 10);
    await subscriber.waitFor('done');
    assert.equal(await subscriber.exitCode(), 0);
    assert.deepEqual(
      seen.map((line) => line.eventId),
      written,
    );
    assert.equal(subscriber.of('event').length, 10, 'nothing delivered twice');
  });

  it("a subscriber here sees another process's appends", async () => {
    const prefix = `child-${randomUUID()}`;
    const received: RecordedEvent[] = [];
    const subscription = store.subscribe({ streamPrefix: prefix }).subscribe((event) => received.push(event));
    try {
      const appender = child('append', path, `${prefix}-s`, '20');
      const appended = await appender.waitFor('appended', 20);
      assert.equal(await appender.exitCode(), 0);
      const deadline = Date.now() + WAIT_MS;
      while (received.length < 20 && Date.now() < deadline) await sleep(5);
      await sleep(50);
      assert.deepEqual(
        received.map((event) => event.eventId),
        appended.map((line) => line.eventId),
      );
      assert.deepEqual(
        received.map((event) => event.position.toString()),
        appended.map((line) => line.position),
      );
    } finally {
      subscription.unsubscribe();
    }
  });

  it('four processes racing on one stream: one winner per revision, contiguous, no duplicates', async () => {
    const stream = `race-${randomUUID()}`;
    const workers = 4;
    const perWorker = 25;
    const racers = Array.from({ length: workers }, (_, i) =>
      child('race', path, stream, String(perWorker), String(i)),
    );
    await Promise.all(racers.map((racer) => racer.waitFor('ready')));
    for (const racer of racers) racer.process.stdin?.write('go\n');
    for (const racer of racers) {
      await racer.waitFor('done');
      assert.equal(await racer.exitCode(), 0, racer.stderr);
    }

    const total = workers * perWorker;
    const events = await store.readStream(stream);
    assert.equal(events.length, total);
    assert.deepEqual(
      events.map((event) => event.revision),
      Array.from({ length: total }, (_, i) => BigInt(i)),
    );
    assert.equal(new Set(events.map((event) => event.eventId)).size, total);

    // Each revision was won by exactly one worker, and it is the event that worker wrote there.
    const wins = racers.flatMap((racer) => racer.of('won'));
    assert.equal(wins.length, total);
    const byRevision = new Map(wins.map((win) => [String(win.revision), String(win.eventId)]));
    assert.equal(byRevision.size, total);
    for (const event of events) assert.equal(byRevision.get(event.revision.toString()), event.eventId);
    for (const racer of racers) assert.equal(racer.of('won').length, perWorker);
    const conflicts = racers.reduce((sum, racer) => sum + Number(racer.of('done')[0]?.conflicts ?? 0), 0);
    console.log(`racing appends: ${conflicts} conflicts retried`);
  });
});
