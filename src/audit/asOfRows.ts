import * as crypto from 'node:crypto';
import type { KeymetaView, WrappedMaterial } from '../../projections/keymeta.js';
import { keymetaRowOf } from '../../projections/keymetaRows.js';
import { SNAPSHOT_VERSION } from '../../projections/keymetaSnapshot.js';
import { KeyledgerError } from '../domain/errors.js';
import type { KeyId, ScopeKey } from '../domain/identities.js';
import type { ScopeState } from '../domain/scopeState.js';
import { asOfSnapshotName } from '../journal/streamNames.js';
import type { EventStore, JsonValue, SnapshotRow } from '../store/eventStore.js';
import type { CheckpointMacKeys } from './checkpointMacKeys.js';
import { LazyKeyIndex } from './lazyKeyIndex.js';
import { LazyScopes } from './lazyScopes.js';
import { addRowHash } from './rowHash.js';
import { RowHashWorker } from './rowHashWorker.js';
import { rowSecret } from './snapshotRows.js';

/**
 * Historic snapshots as rows (docs/formats.md, "As-of snapshot, row form"): the sealed header of
 * `<prefix>keymeta-asof-<p>` lists every scope of the view at `p` with the position of the
 * historic snapshot whose rows hold that scope's state as it is at `p` (its own position when the
 * scope changed since the previous historic snapshot, else an earlier one's), the scope's key ids
 * (the replay's key index), and the keyed additive digest of all those rows (snapshotRows.ts's
 * row hash, under a secret of the series). A historic snapshot thus writes only the scopes that
 * changed since the one before it, which lets the series be denser (a shorter replay) at the cost
 * of what changed; loading one reads every referenced row as text and decodes a scope only when
 * the replay or the caller reads it (lazyScopes.ts). The rows are what projections/keymetaRows.ts
 * writes, without materials (historic snapshots never hold wrapped keys).
 *
 * A row referenced but missing, edited, or put in from another scope or snapshot changes the sum
 * (or fails to read): the snapshot is rejected as 'snapshot-rows-mismatch' and the query starts
 * from the one before it. Rows are never rewritten once a later header references them: a
 * historic snapshot's name carries its position, and the state of a scope at a position is the
 * same in every process (two processes writing one position write the same rows, one of them
 * perhaps fewer: a header whose rows another process's save replaced fails its digest and is
 * skipped, never answered from).
 */

export const AS_OF_ROWS_VERSION = 1;

/** The name the row secret is derived for: one secret for the whole series (rows are shared). */
export function asOfRowsSecretName(prefix: string): string {
  return `${prefix}keymeta-asof-rows`;
}

/** One scope of a header: [scope key, position of the snapshot holding its row (decimal)]. */
type ScopeRef = readonly [string, string];

/** The header body's `asOfRows` member. */
interface AsOfRowsMember {
  readonly version: number;
  readonly keymetaVersion: number;
  readonly count: number;
  readonly digest: string;
  readonly stkIdentity: string;
  readonly scopes: readonly ScopeRef[];
  /** Every key id of the view, sorted (code unit order), and the index in `scopes` of its scope. */
  readonly keys: readonly string[];
  readonly owners: readonly number[];
}

const NO_MATERIALS: ReadonlyMap<KeyId, WrappedMaterial> = new Map();
const DIGITS = /^(0|[1-9]\d{0,19})$/;
const HEX64 = /^[0-9a-f]{64}$/;
const HEX16 = /^[0-9a-f]{16}$/;

/** Whether a sealed historic body is of the row form. */
export function isAsOfRowsBody(body: unknown): boolean {
  return memberOf(body) !== null;
}

function memberOf(body: unknown): AsOfRowsMember | null {
  const m = (body as { asOfRows?: Partial<Record<keyof AsOfRowsMember, unknown>> } | null)?.asOfRows;
  if (typeof m !== 'object' || m === null) return null;
  if (m.version !== AS_OF_ROWS_VERSION || m.keymetaVersion !== SNAPSHOT_VERSION) return null;
  const { count, digest, stkIdentity, scopes, keys, owners } = m;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) return null;
  if (typeof digest !== 'string' || !HEX64.test(digest)) return null;
  if (typeof stkIdentity !== 'string' || !HEX16.test(stkIdentity)) return null;
  if (!Array.isArray(scopes) || scopes.length !== count) return null;
  for (const ref of scopes as unknown[]) {
    if (!Array.isArray(ref) || ref.length !== 2) return null;
    const [key, position] = ref as unknown[];
    if (typeof key !== 'string' || typeof position !== 'string' || !DIGITS.test(position)) return null;
  }
  if (!Array.isArray(keys) || !Array.isArray(owners) || keys.length !== owners.length) return null;
  for (let i = 0; i < keys.length; i++) {
    const owner = owners[i] as unknown;
    if (typeof keys[i] !== 'string' || (i > 0 && !((keys[i - 1] as string) < (keys[i] as string))))
      return null;
    if (typeof owner !== 'number' || !Number.isInteger(owner) || owner < 0 || owner >= count) return null;
  }
  return m as AsOfRowsMember;
}

