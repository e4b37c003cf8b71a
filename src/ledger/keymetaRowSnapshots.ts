import { emptyKeymetaView, type KeymetaView, type WrappedMaterial } from '../../projections/keymeta.js';
import { KEYMETA_ROWS_VERSION, KeymetaRowDecoder, keymetaRowOf } from '../../projections/keymetaRows.js';
import { SNAPSHOT_VERSION } from '../../projections/keymetaSnapshot.js';
import type { CheckpointMacKeys } from '../audit/checkpointMacKeys.js';
import { RowDigest, rowSecret, rowsHeaderOf, storedRowsMatch } from '../audit/snapshotRows.js';
import { type SealedEvent, sealSnapshot } from '../audit/snapshotSeal.js';
import type { LedgerEvent } from '../domain/events.js';
import type { Custodian, KeyId, Namespace, ScopeKey } from '../domain/identities.js';
import { scopeKeyOf } from '../domain/identities.js';
import type { ScopeState } from '../domain/scopeState.js';
import type { EventStore, JsonValue, SnapshotRowChange } from '../store/eventStore.js';

/**
 * The keymeta snapshot as rows (EventStore.saveSnapshotRows): one row per scope (its state and
 * its keys' wrapped material, projections/keymetaRows.ts) and a sealed header under the snapshot's
 * name holding the rest (system keys, API tokens, material no scope names yet) and the rows'
 * digest and count (src/audit/snapshotRows.ts). A save writes the scopes changed since the last
 * save (the first save, and the first under a new system key, write every row); an open streams
 * the rows in batches and keeps the view only if they add up to the sealed digest.
 */

/** The header body's `rows` member. */
interface RowsMember {
  readonly version: number;
  readonly keymetaVersion: number;
  readonly count: number;
  readonly digest: string;
  readonly stkIdentity: string;
  /** Material of keys no scope holds yet: [keyId, wrapped, stkIdentity]. */
  readonly orphans: readonly (readonly [string, string, string])[];
}

/** What the rest of the header holds (the projector's other read models). */
export type HeaderRest = Readonly<Record<string, JsonValue>>;

/** What a save writes, taken from the view when the snapshot is due (the view moves on after). */
type Capture =
  | {
      readonly kind: 'full';
      readonly scopes: ReadonlyMap<ScopeKey, ScopeState>;
      readonly materials: ReadonlyMap<KeyId, WrappedMaterial>;
      readonly orphans: RowsMember['orphans'];
    }
  | {
      readonly kind: 'changes';
      readonly rows: readonly { readonly key: ScopeKey; readonly value: string }[];
      readonly orphans: RowsMember['orphans'];
    };

interface Base {
  readonly position: bigint;
  readonly digest: RowDigest;
  readonly stkIdentity: string;
}

export type RowsRestore =
  | { readonly kind: 'restored'; readonly view: KeymetaView }
  | { readonly kind: 'mismatch' }
  | { readonly kind: 'unusable' };

export class KeymetaRowSnapshots {
  readonly #store: EventStore;
  readonly #name: string;
  /** The stored snapshot this process last wrote or checked. */
  #base: Base | null = null;
  /**
   * Whether the stored snapshot will be #base when the next capture is saved (saves run one after
   * the other): then a capture takes only changed rows. False: the next capture takes every row.
   */
  #expectBase = false;
  readonly #dirty = new Set<ScopeKey>();
  /** Keys whose material arrived before a scope named them. */
  readonly #orphans = new Set<KeyId>();

  constructor(store: EventStore, name: string) {
    this.#store = store;
    this.#name = name;
  }

  /** Whether the next save writes only changed rows (so saving often is cheap). */
  get incremental(): boolean {
    return this.#expectBase;
  }

  /** Whether a sealed body is a row snapshot's header. */
  static isRowsBody(body: unknown): boolean {
    return rowsHeaderOf(body) !== null;
  }

  /** Notes the row an applied event changed (after the view applied it). */
  touched(view: KeymetaView, event: LedgerEvent): void {
    if (event.type === 'KeyMaterialWrapped') {
      const owner = view.keyIndex.get(event.data.keyId);
      if (owner === undefined) this.#orphans.add(event.data.keyId);
      else this.#dirty.add(owner);
      return;
    }
    // Scope events (and any other naming a scope: a row rewritten unchanged costs nothing more).
    const { custodian, namespace } = event.data as { custodian?: unknown; namespace?: unknown };
    if (typeof custodian === 'string' && typeof namespace === 'string')
      this.#dirty.add(scopeKeyOf(custodian as Custodian, namespace as Namespace));
  }

