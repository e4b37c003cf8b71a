import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { KeyledgerError } from '../domain/errors.js';
import { HEX16, SHA256_HEX } from '../domain/fastEventChecks.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { EventStore, JsonValue, RecordedEvent, Snapshot } from '../store/eventStore.js';
import { canonicalJson } from './canonicalJson.js';
import { type CheckpointMacKeys, providerMacKeys } from './checkpointMacKeys.js';
import { eventHash } from './hashChain.js';

/**
 * Sealed snapshots (docs/formats.md, "Snapshot seal"): a read-model snapshot is an optimisation,
 * never a source of truth, so it is trusted only if it is bound to the event log and made by the
 * holder of the system key. The seal names the event at the snapshot's position (stream, revision,
 * hash: the chain's event hash) and MACs the whole snapshot under a key derived from the latest
 * system key with its own label (not the checkpoints'). A snapshot whose event is not in the log
 * (beyond the head, or another event there), whose MAC fails, or which has no seal is not used:
 * the view is rebuilt from the events, and the rejection is reported.
 */

/** HKDF info of the snapshot MAC key (SystemKeyHandle.mac): nothing else is MACed under it. */
export const SNAPSHOT_MAC_LABEL = 'keyledger snapshot mac v1';

/**
 * The version new seals are made with. Version 2 MACs the body as JSON.stringify writes it (one
 * native pass) instead of its canonical JSON (a sort and a string per member in JavaScript, which
 * was most of the time to check a large snapshot); version 1 seals are still checked as they
 * were made.
 */
export const SNAPSHOT_SEAL_VERSION = 2;

/** The event at a snapshot's position. */
export interface SealedEvent {
  readonly stream: string;
  readonly revision: bigint;
  readonly hash: string;
}

/** The event a projector applied last, hashed only when a snapshot needs it (replay stays cheap). */
export function sealedEventOf(recorded: RecordedEvent): () => SealedEvent {
  let hash: string | null = null;
  return () => {
    hash ??= eventHash(recorded);
    return { stream: recorded.streamName, revision: recorded.revision, hash };
  };
}

const sealedStateSchema = z.strictObject({
  seal: z.strictObject({
    version: z.union([z.literal(1), z.literal(2)]),
    stream: z.string().min(1).max(512),
    revision: z.string().regex(/^(0|[1-9][0-9]{0,19})$/),
    eventHash: z.string().regex(SHA256_HEX),
    stkIdentity: z.string().regex(HEX16),
    mac: z.string().regex(SHA256_HEX),
  }),
  body: z.unknown(),
});

/**
 * What the MAC covers: the snapshot's name, position, event, key and body.
 * Version 1: the canonical JSON of all of them. Version 2: the canonical JSON of all but the body,
 * a newline, then JSON.stringify of the body. A store gives the body back as JSON that parses to
 * the same value with its members in the same order (sqlite and EventStoreDB keep the text, the
 * memory store a copy), and JSON.stringify of that value is the text the sealer MACed. The header's
 * canonical JSON holds no raw newline (JSON escapes it in strings), so the two parts cannot be
 * shifted into each other.
 */
function sealMessage(
  version: 1 | 2,
  name: string,
  position: bigint,
  event: SealedEvent,
  stkIdentity: string,
  body: JsonValue,
): Buffer {
  const header = {
    purpose: version === 1 ? 'keyledger-snapshot-v1' : 'keyledger-snapshot-v2',
    name,
    position: position.toString(),
    stream: event.stream,
    revision: event.revision.toString(),
    eventHash: event.hash,
    stkIdentity,
  };
  if (version === 1) return Buffer.from(canonicalJson({ ...header, body }), 'utf8');
  return Buffer.from(`${canonicalJson(header)}\n${JSON.stringify(body)}`, 'utf8');
}

/**
 * The snapshot to store: `body` sealed under the current system key. ERR_SYSTEM_KEY_NOT_FOUND if
 * that key cannot MAC (ERR_LEDGER_NOT_INITIALISED before the ledger has one).
 */
export async function sealSnapshot(
  keys: CheckpointMacKeys,
  name: string,
  position: bigint,
  event: SealedEvent,
  body: JsonValue,
): Promise<Snapshot> {
  const stkIdentity = await keys.current();
  const answer = await keys.mac(
    stkIdentity,
    sealMessage(SNAPSHOT_SEAL_VERSION, name, position, event, stkIdentity, body),
  );
  if (answer.kind !== 'mac') {
    throw new KeyledgerError('ERR_SYSTEM_KEY_NOT_FOUND', `system key ${stkIdentity} cannot seal a snapshot`, {
      identity: stkIdentity,
    });
  }
  const seal = {
    version: SNAPSHOT_SEAL_VERSION,
    stream: event.stream,
    revision: event.revision.toString(),
    eventHash: event.hash,
    stkIdentity,
    mac: answer.mac.toString('hex'),
  };
  return { position, state: { seal, body } };
}

