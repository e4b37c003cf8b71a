import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_BIN } from '../helpers/cliHarness.js';

/**
 * Runs the commands the docs show, in order, against the built CLI (docs/cli.md, "Examples are
 * tested"). Each command runs in bash, with `keyledger` on the PATH as the built binary, so `$(…)`,
 * pipes and redirections work as written.
 */

export interface DocCommand {
  /** The markdown file and line, for the failure message. */
  readonly where: string;
  readonly command: string;
  /** The output the doc shows under the command (docs/cli.md), or null when it shows none (README). */
  readonly shown: string | null;
  /** The doc shows the command failing (an `error …` line). */
  readonly showsError: boolean;
}

/** `keyledger …` lines of ```sh blocks (README): comments after `#` are dropped. */
export function tourCommands(file: string): DocCommand[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const commands: DocCommand[] = [];
  let inBlock = false;
  lines.forEach((line, i) => {
    if (line.startsWith('```')) {
      inBlock = !inBlock && line.trim() === '```sh';
      return;
    }
    if (!inBlock) return;
    const command = stripComment(line).trim();
    if (/^(keyledger|source <\(keyledger) /.test(command)) {
      commands.push({ where: `${file}:${i + 1}`, command, shown: null, showsError: false });
    }
  });
  return commands;
}

/** `$ keyledger …` lines of code blocks, each with the output shown below it (docs/cli.md). */
export function sessionCommands(file: string): DocCommand[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const commands: DocCommand[] = [];
  let inBlock = false;
  let current: { where: string; command: string; output: string[] } | null = null;
  const flush = () => {
    if (current === null) return;
    const shown = current.output.join('\n').trim();
    commands.push({
      where: current.where,
      command: current.command,
      shown,
      showsError: /^error ERR_/m.test(shown),
    });
    current = null;
  };
  lines.forEach((line, i) => {
    if (line.startsWith('```')) {
      flush();
      inBlock = !inBlock;
      return;
    }
    if (!inBlock) return;
    if (line.startsWith('$ ')) {
      flush();
      current = { where: `${file}:${i + 1}`, command: stripComment(line.slice(2)).trim(), output: [] };
    } else if (current !== null) {
      current.output.push(line);
    }
  });
  return commands;
}

/** A trailing `# comment` outside quotes. */
function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote !== null) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '#' && (i === 0 || line[i - 1] === ' ')) return line.slice(0, i);
  }
  return line;
}

/** Tokens that differ between runs, by kind (docs/cli.md, "Examples are tested"). */
const KINDS: Readonly<Record<string, RegExp>> = {
  uuid: /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g,
  hex64: /\b[0-9a-f]{64}\b/g,
  keyId: /\b[0-9a-f]{32}\b/g,
  hex16: /\b[0-9a-f]{16}\b/g,
  hash: /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g,
  time: /\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z\b/g,
};

function tokens(text: string, kind: string): string[] {
  return [...text.matchAll(KINDS[kind] as RegExp)].map((m) => m[0]);
}

export class DocSession {
  readonly #dir: string;
  readonly #bin: string;
  /** Tokens of the doc's runs → the values of this run. */
  readonly #mapped = new Map<string, string>();
  #lastHash: string | null = null;

  constructor(dir: string) {
    this.#dir = dir;
    this.#bin = join(dir, '.bin');
    mkdirSync(this.#bin, { recursive: true });
    const wrapper = join(this.#bin, 'keyledger');
    writeFileSync(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${CLI_BIN}" "$@"\n`);
    chmodSync(wrapper, 0o755);
  }

  /** The command as this run must type it: mapped tokens replaced, README placeholders filled. */
  substitute(command: string): string {
    let text = command;
    for (const kind of Object.keys(KINDS)) {
      text = text.replace(KINDS[kind] as RegExp, (token) => this.#mapped.get(token) ?? token);
    }
    if (text.includes('<metadata-hash>')) {
      assert.ok(this.#lastHash !== null, `${command}: no earlier command printed a metadata hash`);
      text = text.replaceAll('<metadata-hash>', this.#lastHash);
    }
    return text;
  }

  run(doc: DocCommand): { code: number | null; stdout: string; stderr: string; command: string } {
    const { command, script, options } = this.#prepare(doc);
    const result = spawnSync('bash', ['-o', 'pipefail', '-c', script], { ...options, encoding: 'utf8' });
    const stdout = result.stdout ?? '';
    this.#learn(doc.shown, stdout);
    return { code: result.status, stdout, stderr: result.stderr ?? '', command };
  }

  /** The same, without blocking: two sessions can walk a doc side by side. */
  runAsync(
    doc: DocCommand,
  ): Promise<{ code: number | null; stdout: string; stderr: string; command: string }> {
    const { command, script, options } = this.#prepare(doc);
    return new Promise((resolve, reject) => {
      execFile('bash', ['-o', 'pipefail', '-c', script], options, (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        if (error !== null && code === null && !error.killed) return reject(error);
        this.#learn(doc.shown, stdout);
        resolve({ code, stdout, stderr, command });
      });
    });
  }

  #prepare(doc: DocCommand) {
    const command = this.substitute(doc.command);
    // A file read with `<` that is missing: made with random bytes, as a user would have a file there.
    for (const match of command.matchAll(/<\s*([\w./-]+)/g)) {
      const path = join(this.#dir, match[1] ?? '');
      if (!existsSync(path)) writeFileSync(path, randomBytes(1024));
    }
    const follows = /^keyledger (.* )?watch( |$)/.test(command);
    const script = follows
      ? `timeout -s TERM 3 ${command}; s=$?; [ $s -eq 124 ] && exit 0; exit $s`
      : command;
    const options = {
      cwd: this.#dir,
      env: {
        ...process.env,
        PATH: `${this.#bin}:${process.env.PATH ?? ''}`,
        KEYLEDGER_STORE: '',
        KEYLEDGER_ACTOR: 'alice',
      },
      timeout: 60_000,
      maxBuffer: 64 * 1024 * 1024,
    };
    return { command, script, options };
  }

  /** Lines the shown output up with the real one: the n-th token of a kind stands for the n-th. */
  #learn(shown: string | null, real: string): void {
    const hashes = tokens(real, 'hash');
    if (hashes.length > 0) this.#lastHash = hashes.at(-1) ?? null;
    if (shown === null) return;
    for (const kind of Object.keys(KINDS)) {
      const from = tokens(shown, kind);
      const to = tokens(real, kind);
      from.forEach((token, i) => {
        const value = to[i];
        if (value !== undefined && !this.#mapped.has(token)) this.#mapped.set(token, value);
      });
    }
  }
}

/** Runs the commands in order; a command the doc shows succeeding must exit 0. */
export function runDocCommands(dir: string, commands: readonly DocCommand[]): number {
  const session = new DocSession(dir);
  let ran = 0;
  for (const doc of commands) {
    if (doc.command.includes('esdb://') && !process.env.ESDB_CONNECTION_STRING) continue;
    const run = session.run(doc);
    ran++;
    if (!doc.showsError) {
      assert.equal(
        run.code,
        0,
        `${doc.where}: \`${run.command}\` failed where the doc shows success:\n${run.stderr}${run.stdout.slice(0, 2000)}`,
      );
    }
  }
  return ran;
}
