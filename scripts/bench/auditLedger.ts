/**
 * A large, realistic ledger for the issue 6 benchmarks (auditQueries.ts), written straight into a
 * sqlite store in big transactions: going through the admin API would take an hour for a million
 * events (every append is its own fsync'd transaction), and what is measured is reading them.
 *
 * The events are what the ledger writes: parsed by the same schemas, chained as ChainingEventStore
 * chains them (metadata schemaVersion 2 with prevHash), in the same streams, interleaved across
 * scopes as a busy ledger interleaves them. The mix per scope: enable (material + lifecycle), then
 * refreshes (most events), rotations (material + lifecycle), disables and re-enables of old keys,
 * and cache ejections, over one year of event times.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { chainedMetadata, eventHash } from '../../src/audit/hashChain.js';
import { type DomainEvent, SCHEMA_VERSION } from '../../src/domain/events.js';
import { type KeyId, type KeyScope, keyScope } from '../../src/domain/identities.js';
import { keyIdOf, metadataHashOf } from '../../src/domain/keyDigests.js';
import type { KeyState } from '../../src/domain/keyState.js';
import { streamNames } from '../../src/journal/streamNames.js';
import type { JsonObject } from '../../src/store/eventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { custodian, seededRandom } from './common.js';

export const PREFIX = 'kl-';
/**
 * The system key identity the ledger records (and wraps its DEKs under): generateLedger's
 * `stkIdentity`. A fixed one leaves a ledger no provider can seal snapshots for.
 */
let STK = '0123456789abcdef';
const YEAR_MS = 365 * 86_400_000;
export const LEDGER_START = Date.UTC(2025, 0, 1);
const BATCH = 50_000;

interface ScopeKeys {
  readonly scope: KeyScope;
  readonly stream: string;
  keys: { keyId: KeyId; metadataHash: string; state: KeyState }[];
  active: number;
  generation: number;
}

export interface GeneratedLedger {
  readonly events: number;
  readonly scopes: readonly KeyScope[];
  /** occurredAt of the first and the last event (ms). */
  readonly firstAt: number;
  readonly lastAt: number;
}

function keyRecord(scope: KeyScope, generation: number) {
  const metadata = JSON.stringify({
    KeyAlias: `key-${generation}`,
    KeyCustodian: scope.custodian,
    KeyNamespace: scope.namespace,
  });
  const metadataHash = metadataHashOf(metadata);
  return {
    keyId: keyIdOf(scope, metadataHash),
    metadata,
    metadataHash,
    checksum: randomBytes(8).toString('hex'),
    stkIdentity: STK,
  };
}

/**
 * Writes `count` events (about: the last operation may add one more) over `scopeCount` scopes
 * into a new sqlite store at `path`. `stkIdentity`: the identity of the keystore's system key the
 * ledger is then opened with (so that the as-of series it writes can be sealed and checked).
 */
