import type { Readable, Writable } from 'node:stream';
import type { Observable } from 'rxjs';
import type { z } from 'zod';
import type { Grant, Permission } from '../domain/grants.js';
import type { Ledger } from '../ledger/ledger.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { EventStore } from '../store/eventStore.js';

/**
 * One user-facing operation, declared once (docs/architecture.md, "The operation table"). The CLI
 * generates its commands, options, help and completion from these declarations; the HTTP API is to
 * generate its routes, its OpenAPI document and its remote client from the same ones. So an input is
 * plain JSON data described by a zod schema (no transforms: the schema converts to JSON Schema), and
 * an output is plain JSON data (`Plain<T>`: positions as decimal strings, no Maps, no Buffers).
 */

/** What a caller must be granted to run an operation (the service's roles, src/domain/grants.ts). */
export type { Permission } from '../domain/grants.js';

/**
 * How the result comes back. `unary`: one JSON value. `events`: an Observable of JSON values, one per
 * ledger event, until the caller stops (CLI: JSON lines; HTTP: server-sent events). `bytes`: the input
 * and output are byte streams (CLI: stdin to stdout; HTTP: a streamed body), the JSON result a summary.
 */
export type OperationKind = 'unary' | 'events' | 'bytes';

/** What the operation's handler needs opened; bad input is refused before anything is. */
export type Opens = 'ledger' | 'store' | 'nothing';

/** The store without a replayed Ledger: for operations that must work on a ledger that no longer parses. */
export interface StoreAccess {
  readonly store: EventStore;
  readonly prefix: string;
  /** The configured provider, for MAC keys (made on first call; the host closes it). */
  provider(): ManagedKeyProvider;
  /** The configured checkpoint interval (verify bounds the uncovered tail by it). */
  readonly checkpointEvery: number | undefined;
  /** The configured rollback anchor file, which verify compares the store with. */
  readonly anchorFile: string | undefined;
}

/** What verifying an export file takes from the configuration at hand. */
export interface FileVerifier {
  /** For the file's MACs (the caller closes it). */
  readonly provider: ManagedKeyProvider;
  readonly checkpointEvery: number | undefined;
  readonly anchorFile: string | undefined;
}

/**
 * The byte streams of a `bytes` operation. An input already whole in memory (the HTTP API's JSON
 * form) comes as a Buffer, so the operation can process it in one go instead of through streams.
 */
export interface ByteStreams {
  readonly input: Readable | Buffer;
  readonly output: Writable;
}

/** What `init` returns; the host does the local work (files, the store it opens). */
export interface InitResult {
  readonly config: string;
  readonly configCreated: boolean;
  readonly keystore: string | null;
  readonly token: string | null;
  readonly store: string;
  readonly systemKey: {
    readonly changed: boolean;
    readonly sequence: number;
    readonly identity: string;
    readonly position: bigint | null;
  };
}

/**
 * What `init --provider pkcs11` asks for: the token whose system key the new config uses. Paths
 * are as the user gave them; the host resolves them.
 */
export interface Pkcs11InitSetup {
  readonly module: string;
  readonly tokenLabel: string;
  readonly pin: { readonly env: string } | { readonly file: string };
  readonly stkLabel: string | undefined;
}

/** A progress report of a long operation: a rewrap campaign's, or rotate-due-keys'. */
export type Progress = RewrapProgress | DueWorkProgress;

export interface RewrapProgress {
  readonly task?: 'rewrap';
  readonly campaignId: string;
  readonly keys: number;
  readonly done: number;
  readonly rewrapped: number;
  readonly skipped: number;
}

/** rotate-due-keys: `done` of `total` due actions run (a terminal shows a bar; nothing else does). */
export interface DueWorkProgress {
  readonly task: 'rotate-due-keys';
  readonly done: number;
  readonly total: number;
}

/**
 * What runs the operations: the CLI (one process per command) or a server (one Ledger for many
 * requests). Each handler takes only what it declared in `opens`.
 */
