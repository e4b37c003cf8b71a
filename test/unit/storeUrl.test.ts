import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { EsdbEventStore } from '../../src/store/esdbEventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import {
  DEFAULT_STORE_URL,
  openEventStore,
  parseStoreUrl,
  redactStoreUrl,
} from '../../src/store/storeUrl.js';

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

describe('EventStoreDB store URLs', () => {
  it('parses esdb:// and esdb+discover://, keeping the connection string as written', () => {
    assert.deepEqual(parseStoreUrl('esdb://127.0.0.1:2113?tls=false'), {
      kind: 'esdb',
      connectionString: 'esdb://127.0.0.1:2113?tls=false',
      discover: false,
      redacted: 'esdb://127.0.0.1:2113?tls=false',
    });
    const cluster = 'esdb+discover://ops:s3cret@cluster.example.com:2113?tls=true&tlsCAFile=/etc/esdb/ca.crt';
    assert.deepEqual(parseStoreUrl(cluster), {
      kind: 'esdb',
      connectionString: cluster,
      discover: true,
      redacted: 'esdb+discover://***@cluster.example.com:2113?tls=true&tlsCAFile=/etc/esdb/ca.crt',
    });
    const hosts = 'esdb://node1:2113,node2:2113,node3?nodePreference=leader&defaultDeadline=5000&tls=true';
    assert.equal((parseStoreUrl(hosts) as { connectionString: string }).connectionString, hosts);
  });

  it('lower-cases the scheme only (the client requires it) and accepts option names in any case', () => {
    const location = parseStoreUrl(
      'ESDB://Host-A:2113/?TLS=false&keep_alive_interval=10000&NodePreference=Follower',
    );
    assert.deepEqual(location, {
      kind: 'esdb',
      connectionString: 'esdb://Host-A:2113/?TLS=false&keep_alive_interval=10000&NodePreference=Follower',
      discover: false,
      redacted: 'ESDB://Host-A:2113/?TLS=false&keep_alive_interval=10000&NodePreference=Follower',
    });
  });

  it('rejects malformed esdb URLs with ERR_INVALID_STORE_URL, never quoting the password', () => {
    const bad = [
      ['esdb:127.0.0.1:2113', 'esdb'],
      ['esdb://', 'esdb'],
      ['esdb://?tls=false', 'esdb'],
      ['esdb://h:99999', 'esdb'],
      ['esdb://h:0', 'esdb'],
      ['esdb://h:port', 'esdb'],
      ['esdb://h:2113:1', 'esdb'],
      ['esdb://h?tls=yes', 'esdb'],
      ['esdb://h?tls=', 'esdb'],
      ['esdb://h?tls', 'esdb'],
      ['esdb://h?colour=blue', 'esdb'],
      ['esdb://h?defaultDeadline=soon', 'esdb'],
      ['esdb://h?nodePreference=nearest', 'esdb'],
      ['esdb://h?tls=true&tlsVerifyCert=false', 'esdb'],
      ['esdb://user@h', 'esdb'],
      ['esdb+discover://ops:pa55word@?tls=false', 'esdb+discover'],
    ] as const;
    for (const [url, scheme] of bad) {
      assert.throws(
        () => parseStoreUrl(url),
        (error: unknown) => {
          assert.ok(invalidUrl(scheme)(error), `${url}: ${String(error)}`);
          assert.ok(!(error as Error).message.includes('pa55word'));
          return true;
        },
      );
    }
    assert.throws(
      () => openEventStore('esdb://ops:pa55word@h?colour=blue'),
      (error: unknown) => {
        assert.ok(invalidUrl('esdb')(error));
        assert.ok(!(error as Error).message.includes('pa55word'));
        assert.match((error as Error).message, /esdb:\/\/\*\*\*@h\?colour=blue/);
        return true;
      },
    );
  });

  it('redacts credentials for display, and leaves other URLs alone', () => {
    assert.equal(redactStoreUrl('esdb://admin:changeit@localhost:2113'), 'esdb://***@localhost:2113');
    assert.equal(redactStoreUrl('esdb://a%40b:p%3Aq@h1,h2?tls=true'), 'esdb://***@h1,h2?tls=true');
    assert.equal(redactStoreUrl('sqlite:/var/lib/ledger.db'), 'sqlite:/var/lib/ledger.db');
    assert.equal(redactStoreUrl('memory:'), 'memory:');
  });

  it('opens the esdb adapter without contacting the server', async () => {
    const store = openEventStore('esdb://127.0.0.1:1?tls=false');
    assert.ok(store instanceof EsdbEventStore);
    assert.equal(store.url, 'esdb://127.0.0.1:1?tls=false');
    await store.close();
  });
});