/** A row's keyed hash as its own lanes (added into a digest by the caller). */
function rowLanes(secretHex: string, key: string, value: string): Uint32Array {
  const lanes = new Uint32Array(8);
  addRowHash(crypto, secretHex, key, value, lanes, 1);
  return lanes;
}

function digestHex(lanes: Uint32Array): string {
  const bytes = Buffer.alloc(32);
  for (let i = 0; i < 8; i++) bytes.writeUInt32BE(lanes[i] as number, i * 4);
  return bytes.toString('hex');
}

/** What the writer knows of a scope's row in the series. */
interface Written {
  /** The state the row was encoded from (states in a view at a boundary never change). */
  readonly state: ScopeState;
  readonly position: bigint;
  readonly lanes: Uint32Array;
  readonly keyIds: readonly string[];
}

/** The scopes of the view when a historic snapshot fell due (the states are immutable from then on). */
export interface AsOfRowsCapture {
  readonly position: bigint;
  readonly scopes: readonly (readonly [ScopeKey, ScopeState])[];
}

/**
 * Writes the row form of historic snapshots. It remembers, per scope, the state it last wrote a
 * row for and where: a scope whose state is the same object as then has not changed (states at a
 * boundary are immutable, see KeymetaReplay.view and evolveKeymeta), so its row is referenced,
 * not written again. The first snapshot of a process, the first under a new system key, and the
 * first after a failed save write every row.
 */
export class AsOfRowsWriter {
  readonly #prefix: string;
  #written = new Map<ScopeKey, Written>();
  /** The system key the remembered rows were hashed under. */
  #stkIdentity: string | null = null;

  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  /** Takes the scopes of `view` (at a boundary: the caller ends any replay's working state first). */
  capture(view: KeymetaView): AsOfRowsCapture {
    return { position: view.position, scopes: [...view.scopes] };
  }

