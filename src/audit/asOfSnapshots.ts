import { z } from 'zod';
import type { KeymetaView } from '../../projections/keymeta.js';
import { keymetaToSnapshot } from '../../projections/keymetaSnapshot.js';
import { asOfIndexName, asOfSnapshotName } from '../journal/streamNames.js';
import type { EventStore, JsonValue, Snapshot } from '../store/eventStore.js';
import { AsOfRowsWriter } from './asOfRows.js';
import type { CheckpointMacKeys } from './checkpointMacKeys.js';

/**
 * The series of historic keymeta snapshots that as-of queries start from (docs/audit.md).
 *
 * The EventStore port keeps snapshots by name only, so the series is a set of named snapshots,
 * `<prefix>keymeta-asof-<position>`, plus an index, `<prefix>keymeta-asof-index`, of marks: global
 * positions with the latest event time up to them, some of which have a snapshot. A query for a
 * position starts from the latest snapshot at or below it; a query for a time from the latest
 * snapshot whose events all occurred at or before it, and marks bound the scan that turns a time
 * into a position.
 *
 * Each historic snapshot is sealed like the keymeta snapshot (src/audit/snapshotSeal.ts): bound to
 * the event at its position and MACed under the system key; asOf.ts skips one that fails. Two forms,
 * both read on every store:
 * - the row form (asOfRows.ts: a header and the rows of the scopes that changed since the previous
 *   one), written where the store reads one row without reading the others
 *   (EventStore.snapshotRowReadAlone: sqlite). A query looks up one row per scope, spread across
 *   many snapshots: where a row read costs its whole snapshot (memory, EventStoreDB keep a row
 *   snapshot as one document) that is a document read per scope, quadratic in the view.
 * - the document form (the whole view in one snapshot), written on the other stores, and by every
 *   store before the row form existed.
 *
 * Historic snapshots leave out the wrapped material: a snapshot that outlived a key's destruction
 * would otherwise keep a copy of what crypto-shredding deleted. As-of answers are about key states,
 * so they never need it.
 */

export interface AsOfMark {
  readonly position: bigint;
  /** The latest `occurredAt` of the ledger's events up to and including `position` (ms since the epoch). */
  readonly maxOccurredAt: number;
  /** Whether `<prefix>keymeta-asof-<position>` holds the view at `position`. */
  readonly snapshot: boolean;
}

const INDEX_VERSION = 1;

const indexSchema = z.strictObject({
  version: z.literal(INDEX_VERSION),
  marks: z.array(
    z.strictObject({
      position: z.string().regex(/^[1-9]\d{0,19}$/),
      maxOccurredAt: z.iso.datetime(),
      snapshot: z.boolean(),
    }),
  ),
});

export async function loadAsOfIndex(store: EventStore, prefix: string): Promise<AsOfMark[]> {
  const snapshot = await store.loadSnapshot(asOfIndexName(prefix));
  if (snapshot === null) return [];
  const parsed = indexSchema.safeParse(snapshot.state);
  if (!parsed.success) return [];
  return parsed.data.marks
    .map((m) => ({
      position: BigInt(m.position),
      maxOccurredAt: Date.parse(m.maxOccurredAt),
      snapshot: m.snapshot,
    }))
    .sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
}

function indexToJson(marks: readonly AsOfMark[]): JsonValue {
  return {
    version: INDEX_VERSION,
    marks: marks.map((m) => ({
      position: m.position.toString(),
      maxOccurredAt: new Date(m.maxOccurredAt).toISOString(),
      snapshot: m.snapshot,
    })),
  };
}

/** Union by position; a mark with a snapshot wins over the same mark without. */
function mergeMarks(a: readonly AsOfMark[], b: readonly AsOfMark[]): AsOfMark[] {
  const byPosition = new Map<bigint, AsOfMark>();
  for (const mark of [...a, ...b]) {
    const known = byPosition.get(mark.position);
    if (known === undefined || (!known.snapshot && mark.snapshot)) byPosition.set(mark.position, mark);
  }
  return [...byPosition.values()].sort((x, y) =>
    x.position < y.position ? -1 : x.position > y.position ? 1 : 0,
  );
}

