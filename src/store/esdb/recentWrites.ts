/** Streams remembered at most; the least recently written are forgotten first. */
const MAX_STREAMS = 1024;
/** Event ids remembered per stream at most; the oldest are forgotten first. */
const MAX_IDS_PER_STREAM = 256;

interface StreamMemory {
  readonly ids: Set<string>;
  deleted: boolean;
}

/**
 * What this process lately sent to each stream (event ids) and which streams it deleted, so that
 * an append at an exact revision looks at the stream first only when that can matter: when it
 * repeats or extends a batch sent before (a retry, which the server recognises only at its first
 * expected revision), or when the stream was deleted (which the server would recreate at its old
 * last revision). Every other append goes straight to the server: one round trip, not two, which
 * keeps the window in which concurrent writers collide as short as the server allows.
 *
 * Only this process is remembered: another process's retry at a different expected revision, or
 * its delete, is decided by the server (docs/operations.md says what that means).
 */
export class RecentWrites {
  readonly #streams = new Map<string, StreamMemory>();

  /** Before sending: these ids go to `stream`. */
  noteAttempt(stream: string, ids: readonly string[]): void {
    const memory = this.#touch(stream);
    for (const id of ids) {
      memory.ids.delete(id);
      memory.ids.add(id);
    }
    for (const id of memory.ids) {
      if (memory.ids.size <= MAX_IDS_PER_STREAM) break;
      memory.ids.delete(id);
    }
  }

  /** An append succeeded: the stream exists (again). */
  noteWritten(stream: string): void {
    const memory = this.#streams.get(stream);
    if (memory !== undefined) memory.deleted = false;
  }

  noteDeleted(stream: string): void {
    this.#touch(stream).deleted = true;
  }

  /** Whether an append of `ids` to `stream` at an exact revision should look at the stream first. */
  needsLook(stream: string, ids: readonly string[]): boolean {
    const memory = this.#streams.get(stream);
    return memory !== undefined && (memory.deleted || ids.some((id) => memory.ids.has(id)));
  }

  #touch(stream: string): StreamMemory {
    const memory = this.#streams.get(stream) ?? { ids: new Set<string>(), deleted: false };
    this.#streams.delete(stream);
    this.#streams.set(stream, memory);
    for (const name of this.#streams.keys()) {
      if (this.#streams.size <= MAX_STREAMS) break;
      this.#streams.delete(name);
    }
    return memory;
  }
}
