import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  custodianBytes,
  custodianFromBytes,
  GLOBAL_CUSTODIAN,
  GLOBAL_NAMESPACE,
  parseCustodian,
  parseMetadataHash,
  parseNamespace,
  parseScope,
} from '../../src/domain/identities.js';
import { metadataHashOf } from '../../src/domain/keyDigests.js';
import { throwsCode } from '../helpers/domainFixtures.js';

const b64 = (bytes: number, fill = 0x41) => Buffer.alloc(bytes, fill).toString('base64');

describe('parseCustodian', () => {
  it('given `*`, then it is the global custodian Kg==', () => {
    assert.equal(parseCustodian('*'), 'Kg==');
    assert.equal(GLOBAL_CUSTODIAN, 'Kg==');
    assert.equal(parseCustodian('Kg=='), 'Kg==');
  });

  for (const bad of ['not base64!', 'abc', 'Kg=', 'Kg', 'K g==', 'Kg==\n', '====', 'a-b_']) {
    it(`given invalid base64 ${JSON.stringify(bad)}, then ERR_INVALID_CUSTODIAN`, () => {
      throwsCode(() => parseCustodian(bad), 'ERR_INVALID_CUSTODIAN');
    });
  }

  it('given an empty string, then ERR_INVALID_CUSTODIAN', () => {
    throwsCode(() => parseCustodian(''), 'ERR_INVALID_CUSTODIAN');
    throwsCode(() => custodianFromBytes(new Uint8Array(0)), 'ERR_INVALID_CUSTODIAN');
  });

  it('given 256 bytes, then ERR_INVALID_CUSTODIAN', () => {
    throwsCode(() => parseCustodian(b64(256)), 'ERR_INVALID_CUSTODIAN', { bytes: 256 });
    throwsCode(() => custodianFromBytes(new Uint8Array(256)), 'ERR_INVALID_CUSTODIAN');
  });

  it('given 255 bytes (and 1 byte), then it is accepted and round-trips', () => {
    for (const size of [1, 255]) {
      const custodian = parseCustodian(b64(size));
      assert.equal(custodian, b64(size));
      assert.equal(custodianBytes(custodian).length, size);
    }
  });
});

describe('parseNamespace', () => {
  it('given an empty string, then ERR_INVALID_NAMESPACE', () => {
    throwsCode(() => parseNamespace(''), 'ERR_INVALID_NAMESPACE');
  });

  it('given 256 UTF-8 bytes (128 × é), then ERR_INVALID_NAMESPACE', () => {
    const ns = 'é'.repeat(128);
    assert.equal(ns.length, 128);
    throwsCode(() => parseNamespace(ns), 'ERR_INVALID_NAMESPACE', { bytes: 256 });
    throwsCode(() => parseNamespace('a'.repeat(256)), 'ERR_INVALID_NAMESPACE');
  });

  it('given 255 UTF-8 bytes, then it is accepted', () => {
    for (const ns of ['a'.repeat(255), `${'é'.repeat(127)}a`, '*', 'table1/cf1', 'a:b']) {
      assert.equal(parseNamespace(ns), ns);
    }
  });

  it('given a lone surrogate, then ERR_INVALID_NAMESPACE', () => {
    throwsCode(() => parseNamespace('bad\uD800'), 'ERR_INVALID_NAMESPACE');
  });
});

describe('parseScope', () => {
  it('given only a custodian, then the namespace is the global `*`', () => {
    assert.deepEqual(parseScope('Kg=='), { custodian: 'Kg==', namespace: '*' });
    assert.equal(parseScope('Kg==').namespace, GLOBAL_NAMESPACE);
  });

  it('given a namespace with colons, then everything after the first colon is the namespace', () => {
    assert.deepEqual(parseScope('Kg==:a:b'), { custodian: 'Kg==', namespace: 'a:b' });
    assert.deepEqual(parseScope('*:t1'), { custodian: 'Kg==', namespace: 't1' });
  });

  it('given an empty custodian or namespace, then the matching error', () => {
    throwsCode(() => parseScope(':ns'), 'ERR_INVALID_CUSTODIAN');
    throwsCode(() => parseScope('Kg==:'), 'ERR_INVALID_NAMESPACE');
    throwsCode(() => parseScope(''), 'ERR_INVALID_CUSTODIAN');
  });
});

describe('parseMetadataHash', () => {
  it('given a metadata hash as metadataHashOf makes it, then it is accepted', () => {
    const hash = metadataHashOf('{"KeyAlias":"k1"}');
    assert.equal(hash.length, 43);
    assert.equal(parseMetadataHash(hash), hash);
  });

  for (const bad of [
    '',
    'abc',
    `${'A'.repeat(42)}=`,
    `${'A'.repeat(42)}+`,
    'A'.repeat(44),
    `${'A'.repeat(42)}/`,
  ]) {
    it(`given ${JSON.stringify(bad)}, then ERR_INVALID_METADATA`, () => {
      throwsCode(() => parseMetadataHash(bad), 'ERR_INVALID_METADATA');
    });
  }
});
