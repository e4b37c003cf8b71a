import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { RecordedEvent } from '../../src/store/eventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { scaled } from './reliabilityScale.js';

/**
 * Eight processes opening one new sqlite ledger file at the same moment (issue 15, found by the
 * race suite): each must open it, and the schema must be made once. Before the fix, some failed in
 * SqliteEventStore.open with ERR_STORE ("database is locked"): switching a new file to WAL and
 * creating the schema can answer SQLITE_BUSY without waiting on the busy timeout.
 */

const CHILD = fileURLToPath(new URL('../fixtures/sqliteOpenChild.ts', import.meta.url));
const PROCESSES = 8;
const ROUNDS = scaled(3, 20);

interface Started {
  readonly lines: Record<string, string>[];
  readonly exited: Promise<number | null>;
  readonly stderr: () => string;
  go(at: number): void;
  kill(): void;
}

function start(path: string, worker: number): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, path, String(worker)], { stdio: 'pipe' });
  const lines: Record<string, string>[] = [];
  let stderr = '';
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(JSON.parse(line)));
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return {
    lines,
    exited: new Promise((done) => child.once('exit', (code) => done(code))),
    stderr: () => stderr,
    go: (at) => child.stdin.write(`${at}\n`),
    kill: () => child.kill('SIGKILL'),
  };
}

async function waitUntil(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 10));
  }
}

describe('reliability: eight processes opening one new sqlite file at once', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyledger-open-race-'));
  const children: Started[] = [];
  after(async () => {
    for (const child of children) child.kill();
    await Promise.all(children.map((child) => child.exited));
    rmSync(dir, { recursive: true, force: true });
  });

  it(`all ${PROCESSES} open it and write, ${ROUNDS} rounds`, {
    timeout: scaled(120_000, 1_200_000),
  }, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const path = join(dir, `new-${round}.db`);
      const racers = Array.from({ length: PROCESSES }, (_, worker) => start(path, worker));
      children.push(...racers);
      await waitUntil(() => racers.every((r) => r.lines.some((l) => 'loaded' in l)), 'the children to load');
      // One moment for all, a little ahead: each spins until it, then opens.
      const at = Date.now() + 300;
      for (const racer of racers) racer.go(at);
      const codes = await Promise.all(racers.map((racer) => racer.exited));
      const reports = racers.flatMap((racer) => racer.lines.filter((line) => !('loaded' in line)));
      const failed = reports.filter((line) => 'failed' in line);
      assert.deepEqual(failed, [], `round ${round}: ${JSON.stringify(failed)}`);
      assert.deepEqual(codes, Array(PROCESSES).fill(0), racers.map((r) => r.stderr()).join('\n'));
      assert.equal(reports.length, PROCESSES, `round ${round}: every child reports`);

      // The file holds one schema and the eight events, at eight distinct positions.
      const store = SqliteEventStore.open(path);
      try {
        const events: RecordedEvent[] = [];
        for await (const event of store.readAll()) events.push(event);
        assert.equal(events.length, PROCESSES);
        assert.equal(new Set(events.map((e) => e.streamName)).size, PROCESSES);
      } finally {
        await store.close();
      }
    }
    console.log(
      `sqlite concurrent open: ${ROUNDS} rounds × ${PROCESSES} processes on a new file, 0 failures`,
    );
  });
});