  /**
   * The view the rows hold, if they add up to the header's digest. `body` is the header's sealed
   * body (checked by the caller); `keys` the opening keys (for the row secret).
   */
  async restore(body: unknown, position: bigint, keys: CheckpointMacKeys): Promise<RowsRestore> {
    const header = rowsHeaderOf(body);
    const member = (body as { rows?: Partial<RowsMember> }).rows;
    if (
      header === null ||
      member?.version !== KEYMETA_ROWS_VERSION ||
      member.keymetaVersion !== SNAPSHOT_VERSION ||
      !Array.isArray(member.orphans)
    )
      return { kind: 'unusable' };
    const secret = await rowSecret(keys, header.stkIdentity, this.#name);
    if (secret === null) return { kind: 'unusable' };
    const view = emptyKeymetaView();
    view.position = position;
    const decoder = new KeymetaRowDecoder(view);
    const matched = await storedRowsMatch(this.#store, this.#name, header, secret, (key, value) =>
      decoder.add(key, value),
    );
    if (!matched) return { kind: 'mismatch' };
    for (const orphan of member.orphans) {
      if (!Array.isArray(orphan) || orphan.length !== 3 || !orphan.every((s) => typeof s === 'string'))
        return { kind: 'unusable' };
      const [keyId, wrapped, stkIdentity] = orphan as [KeyId, string, string];
      view.materials.set(keyId, { wrapped, stkIdentity });
      this.#orphans.add(keyId);
    }
    const digest = RowDigest.parse(secret, header.digest, header.count);
    if (digest !== null) {
      this.#base = { position, digest, stkIdentity: header.stkIdentity };
      this.#expectBase = true;
    }
    return { kind: 'restored', view };
  }

  /** Takes what the next save writes from the view as it is now. */
  capture(view: KeymetaView): Capture {
    const orphans: [string, string, string][] = [];
    if (!this.#expectBase) {
      this.#expectBase = true;
      this.#dirty.clear();
      this.#orphans.clear();
      for (const [keyId, m] of view.materials) {
        if (!view.keyIndex.has(keyId)) {
          orphans.push([keyId, m.wrapped, m.stkIdentity]);
          this.#orphans.add(keyId);
        }
      }
      return { kind: 'full', scopes: new Map(view.scopes), materials: new Map(view.materials), orphans };
    }
    for (const keyId of this.#orphans) {
      const m = view.materials.get(keyId);
      if (view.keyIndex.has(keyId) || m === undefined) this.#orphans.delete(keyId);
      else orphans.push([keyId, m.wrapped, m.stkIdentity]);
    }
    const rows: { key: ScopeKey; value: string }[] = [];
    for (const key of this.#dirty) {
      const state = view.scopes.get(key);
      if (state !== undefined) rows.push({ key, value: keymetaRowOf(state, view.materials) });
    }
    this.#dirty.clear();
    return { kind: 'changes', rows, orphans };
  }

  /**
   * Seals and writes a capture at `position`. A capture of changes needs the stored snapshot to
   * be the one this process last wrote: otherwise (another writer's save, a failure, a new system
   * key) nothing is written and the next save writes every row.
   */
  async save(
    capture: Capture,
    keys: CheckpointMacKeys,
    position: bigint,
    event: SealedEvent,
    rest: HeaderRest,
  ): Promise<void> {
    try {
      if (!(await this.#save(capture, keys, position, event, rest))) this.#expectBase = false;
    } catch (error) {
      this.#expectBase = false;
      throw error;
    }
  }

  /** False if nothing was written. */
  async #save(
    capture: Capture,
    keys: CheckpointMacKeys,
    position: bigint,
    event: SealedEvent,
    rest: HeaderRest,
  ): Promise<boolean> {
    const base = this.#base;
    this.#base = null;
    const stkIdentity = await keys.current();
    const secret = await rowSecret(keys, stkIdentity, this.#name);
    if (secret === null) return false;
    let digest: RowDigest;
    let rows: Iterable<SnapshotRowChange>;
    if (capture.kind === 'changes') {
      if (base === null || base.stkIdentity !== stkIdentity) return false;
      digest = base.digest.copy();
      for (const { key, value } of capture.rows) {
        const old = await this.#store.loadSnapshotRow(this.#name, key);
        if (old !== null) digest.remove(key, old);
        digest.add(key, value);
      }
      rows = capture.rows;
    } else {
      digest = new RowDigest(secret);
      for (const [key, state] of capture.scopes) digest.add(key, keymetaRowOf(state, capture.materials));
      rows = allRows(capture);
    }
    const member: RowsMember = {
      version: KEYMETA_ROWS_VERSION,
      keymetaVersion: SNAPSHOT_VERSION,
      count: digest.count,
      digest: digest.digestHex(),
      stkIdentity,
      orphans: capture.orphans,
    };
    const header = await sealSnapshot(keys, this.#name, position, event, {
      ...rest,
      rows: member as unknown as JsonValue,
    });
    const written = await this.#store.saveSnapshotRows(
      this.#name,
      header,
      rows,
      capture.kind === 'changes' ? (base?.position ?? null) : null,
    );
    if (written) this.#base = { position, digest, stkIdentity };
    return written;
  }
}

/** Every row of a full capture, encoded as the store takes them (not all held at once). */
function* allRows(capture: Extract<Capture, { kind: 'full' }>): Iterable<SnapshotRowChange> {
  for (const [key, state] of capture.scopes) yield { key, value: keymetaRowOf(state, capture.materials) };
}