export async function generateLedger(
  path: string,
  count: number,
  scopeCount: number,
  seed = 6,
  stkIdentity = STK,
): Promise<GeneratedLedger> {
  STK = stkIdentity;
  // The store creates its schema; the rows go in through the same file.
  await SqliteEventStore.open(path).close();
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const insert = db.prepare(
    'INSERT INTO events (stream, revision, event_id, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const upsertStream = db.prepare(
    `INSERT INTO streams (name, last_revision, deleted) VALUES (?, ?, 0)
     ON CONFLICT (name) DO UPDATE SET last_revision = excluded.last_revision`,
  );
  const names = streamNames(PREFIX);
  const random = seededRandom(seed);
  const tails = new Map<string, { revision: number; hash: string }>();
  let pending: [string, number, string, string, string, string, number][] = [];
  const flush = db.transaction((rows: typeof pending) => {
    for (const row of rows) insert.run(...row);
  });
  let written = 0;
  const step = YEAR_MS / count;
  const timeOf = (i: number) => LEDGER_START + Math.floor(i * step);
  const correlation = () => randomUUID();

  const write = (stream: string, event: DomainEvent, correlationId: string, reason: string | null) => {
    const tail = tails.get(stream);
    const occurredAt = new Date(timeOf(written)).toISOString();
    const metadata = chainedMetadata(
      {
        schemaVersion: SCHEMA_VERSION,
        actor: 'bench',
        reason,
        correlationId,
        causationId: null,
        occurredAt,
      },
      tail?.hash ?? null,
    );
    const eventId = randomUUID();
    const data = event.data as unknown as JsonObject;
    const hash = eventHash({ streamName: stream, eventId, type: event.type, data, metadata });
    const revision = (tail?.revision ?? -1) + 1;
    tails.set(stream, { revision, hash });
    pending.push([
      stream,
      revision,
      eventId,
      event.type,
      JSON.stringify(data),
      JSON.stringify(metadata),
      timeOf(written),
    ]);
    written++;
    if (pending.length >= BATCH) {
      flush(pending);
      pending = [];
    }
  };

  const material = (s: ScopeKeys, record: ReturnType<typeof keyRecord>, correlationId: string) =>
    write(
      names.material(record.keyId),
      {
        type: 'KeyMaterialWrapped',
        data: {
          ...s.scope,
          keyId: record.keyId,
          metadataHash: record.metadataHash,
          stkIdentity: STK,
          algorithm: 'AES-256-GCM',
          wrapped: randomBytes(60).toString('base64'),
        },
      } as DomainEvent,
      correlationId,
      null,
    );

  write(
    names.system,
    {
      type: 'SystemKeyRecorded',
      data: {
        sequence: 1,
        identity: STK,
        metadata: '{"KeyAlias":"stk"}',
        metadataHash: metadataHashOf('{"KeyAlias":"stk"}'),
        previousIdentity: null,
      },
    } as DomainEvent,
    correlation(),
    'keyledger init',
  );
  const scopes: ScopeKeys[] = [];
  for (let i = 0; i < scopeCount; i++) {
    const scope = keyScope(custodian(i % 1000), `ns-${Math.floor(i / 1000)}`);
    const s: ScopeKeys = { scope, stream: names.scope(scope), keys: [], active: 0, generation: 0 };
    const record = keyRecord(scope, 0);
    const c = correlation();
    material(s, record, c);
    write(
      s.stream,
      { type: 'KeyManagementEnabled', data: { ...scope, key: record, previousKeyId: null } } as DomainEvent,
      c,
      'onboarding',
    );
    s.keys.push({ keyId: record.keyId, metadataHash: record.metadataHash, state: 'ACTIVE' });
    scopes.push(s);
  }

  while (written < count) {
    const s = scopes[Math.floor(random() * scopes.length)] as ScopeKeys;
    const roll = random();
    const c = correlation();
    const active = s.keys[s.active];
    if (active === undefined) throw new Error('generator lost the active key');
    if (roll < 0.6) {
      // A refresh that finds every key as it was: the most common event of a live ledger.
      const key = s.keys[Math.floor(random() * s.keys.length)] ?? active;
      write(
        s.stream,
        {
          type: 'ManagedKeyRefreshed',
          data: {
            ...s.scope,
            keyId: key.keyId,
            previousState: key.state,
            state: key.state,
            providerState:
              key.state === 'DISABLED' ? 'DISABLED' : key.state === 'ACTIVE' ? 'ACTIVE' : 'INACTIVE',
          },
        } as DomainEvent,
        c,
        null,
      );
    } else if (roll < 0.8 && s.keys.length < 12) {
      const record = keyRecord(s.scope, ++s.generation);
      material(s, record, c);
      write(
        s.stream,
        {
          type: 'ManagedKeyRotated',
          data: { ...s.scope, key: record, previousKeyId: active.keyId },
        } as DomainEvent,
        c,
        'scheduled rotation',
      );
      active.state = 'INACTIVE';
      s.keys.push({ keyId: record.keyId, metadataHash: record.metadataHash, state: 'ACTIVE' });
      s.active = s.keys.length - 1;
    } else if (roll < 0.9) {
      const old = s.keys.find((k) => k.state === 'INACTIVE');
      const disabled = s.keys.find((k) => k.state === 'DISABLED');
      if (old !== undefined && (disabled === undefined || random() < 0.5)) {
        write(
          s.stream,
          {
            type: 'ManagedKeyDisabled',
            data: { ...s.scope, keyId: old.keyId, previousState: 'INACTIVE' },
          } as DomainEvent,
          c,
          'retired',
        );
        old.state = 'DISABLED';
      } else if (disabled !== undefined) {
        write(
          s.stream,
          { type: 'ManagedKeyReenabled', data: { ...s.scope, keyId: disabled.keyId } } as DomainEvent,
          c,
          'restore old backups',
        );
        disabled.state = 'INACTIVE';
      }
    } else {
      write(
        names.operations,
        { type: 'CacheEntryEjected', data: { ...s.scope, keyId: active.keyId } } as DomainEvent,
        c,
        null,
      );
    }
  }
  flush(pending);
  db.transaction(() => {
    for (const [stream, tail] of tails) upsertStream.run(stream, tail.revision);
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return {
    events: written,
    scopes: scopes.map((s) => s.scope),
    firstAt: timeOf(0),
    lastAt: timeOf(written - 1),
  };
}