/**
 * Row-form historic snapshots come at least `every` positions apart, and at least a twentieth of
 * the view's size (scopes and keys): each writes the header (a line per scope and its key ids) and
 * the rows that changed, so this keeps the series' cost per event bounded while a query replays at
 * most that many events after its snapshot. Document-form ones write the whole view each, so they
 * stay `max(every, view size)` apart, as before the row form.
 */
export const AS_OF_DENSITY = 20;

/** The view without its materials (see the module comment). */
function withoutMaterials(view: KeymetaView): KeymetaView {
  return { position: view.position, scopes: view.scopes, keyIndex: view.keyIndex, materials: new Map() };
}

/** What a historic snapshot is sealed with (AsOfSeriesWriter.capture). */
export interface AsOfSealing {
  readonly seal: (name: string, body: JsonValue) => Promise<Snapshot>;
  readonly keys: CheckpointMacKeys;
  readonly boundary: () => void;
}

/**
 * Writes the series as a projector applies events. Intervals are in global positions, so a process
 * that restored a later snapshot (and never saw the events in between) still marks on time. A
 * row-form snapshot costs its header (a line per scope) and the rows that changed, so one is taken
 * only `max(every, view size / AS_OF_DENSITY)` positions after the last (amortised O(AS_OF_DENSITY)
 * per event; the rows changed are at most the events in between); a document-form one costs the
 * view, so one is taken `max(every, view size)` after the last (amortised O(1) per event). The
 * form follows the store (the module comment). Marks are cheap and come ten times as often
 * (never more often than the index has entries); they are kept in memory and the index is saved
 * with the next snapshot or at flush(): every save is a durable write, and a mark lost with a
 * process only costs a later query some scanning.
 *
 * Several processes may write the series: each merges its marks into the index it loads before
 * saving. Two saves that race can drop a mark; that costs a later query some replay, never a wrong
 * answer, as every snapshot is named by its position and is the same in every process.
 */
export class AsOfSeriesWriter {
  readonly #store: EventStore;
  readonly #prefix: string;
  readonly #every: number;
  /** Null where the series is written in the document form (the module comment). */
  readonly #rows: AsOfRowsWriter | null;
  /** View size over the spacing between snapshots: AS_OF_DENSITY for rows, 1 for documents. */
  readonly #density: number;
  #marks: AsOfMark[] = [];
  #lastMark = 0n;
  #lastSnapshot = 0n;
  /** Marks taken since the index was last saved. */
  #unsaved = false;

  /** `every`: the least number of positions between two snapshots (≥ 1). */
  constructor(store: EventStore, prefix: string, every: number) {
    if (!Number.isSafeInteger(every) || every < 1) throw new TypeError('every must be a positive integer');
    this.#store = store;
    this.#prefix = prefix;
    this.#every = every;
    const rows = store.snapshotRowReadAlone;
    this.#rows = rows ? new AsOfRowsWriter(prefix) : null;
    this.#density = rows ? AS_OF_DENSITY : 1;
  }

  /** Reads the index, so that marks continue where any process left them. */
  async load(): Promise<void> {
    this.#remember(await loadAsOfIndex(this.#store, this.#prefix));
  }

  /**
   * Whether the view at `position` should be marked (and maybe snapshotted). `canSeal`: whether a
   * snapshot could be sealed now; while none can, a snapshot falling due must not make every
   * position due (a mark per event, each merged into all the others, made a catch-up quadratic).
   */
  isDue(position: bigint, viewSize: number, canSeal = true): boolean {
    return this.#markDue(position) || (canSeal && this.#snapshotDue(position, viewSize));
  }

