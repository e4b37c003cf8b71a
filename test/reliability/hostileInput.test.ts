import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { COMMANDS, GLOBAL_OPTIONS } from '../../src/cli/commandLine.js';
import { parseCommandLine } from '../../src/cli/parseCommandLine.js';
import { runCli } from '../../src/cli/runCli.js';
import { isKeyledgerError } from '../../src/domain/errors.js';
import { ledgerDb } from '../helpers/cliHarness.js';
import { scaled, scaledTimeout } from './reliabilityScale.js';

/**
 * Hostile input (issue 15, part 4) over three surfaces the other suites leave out: the command line
 * (random argv through the real parser and runCli, in process, on a ledger), the config file
 * (random and mutated keyledger.config.json) and the stored events (random JSON, wrong types, huge
 * strings, deep nesting written straight into the sqlite file's events table). Every case must end
 * in success or a typed error — exit 0, or exit 1/2 with `error ERR_…` and never ERR_INTERNAL (what
 * runCli reports for an error that is not a KeyledgerError) — within its deadline, and a case that
 * fails must leave the events table as it was.
 */

const TENANT = Buffer.from('tenant-1').toString('base64');
const SCOPE = `${TENANT}:orders`;
const CASE_DEADLINE_MS = 15_000;

interface Outcome {
  readonly code: number;
  readonly stderr: string;
  readonly stdout: string;
}

