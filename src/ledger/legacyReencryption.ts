import type { Envelope } from '../crypto/envelope.js';
import { hasPrefix, MODE_MESSAGE, MODE_STREAM } from '../crypto/envelopeFormat.js';
import type { EnvelopeStreams } from '../crypto/envelopeStream.js';
import { type CachedKey, type KeySource, withKeyForDecrypt } from '../crypto/keySource.js';
import { decryptLegacyAesGcm } from '../crypto/legacyAesGcm.js';
import {
  assertLegacyResumable,
  checkCampaignName,
  decideLegacyReencryption,
  emptyLegacyReencryptionState,
  evolveLegacyReencryption,
  type LegacyCampaign,
  type LegacyReencryptionCommand,
  type LegacyReencryptionState,
} from '../domain/decideLegacyReencryption.js';
import { isKeyledgerError, KeyledgerError } from '../domain/errors.js';
import {
  LEGACY_REENCRYPTION_EVENT_TYPES,
  type LegacyReencryptionEvent,
  parseEventOf,
  SCOPE_EVENT_TYPES,
} from '../domain/events.js';
import { formatScope, type KeyId, type KeyScope, parseMetadataHash } from '../domain/identities.js';
import { findKeyByHash, type ManagedKey } from '../domain/scopeState.js';
import { decideAndAppend, expectedAfter, type Journal } from '../journal/decideAndAppend.js';
import type { OperationContext } from '../journal/eventFactory.js';
import type { StreamNames } from '../journal/streamNames.js';
import type { LedgerProjector } from './ledgerProjector.js';
import {
  infoOf,
  type LegacyCampaignInfo,
  type LegacyRecord,
  type LegacyRecordResult,
  LegacyReencryption,
} from './legacyCampaign.js';
import type { OperationOptions } from './operationOptions.js';

interface LegacyDeps {
  readonly journal: Journal;
  readonly names: StreamNames;
  readonly projector: LedgerProjector;
  readonly keys: KeySource;
  readonly envelope: Envelope;
  readonly envelopeStreams: EnvelopeStreams;
  readonly context: (options: OperationOptions | undefined) => OperationContext;
}

/** A record opened under the legacy key (plaintext), or not (null; `already`: in keyledger's envelope). */
interface Opened {
  readonly id: string;
  readonly plaintext: Buffer | null;
  readonly aad?: Uint8Array;
  readonly already?: boolean;
}

export interface LegacyStartOptions extends OperationOptions {
  /** How many records the caller expects to visit (shown with progress; not enforced). */
  readonly total?: number;
}

/** What reencryptData did: the envelope, and the keys it came from and went to. */
export interface LegacyDataResult {
  readonly ciphertext: Buffer;
  readonly scope: string;
  readonly from: { readonly keyId: string; readonly metadataHash: string };
  readonly to: { readonly keyId: string; readonly metadataHash: string };
}

/**
 * Re-encrypting legacy data (`ledger.legacyReencryption`, docs/migration.md): data encrypted before
 * the ledger (src/crypto/legacyAesGcm.ts) under a key recorded by import-managed-key, moved into
 * keyledger's envelope under its scope's ACTIVE key. A file or stream at a time (reencryptData,
 * the `reencrypt` command), or records held elsewhere in campaigns whose progress is recorded on
 * the re-encryption stream, resumable after a crash (rules in src/domain/decideLegacyReencryption.ts).
 */
export class LegacyReencryptions {
  readonly #d: LegacyDeps;
  #state: LegacyReencryptionState = emptyLegacyReencryptionState();
  /**
   * Whether a key entered its scope by import-managed-key, for each key asked about. The keymeta
   * view does not record it (a ManagedKey is the same however it came), so the scope's stream is
   * read, but once per key: the answer is fixed when the key enters the scope. ManagedKeyImported
   * is only written for a key the scope does not know yet (decideImport.ts), a scope's stream is
   * only ever appended to, and a key is asked about only once this process's view holds it, so the
   * event that brought it in is already in the stream read. Bounded by the keys of the view.
   */
  readonly #imported = new Map<KeyId, boolean>();

  constructor(deps: LegacyDeps) {
    this.#d = deps;
  }

