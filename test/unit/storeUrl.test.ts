import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { DEFAULT_STORE_URL, openEventStore, parseStoreUrl } from '../../src/store/storeUrl.js';

function invalidUrl(scheme: string) {
  return (error: unknown): boolean => {
    const { code, details } = error as { code?: unknown; details?: { scheme?: unknown } };
    return code === 'ERR_INVALID_STORE_URL' && details?.scheme === scheme;
  };
}

describe('store URLs', () => {
  it('parses memory:', () => {
    assert.deepEqual(parseStoreUrl('memory:'), { kind: 'memory' });
    assert.deepEqual(parseStoreUrl('MEMORY:'), { kind: 'memory' });
  });

  it('parses sqlite: paths, relative ones against the working directory', () => {
    assert.deepEqual(parseStoreUrl('sqlite:/var/lib/keyledger/ledger.db'), {
      kind: 'sqlite',
      path: '/var/lib/keyledger/ledger.db',
    });
    assert.deepEqual(parseStoreUrl('sqlite:data/ledger.db'), {
      kind: 'sqlite',
      path: resolve(process.cwd(), 'data/ledger.db'),
    });
    assert.deepEqual(parseStoreUrl('sqlite:with:colon.db'), {
      kind: 'sqlite',
      path: resolve(process.cwd(), 'with:colon.db'),
    });
  });

  it('defaults to a sqlite file under .keyledger', () => {
    assert.deepEqual(parseStoreUrl(DEFAULT_STORE_URL), {
      kind: 'sqlite',
      path: resolve(process.cwd(), '.keyledger/ledger.db'),
    });
  });

  it('rejects an empty sqlite path, a memory URL with a path, and a missing scheme', () => {
    assert.throws(() => parseStoreUrl('sqlite:'), invalidUrl('sqlite'));
    assert.throws(() => parseStoreUrl('memory:somewhere'), invalidUrl('memory'));
    assert.throws(() => parseStoreUrl(''), invalidUrl(''));
    assert.throws(() => parseStoreUrl('ledger.db'), invalidUrl(''));
    assert.throws(() => parseStoreUrl(':ledger.db'), invalidUrl(''));
  });

  it('rejects an unknown scheme, naming it', () => {
    assert.throws(() => openEventStore('postgres://localhost/ledger'), invalidUrl('postgres'));
    assert.throws(() => openEventStore('mongodb:ledger'), invalidUrl('mongodb'));
  });

  it('opens the adapter the URL names', async () => {
    const memory = openEventStore('memory:');
    assert.ok(memory instanceof MemoryEventStore);
    await memory.close();

    const dir = await mkdtemp(join(tmpdir(), 'keyledger-url-'));
    try {
      const path = join(dir, 'nested', 'ledger.db');
      const sqlite = openEventStore(`sqlite:${path}`);
      assert.ok(sqlite instanceof SqliteEventStore);
      await sqlite.close();
      assert.ok((await stat(path)).isFile());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