  /**
   * The header body and the rows to save for `capture` (its rows are written by the caller in one
   * step with the sealed header); `commit` is called once they are saved, `abandon` if not.
   */
  async prepare(
    capture: AsOfRowsCapture,
    keys: CheckpointMacKeys,
  ): Promise<{ body: JsonValue; rows: SnapshotRow[]; commit(): void; abandon(): void }> {
    const stkIdentity = await keys.current();
    const secret = await rowSecret(keys, stkIdentity, asOfRowsSecretName(this.#prefix));
    if (secret === null) {
      throw new KeyledgerError(
        'ERR_SYSTEM_KEY_NOT_FOUND',
        `system key ${stkIdentity} cannot seal a snapshot`,
        {
          identity: stkIdentity,
        },
      );
    }
    const secretHex = secret.toString('hex');
    const full = this.#stkIdentity !== stkIdentity;
    const known = full ? new Map<ScopeKey, Written>() : this.#written;
    const next = new Map<ScopeKey, Written>();
    const rows: SnapshotRow[] = [];
    const refs: ScopeRef[] = [];
    const sum = new Uint32Array(8);
    const owned: [string, number][] = [];
    for (const [key, state] of capture.scopes) {
      let written = known.get(key);
      if (written === undefined || written.state !== state) {
        const value = keymetaRowOf(state, NO_MATERIALS);
        rows.push({ key, value });
        written = {
          state,
          position: capture.position,
          lanes: rowLanes(secretHex, key, value),
          keyIds: [...state.keys.keys()],
        };
      }
      next.set(key, written);
      for (let i = 0; i < 8; i++) sum[i] = (sum[i] as number) + (written.lanes[i] as number);
      for (const id of written.keyIds) owned.push([id, refs.length]);
      refs.push([key, written.position.toString()]);
    }
    // Sorted for the reader's binary search (lazyKeyIndex.ts).
    owned.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const member: AsOfRowsMember = {
      version: AS_OF_ROWS_VERSION,
      keymetaVersion: SNAPSHOT_VERSION,
      count: refs.length,
      digest: digestHex(sum),
      stkIdentity,
      scopes: refs,
      keys: owned.map(([id]) => id),
      owners: owned.map(([, owner]) => owner),
    };
    return {
      body: { asOfRows: member as unknown as JsonValue },
      rows,
      commit: () => {
        this.#written = next;
        this.#stkIdentity = stkIdentity;
      },
      abandon: () => {
        // What is stored is not known any more: the next snapshot writes every row.
        this.#written = new Map();
        this.#stkIdentity = null;
      },
    };
  }
}

/**
 * From this many rows on, a load hashes them on a worker thread while the replay runs (at 20,000
 * rows, 1M events: the load alone takes about as long either way, 275–300 ms inline against 294 ms
 * plus the wait with the worker, but the worker's hash overlaps the replay; whole queries measured
 * 0.50–0.57 s median with it, 0.82–1.02 s inline on a slower machine state, see BENCHMARKS.md).
 */
export const AS_OF_PARALLEL_HASH_ROWS = 5_000;
const PAGE = 2_048;

export type AsOfRowsLoad =
  | { readonly kind: 'unusable' }
  | { readonly kind: 'mismatch' }
  | {
      readonly kind: 'loaded';
      readonly view: KeymetaView;
      /** Whether the rows add up to the sealed digest (run alongside the replay); marks the view's scopes checked if so. */
      readonly matches: () => Promise<boolean>;
    };

/**
 * Reads the rows a row-form historic header references (as text), hashing them as they come (on a
 * worker for a large view), and returns the view with its scopes decoded on first read. `body`:
 * the header's sealed body, checked by the caller.
 */
export async function loadAsOfRows(
  store: EventStore,
  prefix: string,
  body: unknown,
  position: bigint,
  keys: CheckpointMacKeys,
  parallelFrom: number = AS_OF_PARALLEL_HASH_ROWS,
): Promise<AsOfRowsLoad> {
  const member = memberOf(body);
  if (member === null) return { kind: 'unusable' };
  const secret = await rowSecret(keys, member.stkIdentity, asOfRowsSecretName(prefix));
  if (secret === null) return { kind: 'unusable' };
  const rows = new Map<ScopeKey, string>();
  const scopes = new LazyScopes(rows);
  const view: KeymetaView = {
    position,
    scopes,
    keyIndex: new LazyKeyIndex(
      member.keys,
      member.owners,
      member.scopes.map(([key]) => key as ScopeKey),
    ),
    materials: new Map(),
  };
  const worker = member.count >= parallelFrom ? new RowHashWorker(secret) : null;
  const lanes = new Uint32Array(8);
  const secretHex = secret.toString('hex');
  let page: SnapshotRow[] = [];
  try {
    const names = new Map<string, string>();
    for (const [key, at] of member.scopes) {
      let name = names.get(at);
      if (name === undefined) {
        name = asOfSnapshotName(prefix, BigInt(at));
        names.set(at, name);
      }
      const value = await store.loadSnapshotRow(name, key);
      if (value === null || rows.has(key as ScopeKey)) {
        await worker?.close();
        return { kind: 'mismatch' };
      }
      rows.set(key as ScopeKey, value);
      if (worker === null) addRowHash(crypto, secretHex, key, value, lanes, 1);
      else {
        page.push({ key, value });
        if (page.length === PAGE) {
          await worker.add(page);
          page = [];
        }
      }
    }
    if (worker !== null && page.length > 0) await worker.add(page);
  } catch (error) {
    await worker?.close();
    throw error;
  }
  // The lazy view takes rows out of `rows` as it decodes them.
  const loaded = rows.size;
  const matches = async (): Promise<boolean> => {
    let count = loaded;
    let sum: Uint32Array = lanes;
    if (worker !== null) {
      const done = await worker.finish();
      sum = done.lanes;
      count = done.count;
    }
    const matched = count === member.count && digestHex(sum) === member.digest;
    if (matched) scopes.markChecked();
    return matched;
  };
  return { kind: 'loaded', view, matches };
}

/**
 * verify's check of a row-form historic snapshot: whether the rows its header references add up
 * to its sealed digest. `seen` carries each stored row's hash from one snapshot to the next (a
 * row is referenced by every later header until its scope changes): verify reads and hashes each
 * stored row once, not once per header. Null when the snapshot is not of the row form or its row
 * secret's key is not available.
 */
export async function asOfRowsMatch(
  store: EventStore,
  prefix: string,
  body: unknown,
  keys: CheckpointMacKeys,
  seen: Map<string, Map<string, Uint32Array>>,
): Promise<boolean | null> {
  const member = memberOf(body);
  if (member === null) return null;
  const secret = await rowSecret(keys, member.stkIdentity, asOfRowsSecretName(prefix));
  if (secret === null) return null;
  const secretHex = secret.toString('hex');
  // By system key: a series rewritten under a new one hashes its rows anew.
  let hashes = seen.get(member.stkIdentity);
  if (hashes === undefined) {
    hashes = new Map();
    seen.set(member.stkIdentity, hashes);
  }
  const sum = new Uint32Array(8);
  const scopes = new Set<string>();
  for (const [key, at] of member.scopes) {
    if (scopes.has(key)) return false;
    scopes.add(key);
    const id = `${at}\n${key}`;
    let lanes = hashes.get(id);
    if (lanes === undefined) {
      const value = await store.loadSnapshotRow(asOfSnapshotName(prefix, BigInt(at)), key);
      if (value === null) return false;
      lanes = rowLanes(secretHex, key, value);
      hashes.set(id, lanes);
    }
    for (let i = 0; i < 8; i++) sum[i] = (sum[i] as number) + (lanes[i] as number);
  }
  return scopes.size === member.count && digestHex(sum) === member.digest;
}