  /**
   * One legacy file (whole: its one tag is at the end) into the stream format `keyledger decrypt`
   * reads, bound to the same AAD. `authorize` is asked about the key's custodian before any key is
   * used (a server checks the caller's grants there). Writes no event.
   */
  async reencryptData(
    metadataHash: string,
    data: Uint8Array,
    options: { readonly aad?: Uint8Array; readonly authorize?: (custodian: string) => void } = {},
  ): Promise<LegacyDataResult> {
    // The caller's grant on the key's custodian is checked before anything about the key is said.
    const { scope, key } = await this.#legacyKey(metadataHash, options.authorize);
    // Opened in the turn the key is found held: it cannot leave L1 (and be zeroed) before it is used.
    const plaintext = await this.#withLiveKey(key, scope, (legacy) =>
      decryptLegacyAesGcm(legacy.key, data, options.aad),
    );
    try {
      const { ciphertext, resolution } = await this.#d.envelopeStreams.encryptBuffer(plaintext, {
        custodian: scope.custodian,
        namespaces: [scope.namespace],
        ...(options.aad === undefined ? {} : { aad: options.aad }),
      });
      return {
        ciphertext,
        scope: formatScope(scope),
        from: { keyId: key.keyId, metadataHash: key.metadataHash },
        to: { keyId: resolution.key.keyId, metadataHash: resolution.key.metadataHash },
      };
    } finally {
      plaintext.fill(0);
    }
  }

  /** Starts a campaign named `campaign` for records under the imported key `metadataHash`. */
  async start(
    campaign: string,
    metadataHash: string,
    options: LegacyStartOptions = {},
  ): Promise<LegacyReencryption> {
    checkCampaignName(campaign);
    const { scope, key } = await this.#legacyKey(metadataHash);
    await this.#decideAndAppend(
      {
        type: 'StartLegacyReencryption',
        campaign,
        custodian: scope.custodian,
        namespace: scope.namespace,
        keyId: key.keyId,
        metadataHash: key.metadataHash,
        total: options.total ?? null,
      },
      options,
    );
    return new LegacyReencryption(this, campaign, options);
  }

  /**
   * An unfinished campaign, to go on with: its `info.lastRecordId` says after which record (in the
   * caller's order) to continue. ERR_REENCRYPTION_NOT_FOUND, ERR_REENCRYPTION_COMPLETED.
   */
  async resume(campaign: string, options: OperationOptions = {}): Promise<LegacyReencryption> {
    checkCampaignName(campaign);
    assertLegacyResumable(await this.#load(), campaign);
    return new LegacyReencryption(this, campaign, options);
  }

  /** Every campaign, oldest first (or the one named). */
  async status(campaign?: string): Promise<LegacyCampaignInfo[]> {
    const state = await this.#load();
    if (campaign === undefined) return [...state.campaigns.values()].map(infoOf);
    const known = state.campaigns.get(campaign);
    if (known === undefined) {
      throw new KeyledgerError('ERR_REENCRYPTION_NOT_FOUND', `no re-encryption campaign ${campaign}`, {
        campaign,
      });
    }
    return [infoOf(known)];
  }

  /** @internal LegacyReencryption's: the campaign as recorded now. */
  async campaignNow(campaign: string): Promise<LegacyCampaign> {
    const known = (await this.#load()).campaigns.get(campaign);
    if (known === undefined) {
      throw new KeyledgerError('ERR_REENCRYPTION_NOT_FOUND', `no re-encryption campaign ${campaign}`, {
        campaign,
      });
    }
    return known;
  }

  /** @internal LegacyReencryption's: one batch through the legacy key and the envelope. */
  async reencryptBatch(
    campaign: LegacyCampaign,
    records: readonly LegacyRecord[],
  ): Promise<LegacyRecordResult[]> {
    const scope = { custodian: campaign.custodian, namespace: campaign.namespace };
    // Every record is opened in the turn the legacy key is found held: it cannot leave L1 meanwhile.
    const opened = await withKeyForDecrypt(this.#d.keys, campaign.keyId, (legacy) => {
      if (legacy === null) throw unusable(campaign.metadataHash, scope, this.#stateOf(campaign), true);
      return records.map((r): Opened => {
        try {
          return { id: r.id, plaintext: decryptLegacyAesGcm(legacy.key, r.data, r.aad), ...aadOf(r) };
        } catch (error) {
          if (!isKeyledgerError(error, 'ERR_DECRYPTION_FAILED')) throw error;
          const already = hasPrefix(r.data, MODE_MESSAGE) || hasPrefix(r.data, MODE_STREAM);
          return { id: r.id, plaintext: null, already };
        }
      });
    });
    const results: LegacyRecordResult[] = [];
    try {
      for (const r of opened) {
        if (r.plaintext !== null) {
          const envelope = await this.#d.envelope.encrypt(r.plaintext, {
            custodian: scope.custodian,
            namespaces: [scope.namespace],
            ...(r.aad === undefined ? {} : { aad: r.aad }),
          });
          results.push({ id: r.id, status: 'reencrypted', envelope });
        } else if (r.already === true) {
          results.push({ id: r.id, status: 'skipped' });
        } else {
          results.push({ id: r.id, status: 'failed', code: 'ERR_DECRYPTION_FAILED' });
        }
      }
    } finally {
      for (const r of opened) r.plaintext?.fill(0);
    }
    return results;
  }

  #stateOf(campaign: LegacyCampaign): string | null {
    const view = this.#d.projector.keymeta;
    const owner = view.keyIndex.get(campaign.keyId);
    return (
      (owner === undefined ? undefined : view.scopes.get(owner)?.keys.get(campaign.keyId)?.state) ?? null
    );
  }

  /** @internal LegacyReencryption's: records a checkpoint or the completion. */
  async record(command: LegacyReencryptionCommand, options: OperationOptions): Promise<LegacyCampaign> {
    await this.#decideAndAppend(command, options);
    return this.campaignNow(command.campaign);
  }

  /**
   * The key named by `metadataHash` if legacy data may be read under it: a key of the ledger
   * (whichever scope), ACTIVE or INACTIVE, recorded by import-managed-key. ERR_LEGACY_KEY_UNUSABLE.
   */
  async #legacyKey(
    metadataHash: string,
    authorize?: (custodian: string) => void,
  ): Promise<{ scope: KeyScope; key: ManagedKey }> {
    let hash: ReturnType<typeof parseMetadataHash>;
    try {
      hash = parseMetadataHash(metadataHash);
    } catch {
      throw unusable(metadataHash.slice(0, 128), null, null, false);
    }
    const view = this.#d.projector.wholeKeymeta('re-encrypting legacy data');
    const found: { scope: KeyScope; key: ManagedKey }[] = [];
    for (const state of view.scopes.values()) {
      const key = findKeyByHash(state, hash);
      if (key !== null) found.push({ scope: state.scope, key });
    }
    const only = found[0];
    if (only === undefined || found.length > 1) throw unusable(hash, null, null, false);
    const { scope, key } = only;
    authorize?.(scope.custodian);
    const imported = await this.#wasImported(scope, key);
    if (!imported || (key.state !== 'ACTIVE' && key.state !== 'INACTIVE')) {
      throw unusable(hash, scope, key.state, imported);
    }
    return only;
  }

  /** `use` run with the key held (see withKeyForDecrypt); unusable if it is not held. */
  #withLiveKey<T>(key: ManagedKey, scope: KeyScope, use: (live: CachedKey) => T): Promise<T> {
    return withKeyForDecrypt(this.#d.keys, key.keyId, (live) => {
      if (live === null) throw unusable(key.metadataHash, scope, key.state, true);
      return use(live);
    });
  }

  /** Whether the scope's stream records the key as imported (ManagedKeyImported); see #imported. */
  async #wasImported(scope: KeyScope, key: ManagedKey): Promise<boolean> {
    const known = this.#imported.get(key.keyId);
    if (known !== undefined) return known;
    const imported = await this.#readWasImported(scope, key);
    this.#imported.set(key.keyId, imported);
    return imported;
  }

  async #readWasImported(scope: KeyScope, key: ManagedKey): Promise<boolean> {
    for (const recorded of await this.#d.journal.store.readStream(this.#d.names.scope(scope))) {
      if (recorded.type !== 'ManagedKeyImported') continue;
      const event = parseEventOf(recorded, SCOPE_EVENT_TYPES);
      if (event.type === 'ManagedKeyImported' && event.data.key.keyId === key.keyId) return true;
    }
    return false;
  }

  async #decideAndAppend(
    command: LegacyReencryptionCommand,
    options: OperationOptions,
  ): Promise<readonly LegacyReencryptionEvent[]> {
    if (this.#d.projector.latestSystemKey() === null) {
      throw new KeyledgerError(
        'ERR_LEDGER_NOT_INITIALISED',
        'the ledger has no system key yet; run init',
        {},
      );
    }
    const written = await decideAndAppend<LegacyReencryptionState, LegacyReencryptionEvent>(this.#d.journal, {
      stream: this.#d.names.reencryption,
      context: this.#d.context(options),
      load: async () => {
        const state = await this.#load();
        return { state, expected: expectedAfter(state.revision) };
      },
      decide: (state) => decideLegacyReencryption(state, command),
    });
    if (written.position !== null) await this.#load();
    return written.events;
  }

  /** Folds what is new on the re-encryption stream into the state this instance keeps. */
  async #load(): Promise<LegacyReencryptionState> {
    const from = this.#state.revision === null ? 0n : this.#state.revision + 1n;
    let state = this.#state;
    const stream = this.#d.names.reencryption;
    for (const recorded of await this.#d.journal.store.readStream(stream, { fromRevision: from })) {
      if (state.revision !== null && recorded.revision <= state.revision) continue;
      const event = parseEventOf(recorded, LEGACY_REENCRYPTION_EVENT_TYPES);
      state = evolveLegacyReencryption(state, event, event.meta.occurredAt, event.revision);
    }
    // Concurrent loads fold prefixes of one stream: keep the longest.
    if (state.revision !== null && (this.#state.revision === null || state.revision > this.#state.revision)) {
      this.#state = state;
    }
    return this.#state;
  }
}

function aadOf(r: LegacyRecord): { aad?: Uint8Array } {
  return r.aad === undefined ? {} : { aad: r.aad };
}

function unusable(
  metadataHash: string,
  scope: KeyScope | null,
  state: string | null,
  imported: boolean,
): KeyledgerError {
  const where =
    scope === null ? 'the ledger has no (single) key' : `key in ${formatScope(scope)} is ${state}`;
  return new KeyledgerError(
    'ERR_LEGACY_KEY_UNUSABLE',
    scope === null
      ? `${where} with metadata hash ${metadataHash}`
      : imported
        ? `legacy data cannot be read under ${metadataHash}: the ${where}`
        : `legacy data is read only under keys recorded by import-managed-key; ${metadataHash} was not`,
    { metadataHash, scope: scope === null ? null : formatScope(scope), state, imported },
  );
}