export interface OperationHost {
  /** The opened ledger; the host closes it. */
  ledger(): Promise<Ledger>;
  /** The store, unreplayed, with its prefix and provider; the host closes it. */
  store(): Promise<StoreAccess>;
  /** Who acts and why, recorded on the events written. */
  readonly actor: string | undefined;
  readonly reason: string | undefined;
  /** Ties the events one call writes together (a server passes its request id); undefined: a new one. */
  readonly correlationId?: string | undefined;
  /**
   * Checks a permission once the custodian is known from the input bytes (decrypt: the ciphertext's
   * header names it), before any key is used; throws ERR_FORBIDDEN. Absent: everything is allowed
   * (the CLI runs with the caller's own files and keys).
   */
  authorize?(permission: Permission, custodian: string): void;
  /**
   * The caller's grants, as a server authenticated them (`whoami` answers them). Absent: the caller
   * runs with its own files and keys, where no grant applies (the CLI, a library user).
   */
  readonly grants?: readonly Grant[] | undefined;
  /** Stops a long operation at its next safe point (rewrap: the next batch boundary). */
  readonly signal: AbortSignal;
  /** Progress of a long operation. */
  progress(report: Progress): void;
  /** Local files, for the operations that read or write them (init, verify of a file, export to a file). */
  readonly local: LocalFiles | null;
}

/** What only a local host can do; a server answers ERR_INVALID_ARGUMENT for these. */
export interface LocalFiles {
  /** `keyledger init`: writes a development setup if there is none, records the system key. */
  init(pkcs11: Pkcs11InitSetup | null): Promise<InitResult>;
  /** An absolute path from one the user gave (relative to the working directory). */
  resolvePath(path: string): string;
  /** The configuration for verifying a file (its MACs, anchors), or null when no config file is at hand. */
  fileVerifier(): Promise<FileVerifier | null>;
}

/** How an input field shows on the command line. */
export interface CliShape {
  /** The command word(s), default the operation's name; e.g. `audit export`. */
  readonly command?: string;
  /**
   * Several operations may share one command: the option that picks this one (its presence). An
   * input field is passed on; any other name is a flag of the command alone (`rewrap --status`).
   */
  readonly selectedBy?: string;
  /** Input fields taken as positional arguments, in order. */
  readonly positionals?: readonly string[];
  /**
   * An option of the command line alone (`--file <file>`) whose file the CLI reads, one item a
   * line, into an array field (`scopes`): a remote call sends the items, not the file.
   */
  readonly linesFrom?: { readonly flag: string; readonly field: string };
  /** The placeholder shown for a field in usage (default: the field name in kebab case). */
  readonly placeholders?: Readonly<Record<string, string>>;
}

/** What a handler returns: a result (unary, bytes) or a stream of results (events). */
export type OperationResult = Promise<unknown> | Observable<unknown>;

export interface Operation<
  Name extends string = string,
  I = unknown,
  P = unknown,
  R extends OperationResult = OperationResult,
> {
  readonly name: Name;
  /** One line, for the command listing. */
  readonly summary: string;
  /** A few more lines for the command's own help; optional. */
  readonly description?: string;
  /** The input, plain JSON data. Every field has a `.describe()` text: it is the option's help. */
  readonly input: z.ZodObject;
  readonly permission: Permission;
  /**
   * Answers only about the caller itself (`whoami`): every authenticated principal may run it,
   * whatever its grants; `permission` is then nominal.
   */
  readonly aboutCaller?: boolean;
  /** The custodian (base64) the operation applies to, for a grant per custodian; null: ledger-wide. */
  custodianOf(input: I): string | null;
  /**
   * The custodian is named by the input bytes, not the input fields (decrypt: by the ciphertext's
   * header), when `custodianOf` answers null: a host authorises it through `host.authorize`.
   */
  readonly custodianFromContent?: boolean;
  /** Whether it may append events. */
  readonly writes: boolean;
  readonly kind: OperationKind;
  readonly opens: Opens;
  /** Whether it honours `host.signal` (stops at a safe point and can be resumed). */
  readonly stoppable?: boolean;
  readonly cli?: CliShape;
  /**
   * Checks the input beyond its schema (identities, dates, durations) with the ledger's own error
   * codes, before anything is opened: bad input never touches the store.
   */
  prepare(input: I): P;
  /**
   * Runs it: `unary` and `bytes` operations resolve to their result, `events` operations return an
   * Observable. The result is plain JSON data (see plain.ts); `bytes` operations also get the streams.
   */
  run(prepared: P, host: OperationHost, streams?: ByteStreams): R;
}

/** Declares an operation with its types inferred from the schema and the handler. */
export function defineOperation<
  const Name extends string,
  S extends z.ZodObject,
  P,
  R extends OperationResult,
>(
  operation: Omit<Operation<Name, z.infer<S>, P, R>, 'input'> & { readonly input: S },
): Operation<Name, z.infer<S>, P, R> & { readonly input: S } {
  return operation;
}
