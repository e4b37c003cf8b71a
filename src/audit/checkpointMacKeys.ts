import type { SystemKeyHandle } from '../crypto/systemKeyHandle.js';
import { isKeyledgerError, KeyledgerError } from '../domain/errors.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { RecordedEvent } from '../store/eventStore.js';
import { CHECKPOINT_MAC_LABEL } from './checkpointFormat.js';

/** What the MAC key of one system key gives for a message. */
export type MacAnswer =
  | { readonly kind: 'mac'; readonly mac: Buffer }
  /** The ledger has recorded no system key with that identity: no genuine checkpoint names it. */
  | { readonly kind: 'unknown' }
  /** A recorded system key that cannot be used any more (retired, or gone from the provider). */
  | { readonly kind: 'unavailable'; readonly reason: string };

/**
 * Checkpoint MACs, computed by whoever holds the system keys (SystemKeyHandle.mac): the ledger's
 * system-key handles when verifying a live ledger, the configured provider for an export file.
 * Key bytes never leave the handle; only MACs come out.
 */
export interface CheckpointMacKeys {
  /** Identity of the system key new checkpoints are MACed under (the latest recorded one). */
  current(): Promise<string>;
  mac(identity: string, message: Buffer): Promise<MacAnswer>;
  /** Releases what the keys hold (handles fetched for this purpose). */
  close(): void;
}

/** How many times a handle is fetched again if L1 evicted it before it could be used. */
const HANDLE_ATTEMPTS = 3;

/** What the system keys' handles offer (structurally; SystemKeyHandles is one). */
export interface SystemKeySource {
  current(): Promise<SystemKeyHandle>;
  byIdentity(identity: string): Promise<SystemKeyHandle>;
  /** A handle still in L1, for the synchronous step that uses it. */
  peek(identity: string): SystemKeyHandle | undefined;
  /** Throws ERR_SYSTEM_KEY_NOT_FOUND for an identity the ledger never recorded. */
  metadataOf(identity: string): string;
}

/**
 * MACs from the ledger's own system keys (`label`: the HKDF label of the purpose; snapshots use
 * their own, src/audit/snapshotSeal.ts). A retired system key is never fetched again, so the
 * checkpoints MACed under it are `unavailable`: a later checkpoint vouches for them through the
 * checkpoint stream's hash chain (docs/audit.md).
 */
export function systemKeyMacKeys(keys: SystemKeySource, label = CHECKPOINT_MAC_LABEL): CheckpointMacKeys {
  return {
    current: async () => (await keys.current()).identity,
    mac: async (identity, message) => {
      try {
        keys.metadataOf(identity);
      } catch (error) {
        if (isKeyledgerError(error, 'ERR_SYSTEM_KEY_NOT_FOUND')) return { kind: 'unknown' };
        throw error;
      }
      for (let attempt = 0; attempt < HANDLE_ATTEMPTS; attempt++) {
        try {
          await keys.byIdentity(identity);
        } catch (error) {
          if (isKeyledgerError(error, 'ERR_SYSTEM_KEY_RETIRED')) {
            return { kind: 'unavailable', reason: `system key ${identity} is retired` };
          }
          throw error;
        }
        // Used in the same synchronous step as the lookup: an evicted handle's bytes are zeroed.
        const handle = keys.peek(identity);
        if (handle !== undefined) return { kind: 'mac', mac: handle.mac(label, message) };
      }
      throw new KeyledgerError(
        'ERR_SYSTEM_KEY_NOT_FOUND',
        'a system key could not be kept in L1 long enough to use',
        { identity },
      );
    },
    close: () => undefined,
  };
}

/** Provider answers that mean "this system key is not here any more", not a failing provider. */
const GONE = new Set([
  'ERR_KEYSTORE_ALIAS_NOT_FOUND',
  'ERR_SYSTEM_KEY_NOT_FOUND',
  'ERR_SYSTEM_KEY_RETIRED',
  // Metadata naming a key the provider does not serve as a system key (e.g. a data key's alias).
  'ERR_SYSTEM_KEY_NOT_CONFIGURED',
  // An HSM's system key destroyed in the token (destroy-stk, SystemKeyDestroyed).
  'ERR_PKCS11_KEY_NOT_FOUND',
]);

/**
 * MACs from a provider, for an export file checked offline: `recorded` maps each system key
 * identity to the metadata its SystemKeyRecorded/SystemKeyRotated event gave. A provider key that
 * is not the recorded one (its identity is not the recorded one) is `unavailable`, never used.
 */
export function providerMacKeys(
  provider: ManagedKeyProvider,
  recorded: ReadonlyMap<string, string>,
  label = CHECKPOINT_MAC_LABEL,
): CheckpointMacKeys {
  const handles = new Map<string, SystemKeyHandle | null>();
  const handleOf = async (identity: string, metadata: string): Promise<SystemKeyHandle | null> => {
    if (handles.has(identity)) return handles.get(identity) ?? null;
    let fetched: SystemKeyHandle | null = null;
    try {
      fetched = await provider.unwrapSystemKey(metadata);
    } catch (error) {
      if (!(isKeyledgerError(error) && GONE.has(error.code))) throw error;
    }
    const handle = fetched?.bind(identity) ?? null;
    if (fetched !== null && handle === null) fetched.dispose();
    handles.set(identity, handle);
    return handle;
  };
  return {
    current: async () => {
      throw new TypeError('an export file is verified, never checkpointed');
    },
    mac: async (identity, message) => {
      const metadata = recorded.get(identity);
      if (metadata === undefined) return { kind: 'unknown' };
      const handle = await handleOf(identity, metadata);
      if (handle === null) {
        return { kind: 'unavailable', reason: `the provider does not have system key ${identity}` };
      }
      return { kind: 'mac', mac: handle.mac(label, message) };
    },
    close: () => {
      for (const handle of handles.values()) handle?.dispose();
      handles.clear();
    },
  };
}

/**
 * The system keys a ledger's system stream records: identity → the provider metadata naming it.
 * Taken from the (possibly tampered) events themselves, which is safe: a provider key used under
 * this metadata must still have the recorded identity, which only the genuine key has.
 */
export async function recordedSystemKeys(
  events: AsyncIterable<RecordedEvent> | Iterable<RecordedEvent>,
  systemStream: string,
): Promise<Map<string, string>> {
  const recorded = new Map<string, string>();
  for await (const event of events) {
    if (event.streamName !== systemStream) continue;
    if (event.type !== 'SystemKeyRecorded' && event.type !== 'SystemKeyRotated') continue;
    const { identity, metadata } = event.data as { identity?: unknown; metadata?: unknown };
    if (typeof identity === 'string' && typeof metadata === 'string') recorded.set(identity, metadata);
  }
  return recorded;
}
