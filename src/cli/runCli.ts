import type { Writable } from 'node:stream';
import { Writable as WritableStream } from 'node:stream';
import { isObservable, type Observable } from 'rxjs';
import { KeyledgerError } from '../domain/errors.js';
import { custodianHint, parseCustodianArg } from '../operations/identityArgs.js';
import { CliHost, POINT_OPERATIONS } from './cliHost.js';
import { completionScript } from './completion.js';
import { commandHelp, globalUsage } from './help.js';
import { type CliIo, escapeControl, toJson } from './output.js';
import { type Invocation, parseCommandLine, wantsJson } from './parseCommandLine.js';
import { ProgressView } from './progressView.js';
import type { RemoteTarget } from './remoteOperation.js';
import { reportError } from './reportError.js';
import { VIEWS, type View } from './views.js';

/**
 * Runs one CLI invocation; returns the exit code (0 success, 2 bad input or refused by a rule with
 * nothing written, 1 any other failure). Never throws. Every command is an operation of the table
 * (src/operations): parsed, checked, run and shown the same way.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseCommandLine(argv);
  } catch (error) {
    return reportError(io, error, wantsJson(argv));
  }
  switch (invocation.kind) {
    case 'usage':
      io.stdout(`${globalUsage()}\n`);
      return invocation.exit;
    case 'help':
      io.stdout(`${commandHelp(invocation.command)}\n`);
      return 0;
    case 'completion': {
      const script = completionScript(invocation.shell);
      if (script === null)
        return reportError(
          io,
          new KeyledgerError('ERR_INVALID_ARGUMENT', 'completion takes bash or zsh', {}),
        );
      io.stdout(script);
      return 0;
    }
    case 'run':
      return runOperation(invocation, io);
    case 'serve':
      // The server's modules (Fastify, jose, prom-client) load only for serve.
      return (await import('./serveCommand.js')).serve(invocation, io);
    default: {
      const unreachable: never = invocation;
      return unreachable;
    }
  }
}

async function runOperation(invocation: Extract<Invocation, { kind: 'run' }>, io: CliIo): Promise<number> {
  const { operation, input, global } = invocation;
  const view = VIEWS[operation.name] as View<unknown>;
  const out = (text: string) => io.stdout(global.json ? text : escapeControl(text));
  const host = new CliHost(global, io, { view: POINT_OPERATIONS.has(operation.name) ? 'point' : 'whole' });
  let progress: ProgressView | null = null;
  let remote: RemoteTarget | null = null;
  const onSigint = () => {
    host.abort();
    io.stderr('\nstopping at the next checkpoint (Ctrl-C again to quit at once)\n');
  };
  try {
    // Checked before anything is opened: bad input never touches the store.
    const prepared = (operation.prepare as (input: unknown) => unknown)(input);
    // The HTTPS client loads only when a server is named (--server or KEYLEDGER_SERVER).
    const remoting =
      global.server !== undefined || (io.env.KEYLEDGER_SERVER ?? '') !== ''
        ? await import('./remoteOperation.js')
        : null;
    remote = remoting?.remoteTargetOf(global, operation, io) ?? null;
    for (const hint of custodianHints(input)) io.stderr(`${escapeControl(hint)}\n`);
    const streams = operation.kind === 'bytes' ? byteStreams(io) : undefined;
    if (!global.json) {
      progress = new ProgressView(io);
      const view = progress;
      host.onProgress = (report) => view.update(report);
    }
    // A remote run stops where the server runs it, not here: Ctrl-C then just ends the CLI.
    if (operation.stoppable === true && remote === null) process.once('SIGINT', onSigint);
    const result =
      remote === null
        ? (operation.run as (p: unknown, h: CliHost, s: unknown) => Promise<unknown> | Observable<unknown>)(
            prepared,
            host,
            streams,
          )
        : (remoting as typeof import('./remoteOperation.js')).runRemote(
            remote.client,
            operation,
            input,
            global.reason,
            streams,
          );
    if (isObservable(result)) {
      await follow(result, io, out);
      return 0;
    }
    const value = await result;
    progress?.end();
    if (operation.kind === 'bytes') return 0;
    out(
      global.json
        ? `${toJson(view.json === undefined ? value : view.json(value))}\n`
        : view.text(value, input),
    );
    const warning = view.warning?.(value);
    if (warning) io.stderr(`${escapeControl(warning)}\n`);
    const failure = view.failure?.(value);
    return failure ? reportError(io, failure, global.json) : 0;
  } catch (error) {
    progress?.end();
    const ledger = view.afterFailure === undefined ? null : await host.openedLedger();
    if (ledger !== null) {
      const hint = await view.afterFailure?.(ledger).catch(() => null);
      if (hint) io.stderr(`${escapeControl(hint)}\n`);
    }
    return reportError(io, error, global.json);
  } finally {
    process.removeListener('SIGINT', onSigint);
    await remote?.client.close();
    await host.close();
  }
}

/** Hints for custodians given in base64 that decode to no text: most likely meant as a plain name. */
function custodianHints(input: Readonly<Record<string, unknown>>): string[] {
  const hints: string[] = [];
  for (const field of ['scope', 'custodian']) {
    const value = input[field];
    if (typeof value !== 'string') continue;
    const text = field === 'scope' ? (value.split(':')[0] ?? '') : value;
    try {
      const hint = custodianHint(text, parseCustodianArg(text));
      if (hint !== null) hints.push(hint);
    } catch {
      // prepare() already refused a malformed one.
    }
  }
  return hints;
}

/** stdin and stdout as bytes (encrypt refuses a terminal itself). */
function byteStreams(io: CliIo) {
  const output: Writable = io.stdoutStream ?? textWritable(io);
  return { input: io.stdin ?? process.stdin, output };
}

/** io.stdout as a stream, for a CliIo without a binary stdout (tests, the demo). */
function textWritable(io: CliIo): Writable {
  return new WritableStream({
    write(chunk: Buffer | string, _encoding, callback) {
      io.stdout(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
      callback();
    },
  });
}

/** An `events` operation: one JSON line per event until SIGINT/SIGTERM (exit 0), the end, or a failure. */
function follow(events: Observable<unknown>, io: CliIo, out: (text: string) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let subscription: { unsubscribe(): void } | null = null;
    const finish = (error?: unknown) => {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
      subscription?.unsubscribe();
      if (error === undefined) resolve();
      else reject(error);
    };
    const stop = () => finish();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    subscription = events.subscribe({
      next: (event) => out(`${toJson(event, 0)}\n`),
      error: (error: unknown) => finish(error),
      complete: () => finish(),
    });
    if (io.isTty) io.stderr('watching the ledger; Ctrl-C to stop\n');
  });
}
