import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_BIN } from './cliHarness.js';
import type { TestCertificates } from './testCertificates.js';
import { AUDIENCE, ISSUER } from './testJwt.js';

/** `keyledger serve` of the built CLI in a child process. */
export interface ServeProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly url: string;
  stderr(): string;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** A line V8 writes to stdout when asked (`--trace-gc`): `[pid:0xisolate] …`. */
const V8_TRACE_LINE = /^\[\d+:0x[0-9a-f]+\]/;

/**
 * Starts `keyledger serve …` in `cwd` and waits for its first stdout line, `listening <url>`.
 * `nodeArgs` go to node before the CLI (V8 flags NODE_OPTIONS does not take, e.g. --trace-gc,
 * whose lines are skipped here).
 */
export async function startServeProcess(
  cwd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  nodeArgs: readonly string[] = [],
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [...nodeArgs, CLI_BIN, 'serve', ...args], { cwd, env });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = once(child, 'exit');
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line; stderr: ${stderr}`)), 20_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const lines = stdout.split('\n').slice(0, -1);
      const line = lines.find((l) => !V8_TRACE_LINE.test(l));
      if (line === undefined) return;
      clearTimeout(timer);
      // The real port, never the 0 it was asked to listen on.
      const match = /^listening (https?:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
      if (match?.[1] === undefined || match[2] === '0') reject(new Error(`first line: ${line}`));
      else resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before listening: ${stderr}`)));
  });
  return {
    child,
    url,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null && !child.killed) child.kill('SIGTERM');
      const [code] = await exited;
      return code as number | null;
    },
  };
}

/**
 * Makes the ledger in `dir` (after `keyledger init`) servable: writes `jwks` as jwks.json and sets
 * the config's `server` to listen on 127.0.0.1 port 0 with `certs`' TLS and JWT auth (the test
 * issuer), plus `extra` settings (limits, heartbeatMs, …).
 */
export function writeServeConfig(
  dir: string,
  certs: TestCertificates,
  jwks: unknown,
  extra: Readonly<Record<string, unknown>>,
): void {
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks));
  const configFile = join(dir, 'keyledger.config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8'));
  config.server = {
    listen: '127.0.0.1:0',
    tls: { cert: certs.serverCert, key: certs.serverKey },
    auth: { jwt: { jwks: 'jwks.json', issuer: ISSUER, audience: AUDIENCE } },
    ...extra,
  };
  writeFileSync(configFile, JSON.stringify(config, null, 2));
}
