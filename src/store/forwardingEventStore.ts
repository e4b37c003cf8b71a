import type { Observable } from 'rxjs';
import type {
  AppendResult,
  EventStore,
  EventToAppend,
  ExpectedRevision,
  ReadAllOptions,
  RecordedEvent,
  Snapshot,
  SnapshotRow,
  SnapshotRowChange,
  SubscribeOptions,
} from './eventStore.js';

/**
 * An EventStore that passes every call on to another. Decorators (the ledger's hash chain, fault
 * injectors in tests) extend it and override only the calls they change, so a method added to the
 * port is forwarded by all of them at once.
 */
export class ForwardingEventStore implements EventStore {
  /** The store underneath. */
  readonly inner: EventStore;

  constructor(inner: EventStore) {
    this.inner = inner;
  }

  append(
    stream: string,
    events: readonly EventToAppend[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    return this.inner.append(stream, events, expected);
  }

  readStream(
    stream: string,
    options?: { readonly fromRevision?: bigint },
  ): Promise<readonly RecordedEvent[]> {
    return this.inner.readStream(stream, options);
  }

  readAll(options?: ReadAllOptions): AsyncIterable<RecordedEvent> {
    return this.inner.readAll(options);
  }

  subscribe(options?: SubscribeOptions): Observable<RecordedEvent> {
    return this.inner.subscribe(options);
  }

  headPosition(): Promise<bigint> {
    return this.inner.headPosition();
  }

  deleteStream(stream: string): Promise<void> {
    return this.inner.deleteStream(stream);
  }

  loadSnapshot(name: string): Promise<Snapshot | null> {
    return this.inner.loadSnapshot(name);
  }

  saveSnapshot(name: string, snapshot: Snapshot): Promise<void> {
    return this.inner.saveSnapshot(name, snapshot);
  }

  saveSnapshotRows(
    name: string,
    header: Snapshot,
    rows: Iterable<SnapshotRowChange>,
    base: bigint | null,
  ): Promise<boolean> {
    return this.inner.saveSnapshotRows(name, header, rows, base);
  }

  /** The store underneath's: a decorator changes what is read, not how the rows are kept. */
  get snapshotRowReadAlone(): boolean {
    return this.inner.snapshotRowReadAlone;
  }

  loadSnapshotRow(name: string, key: string): Promise<string | null> {
    return this.inner.loadSnapshotRow(name, key);
  }

  readSnapshotRows(name: string): AsyncIterable<readonly SnapshotRow[]> {
    return this.inner.readSnapshotRows(name);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