async function cli(dir: string, args: readonly string[]): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const run = runCli(args, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    cwd: dir,
    env: { KEYLEDGER_ACTOR: 'hostile' },
    isTty: false,
    stdin: Readable.from([Buffer.from('plaintext')]),
    stdoutStream: new Writable({
      write(_chunk, _encoding, done) {
        done();
      },
    }),
  });
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hang: keyledger ${describeArgs(args)}`)), CASE_DEADLINE_MS);
  });
  try {
    return { code: await Promise.race([run, hang]), stderr, stdout };
  } finally {
    clearTimeout(timer);
  }
}

const describeArgs = (args: readonly string[]) =>
  JSON.stringify(args.map((a) => (a.length > 80 ? `${a.slice(0, 40)}…(${a.length})` : a)));

/** The number of rows and the last position in the events table: a failed case must not move it. */
function eventsHead(dir: string): string {
  const db = new Database(ledgerDb(dir), { readonly: true });
  try {
    const row = db.prepare('SELECT count(*) AS n, max(position) AS head FROM events').get() as {
      n: number;
      head: number | null;
    };
    return `${row.n}@${row.head}`;
  } finally {
    db.close();
  }
}

/** Success, or a typed error with its documented exit code; the error code, or 'ok'. */
function typedOutcome(outcome: Outcome, what: string): string {
  if (outcome.code === 0) return 'ok';
  assert.ok(outcome.code === 1 || outcome.code === 2, `${what}: exit ${outcome.code}: ${outcome.stderr}`);
  // `error CODE: …` as text, `{"code":"CODE",…}` with --json.
  const code = /^(?:error |\{"code":")(ERR_[A-Z_]+)/m.exec(outcome.stderr)?.[1];
  assert.ok(code !== undefined, `${what}: exit ${outcome.code} without a typed error: ${outcome.stderr}`);
  assert.notEqual(code, 'ERR_INTERNAL', `${what}: a crash: ${outcome.stderr}`);
  return code;
}

const tally = (counts: Map<string, number>, key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);

/** Uncaught exceptions and unhandled rejections while a surface runs: must stay 0. */
function watchCrashes(): { crashes: string[]; stop(): void } {
  const crashes: string[] = [];
  const onError = (error: unknown) => crashes.push(String(error));
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  return {
    crashes,
    stop() {
      process.off('uncaughtException', onError);
      process.off('unhandledRejection', onError);
    },
  };
}

const nasty = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '',
    '-',
    '--',
    '-1',
    '0',
    '1e309',
    'NaN',
    'true',
    'null',
    '*',
    ':',
    '=',
    '\u0000',
    '\u001b[2J',
  ),
  fc.constantFrom(SCOPE, TENANT, `${TENANT}:`, `:orders`, 'name=tenant-1', `${TENANT}:orders:x`),
  fc.constantFrom('x'.repeat(100_000), 'é'.repeat(10_000), '0'.repeat(64), 'f'.repeat(32), 'A'.repeat(43)),
  fc.integer().map(String),
);

describe('reliability: hostile input over the CLI, the config file and the stored events', () => {
  const root = mkdtempSync(join(tmpdir(), 'kl-hostile-'));
  /** The ledger every CLI case runs on (init, one scope enabled and rotated). */
  const base = join(root, 'base');

  before(async () => {
    const ok = async (args: string[]) => {
      const outcome = await cli(base, args);
      assert.equal(outcome.code, 0, `${args.join(' ')}: ${outcome.stderr}`);
    };
    mkdirSync(base);
    await ok(['init']);
    await ok(['enable-key-management', SCOPE]);
    await ok(['rotate-managed-key', SCOPE]);
    await ok(['checkpoint']);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('random argv through the parser and runCli: success or a typed error, nothing written on failure', {
    timeout: scaledTimeout(110_000, 3_600_000),
  }, async () => {
    const dir = join(root, 'cli');
    cpSync(base, dir, { recursive: true });
    const words = [...new Set(COMMANDS.flatMap((c) => c.words)), 'help', 'completion', 'serve', 'watch'];
    const flags = [
      ...new Set(
        [...GLOBAL_OPTIONS, ...COMMANDS.flatMap((c) => c.variants.flatMap((v) => [...v.options, v.selector]))]
          .filter((o) => o !== null)
          .map((o) => `--${o.flag.replace(/^--/, '')}`),
      ),
      '-h',
      '--json',
      '--no-such-flag',
    ];
    const token = fc.oneof(
      { weight: 2, arbitrary: fc.constantFrom(...words) },
      { weight: 3, arbitrary: fc.constantFrom(...flags) },
      { weight: 1, arbitrary: fc.constantFrom(...flags).chain((f) => nasty.map((v) => `${f}=${v}`)) },
      { weight: 3, arbitrary: nasty },
    );
    const argvs = fc.oneof(
      fc
        .tuple(fc.constantFrom(...COMMANDS.map((c) => c.words)), fc.array(token, { maxLength: 8 }))
        .map(([command, rest]) => [...command, ...rest]),
      fc.array(token, { maxLength: 10 }),
    );
    const cases = fc.sample(argvs, scaled(150, 5000));
    const crashes = watchCrashes();
    const codes = new Map<string, number>();
    let parsedOnly = 0;
    try {
      for (const argv of cases) {
        const what = `keyledger ${describeArgs(argv)}`;
        let invocation: ReturnType<typeof parseCommandLine> | null = null;
        try {
          invocation = parseCommandLine(argv);
        } catch (error) {
          assert.ok(isKeyledgerError(error), `${what}: the parser threw ${String(error)}`);
        }
        // Commands that run until stopped, or reach out to a network, are parsed only.
        if (
          invocation?.kind === 'serve' ||
          (invocation?.kind === 'run' &&
            (invocation.operation.name === 'watch' ||
              invocation.global.server !== undefined ||
              invocation.global.store !== undefined ||
              invocation.global.config !== undefined))
        ) {
          parsedOnly += 1;
          continue;
        }
        const head = eventsHead(dir);
        const outcome = await cli(dir, argv);
        if (invocation?.kind === 'usage') {
          // No command: the usage, exit 0 with --help and 2 without (docs/cli.md).
          assert.equal(outcome.code, invocation.exit, `${what}: ${outcome.stderr}`);
          tally(codes, `usage ${outcome.code}`);
          assert.equal(eventsHead(dir), head);
          continue;
        }
        const code = typedOutcome(outcome, what);
        tally(codes, code);
        if (code !== 'ok')
          assert.equal(eventsHead(dir), head, `${what}: refused (${code}) but wrote an event`);
      }
    } finally {
      crashes.stop();
    }
    assert.deepEqual(crashes.crashes, []);
    console.log(
      `hostile CLI argv: ${cases.length} cases (${parsedOnly} parsed only: serve, watch, --server/--store/--config), 0 crashes, 0 hangs; ${JSON.stringify(Object.fromEntries(codes))}`,
    );
  });

  it('random and mutated keyledger.config.json: a typed error or success, nothing written on failure', {
    timeout: scaledTimeout(110_000, 3_600_000),
  }, async () => {
    const dir = join(root, 'config');
    cpSync(base, dir, { recursive: true });
    const file = join(dir, 'keyledger.config.json');
    const valid = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const keys = [
      ...Object.keys(valid),
      'server',
      'pkcs11',
      'checkpointEvery',
      'destroyGracePeriod',
      'extra',
    ];
    const value = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      nasty,
      fc.constantFrom('keystore', 'generated', 'pkcs11', 'sqlite::memory:', 'memory:', -1, 1e308, {}),
      fc.constant(null),
    );
    const texts = fc.oneof(
      // One key replaced, removed, or added.
      fc.tuple(fc.constantFrom(...keys), fc.option(value)).map(([key, v]) => {
        const copy: Record<string, unknown> = { ...valid };
        if (v === null) delete copy[key];
        else copy[key] = v;
        return JSON.stringify(copy);
      }),
      // A nested field of the keystore section replaced.
      fc
        .tuple(fc.constantFrom('path', 'password', 'systemKeyAlias', 'previousSystemKeyAliases', 'x'), value)
        .map(([key, v]) =>
          JSON.stringify({ ...valid, keystore: { ...(valid.keystore as object), [key]: v } }),
        ),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.string(),
      // Truncated or deeply nested text.
      fc.nat().map((n) => JSON.stringify(valid).slice(0, n % JSON.stringify(valid).length)),
      fc.integer({ min: 1, max: 100_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
    );
    const cases = fc.sample(texts, scaled(80, 3000));
    const crashes = watchCrashes();
    const codes = new Map<string, number>();
    try {
      for (const text of cases) {
        writeFileSync(file, text);
        const head = eventsHead(dir);
        // A command that writes when it succeeds: a refusal must write nothing.
        const code = typedOutcome(
          await cli(dir, ['rotate-managed-key', SCOPE]),
          `config ${text.slice(0, 120)}`,
        );
        tally(codes, code);
        if (code !== 'ok') assert.equal(eventsHead(dir), head, `config refused (${code}) but wrote an event`);
      }
    } finally {
      crashes.stop();
    }
    assert.deepEqual(crashes.crashes, []);
    console.log(
      `hostile config files: ${cases.length} cases, 0 crashes, 0 hangs; ${JSON.stringify(Object.fromEntries(codes))}`,
    );
  });

  it('hostile rows in the events table: opening, listing and verify end in a typed error', {
    timeout: scaledTimeout(110_000, 3_600_000),
  }, async () => {
    const rows = (() => {
      const db = new Database(ledgerDb(base), { readonly: true });
      try {
        return db.prepare('SELECT position, stream, type FROM events ORDER BY position').all() as {
          position: number;
          stream: string;
          type: string;
        }[];
      } finally {
        db.close();
      }
    })();
    const deep = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
    const text = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc.string(),
      nasty,
      fc.integer({ min: 1, max: 50_000 }).map(deep),
      fc.constantFrom('x'.repeat(5_000_000), JSON.stringify({ keyId: 'x'.repeat(1_000_000) })),
    );
    const column = fc.constantFrom('data', 'metadata', 'type', 'stream', 'event_id');
    const edits = fc.oneof(
      // One column of an existing row replaced.
      fc
        .tuple(fc.nat(rows.length - 1), column, text)
        .map(([i, col, v]) => ({ kind: 'edit' as const, i, col: col as string, v, metadata: '' })),
      // A row appended to an existing stream (revision next), with hostile content.
      fc
        .tuple(fc.nat(rows.length - 1), fc.constantFrom(...new Set(rows.map((r) => r.type))), text, text)
        .map(([i, type, data, metadata]) => ({ kind: 'append' as const, i, col: type, v: data, metadata })),
    );
    const cases = fc.sample(edits, scaled(25, 1000));
    const crashes = watchCrashes();
    const codes = new Map<string, number>();
    const dir = join(root, 'events');
    try {
      for (const edit of cases) {
        rmSync(dir, { recursive: true, force: true });
        cpSync(base, dir, { recursive: true });
        const row = rows[edit.i] as (typeof rows)[number];
        const db = new Database(ledgerDb(dir));
        try {
          if (edit.kind === 'edit') {
            db.prepare(`UPDATE events SET ${edit.col} = ? WHERE position = ?`).run(edit.v, row.position);
          } else {
            const last = db
              .prepare('SELECT max(revision) AS r FROM events WHERE stream = ?')
              .get(row.stream) as { r: number };
            db.prepare(
              'INSERT INTO events (stream, revision, event_id, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
            ).run(
              row.stream,
              last.r + 1,
              `hostile-${Math.random()}`,
              edit.col,
              edit.v,
              edit.metadata,
              Date.now(),
            );
            db.prepare('UPDATE streams SET last_revision = ? WHERE name = ?').run(last.r + 1, row.stream);
          }
        } finally {
          db.close();
        }
        const head = eventsHead(dir);
        const what = `${edit.kind} ${edit.col} at ${row.position}: ${edit.v.slice(0, 80)}`;
        for (const args of [['list-scopes'], ['verify'], ['history', SCOPE]]) {
          const code = typedOutcome(await cli(dir, args), `${args[0]} after ${what}`);
          tally(codes, `${args[0]} ${code}`);
        }
        assert.equal(eventsHead(dir), head, `${what}: reading wrote an event`);
      }
    } finally {
      crashes.stop();
    }
    assert.deepEqual(crashes.crashes, []);
    console.log(
      `hostile stored events: ${cases.length} edited stores × 3 commands, 0 crashes, 0 hangs; ${JSON.stringify(Object.fromEntries(codes))}`,
    );
  });
});