/** Why a stored snapshot is not used; the first five are verify problems (docs/audit.md). */
export type SnapshotRejectionKind =
  | 'snapshot-beyond-head'
  | 'snapshot-event-mismatch'
  | 'snapshot-unknown-system-key'
  | 'snapshot-mac-invalid'
  /** A row snapshot whose rows do not add up to the digest its sealed header holds. */
  | 'snapshot-rows-mismatch'
  /** No seal (written before snapshots were sealed, or stripped): unused, harmless, not a problem. */
  | 'snapshot-unbound'
  /** Sealed under a system key no longer available (retired): unused until a newer one is saved. */
  | 'snapshot-unverifiable';

export interface SnapshotRejection {
  readonly snapshot: string;
  readonly position: bigint;
  readonly kind: SnapshotRejectionKind;
  readonly message: string;
}

export type SnapshotCheck =
  | { readonly ok: true; readonly body: unknown; readonly event: SealedEvent }
  | { readonly ok: false; readonly rejection: SnapshotRejection };

/** Whether the rejection means the snapshot was tampered with (not merely old). */
export function isTamperRejection(kind: SnapshotRejectionKind): boolean {
  return kind !== 'snapshot-unbound' && kind !== 'snapshot-unverifiable';
}

/**
 * Checks a stored snapshot against the log and its MAC (`keys` null: the binding only). `head`: the store's head position; the
 * event at the snapshot's position is read from its stream (one read), so this works on every
 * store, whatever its positions are.
 */
export async function checkSnapshot(
  store: EventStore,
  prefix: string,
  name: string,
  snapshot: Snapshot,
  keys: CheckpointMacKeys | null,
  head: bigint,
): Promise<SnapshotCheck> {
  const reject = (kind: SnapshotRejectionKind, message: string): SnapshotCheck => ({
    ok: false,
    rejection: { snapshot: name, position: snapshot.position, kind, message },
  });
  const parsed = sealedStateSchema.safeParse(snapshot.state);
  if (!parsed.success) return reject('snapshot-unbound', 'it carries no seal binding it to the log');
  const { seal, body } = parsed.data;
  if (snapshot.position > head) {
    return reject(
      'snapshot-beyond-head',
      `its position ${snapshot.position} is beyond the store's head ${head}`,
    );
  }
  const event: SealedEvent = { stream: seal.stream, revision: BigInt(seal.revision), hash: seal.eventHash };
  const [found] = seal.stream.startsWith(prefix)
    ? await store.readStream(seal.stream, { fromRevision: event.revision })
    : [];
  if (
    found === undefined ||
    found.revision !== event.revision ||
    found.position !== snapshot.position ||
    eventHash(found) !== event.hash
  ) {
    return reject(
      'snapshot-event-mismatch',
      `the event it names (${seal.stream}@${seal.revision}) is not the one at position ${snapshot.position}`,
    );
  }
  // Without keys (verify without a provider) the binding is checked, the MAC is not.
  if (keys === null) return { ok: true, body, event };
  const answer = await keys.mac(
    seal.stkIdentity,
    sealMessage(seal.version, name, snapshot.position, event, seal.stkIdentity, body as JsonValue),
  );
  switch (answer.kind) {
    case 'unknown':
      return reject(
        'snapshot-unknown-system-key',
        `it is sealed under system key ${seal.stkIdentity}, which the ledger never recorded`,
      );
    case 'unavailable':
      return reject('snapshot-unverifiable', `its seal cannot be checked: ${answer.reason}`);
    case 'mac': {
      const stored = Buffer.from(seal.mac, 'hex');
      if (stored.length !== answer.mac.length || !timingSafeEqual(stored, answer.mac)) {
        return reject(
          'snapshot-mac-invalid',
          'its MAC does not verify: it was changed, or made without the system key',
        );
      }
      return { ok: true, body, event };
    }
    default: {
      const unreachable: never = answer;
      return unreachable;
    }
  }
}

/**
 * MAC keys for checking snapshots before any read model exists (a ledger opening): the system
 * keys the system stream records, fetched from the provider by their recorded metadata (and used
 * only if they still have the recorded identity). A retired key is never fetched: its snapshots
 * are unverifiable. The system stream is short (one event per system-key change), so it is read
 * whole. Close the keys after use.
 */
export async function openingSnapshotKeys(
  store: EventStore,
  systemStream: string,
  provider: ManagedKeyProvider,
): Promise<CheckpointMacKeys> {
  const recorded = new Map<string, string>();
  const retired = new Set<string>();
  for (const event of await store.readStream(systemStream)) {
    const { identity, metadata } = event.data as { identity?: unknown; metadata?: unknown };
    if (typeof identity !== 'string') continue;
    if (event.type === 'SystemKeyRetired') retired.add(identity);
    else if (
      (event.type === 'SystemKeyRecorded' || event.type === 'SystemKeyRotated') &&
      typeof metadata === 'string'
    )
      recorded.set(identity, metadata);
  }
  const keys = providerMacKeys(provider, recorded, SNAPSHOT_MAC_LABEL);
  return {
    current: keys.current,
    mac: async (identity, message) =>
      retired.has(identity)
        ? { kind: 'unavailable', reason: `system key ${identity} is retired` }
        : keys.mac(identity, message),
    close: () => keys.close(),
  };
}