  /**
   * Takes what is due from the view as it is now (synchronously: the view changes with the next
   * event). When that includes a snapshot, returns the job that saves it and the index, for the
   * caller to run off the critical path (jobs run one after the other, in capture order); a mark
   * alone waits for the next save (or flush). `sealing` (null: none can be sealed yet, so only a
   * mark is taken): `seal` seals the header, `keys` make the rows' secret, `boundary` ends any
   * replay's working state, so that the states captured never change again (asOfRows.ts).
   */
  capture(
    view: KeymetaView,
    maxOccurredAt: number,
    viewSize: number,
    sealing: AsOfSealing | null,
  ): (() => Promise<void>) | null {
    const position = view.position;
    const snapshot = sealing !== null && this.#snapshotDue(position, viewSize);
    // The mark names its snapshot only once the snapshot is saved: a save that fails (a system key
    // that cannot seal, a store error) must not leave an index naming a snapshot that is not there
    // (a flush at close would write it). The spacing counts from here either way, so a failing
    // seal is not retried at every later position.
    this.#remember([{ position, maxOccurredAt, snapshot: false }]);
    this.#unsaved = true;
    if (!snapshot || sealing === null) return null;
    if (position > this.#lastSnapshot) this.#lastSnapshot = position;
    const name = asOfSnapshotName(this.#prefix, position);
    const rows = this.#rows;
    const saved = async (): Promise<void> => {
      this.#remember([{ position, maxOccurredAt, snapshot: true }]);
      this.#unsaved = true;
      await this.flush();
    };
    if (rows === null) {
      const body = keymetaToSnapshot(withoutMaterials(view));
      return async () => {
        // The snapshot first: the index never names one that is not there.
        await this.#store.saveSnapshot(name, await sealing.seal(name, body));
        await saved();
      };
    }
    sealing.boundary();
    const captured = rows.capture(view);
    return async () => {
      // The snapshot (header and its rows, one step) first: the index never names one not there.
      const prepared = await rows.prepare(captured, sealing.keys);
      try {
        const header = await sealing.seal(name, prepared.body);
        if (!(await this.#store.saveSnapshotRows(name, header, prepared.rows, null))) {
          prepared.abandon();
          return;
        }
      } catch (error) {
        prepared.abandon();
        throw error;
      }
      prepared.commit();
      await saved();
    };
  }

  /** Saves the index if marks were taken since it was last saved (merged with what is stored). */
  async flush(): Promise<void> {
    if (!this.#unsaved) return;
    this.#unsaved = false;
    const merged = mergeMarks(await loadAsOfIndex(this.#store, this.#prefix), this.#marks);
    this.#remember(merged);
    const last = merged[merged.length - 1];
    await this.#store.saveSnapshot(asOfIndexName(this.#prefix), {
      position: last?.position ?? 0n,
      state: indexToJson(merged),
    });
  }

  #markDue(position: bigint): boolean {
    const interval = Math.max(Math.ceil(this.#every / 10), this.#marks.length);
    return position - this.#lastMark >= BigInt(interval);
  }

  #snapshotDue(position: bigint, viewSize: number): boolean {
    return (
      position - this.#lastSnapshot >= BigInt(Math.max(this.#every, Math.ceil(viewSize / this.#density)))
    );
  }

  #remember(marks: readonly AsOfMark[]): void {
    const [only] = marks;
    // The common case, a new mark after every known one, is an append, not a merge of all of them.
    if (marks.length === 1 && only !== undefined && only.position > this.#lastMark) {
      this.#marks.push(only);
      this.#lastMark = only.position;
      if (only.snapshot && only.position > this.#lastSnapshot) this.#lastSnapshot = only.position;
      return;
    }
    this.#marks = mergeMarks(this.#marks, marks);
    for (const mark of this.#marks) {
      if (mark.position > this.#lastMark) this.#lastMark = mark.position;
      if (mark.snapshot && mark.position > this.#lastSnapshot) this.#lastSnapshot = mark.position;
    }
  }
}
