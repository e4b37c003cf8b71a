import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PublicRandomPool } from '../../src/crypto/publicRandomPool.js';

describe('PublicRandomPool', () => {
  it('hands out fresh bytes across refills: no two draws alike', () => {
    const pool = new PublicRandomPool(100);
    const seen = new Set<string>();
    // 39-byte draws (a stream's salt and nonce prefix) over many refills of a 100-byte pool.
    for (let i = 0; i < 2000; i++) seen.add(pool.fill(Buffer.alloc(39)).toString('hex'));
    assert.equal(seen.size, 2000);
  });

  it('fills a target larger than the pool straight from the CSPRNG', () => {
    const pool = new PublicRandomPool(16);
    const a = pool.fill(Buffer.alloc(64));
    const b = pool.fill(Buffer.alloc(64));
    assert.notDeepEqual(a, b);
    assert.notDeepEqual(a, Buffer.alloc(64));
  });
});
