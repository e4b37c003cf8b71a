import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { decryptLegacyAesGcm } from '../../src/crypto/legacyAesGcm.js';
import {
  decideLegacyReencryption,
  emptyLegacyReencryptionState,
  evolveLegacyReencryption,
  type LegacyReencryptionCommand,
  type LegacyReencryptionState,
} from '../../src/domain/decideLegacyReencryption.js';
import { isKeyledgerError } from '../../src/domain/errors.js';
import { eventDataSchemas, type LegacyReencryptionEvent } from '../../src/domain/events.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import { hashFor, keyIdFor, SCOPE } from '../helpers/domainFixtures.js';

function seal(key: Buffer, plaintext: string, aad?: string): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  if (aad !== undefined) cipher.setAAD(Buffer.from(aad));
  return Buffer.concat([nonce, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
}

describe('the legacy AES-256-GCM codec: nonce(12) ‖ ciphertext ‖ tag(16)', () => {
  const raw = randomBytes(32);
  const key = SecretBytes.copyOf(raw);

  it('opens what node:crypto sealed, with and without AAD, the empty plaintext included', () => {
    assert.equal(decryptLegacyAesGcm(key, seal(raw, 'hello')).toString(), 'hello');
    assert.equal(decryptLegacyAesGcm(key, seal(raw, 'hi', 'row-7'), Buffer.from('row-7')).toString(), 'hi');
    assert.equal(decryptLegacyAesGcm(key, seal(raw, '')).length, 0);
  });

  it('every failure is ERR_DECRYPTION_FAILED with no details: wrong key, AAD, a bit, too short', () => {
    const sealed = seal(raw, 'hello', 'a');
    const flipped = Buffer.from(sealed);
    flipped[12] = (flipped[12] as number) ^ 1;
    const failing: [SecretBytes, Buffer, string | undefined][] = [
      [SecretBytes.copyOf(randomBytes(32)), sealed, 'a'],
      [key, sealed, 'b'],
      [key, sealed, undefined],
      [key, flipped, 'a'],
      [key, sealed.subarray(0, 27), 'a'],
      [SecretBytes.copyOf(randomBytes(16)), sealed, 'a'],
    ];
    for (const [k, bytes, aad] of failing) {
      assert.throws(
        () => decryptLegacyAesGcm(k, bytes, aad === undefined ? undefined : Buffer.from(aad)),
        (e: unknown) => isKeyledgerError(e, 'ERR_DECRYPTION_FAILED') && Object.keys(e.details).length === 0,
      );
    }
  });
});

const AT = '2026-12-03T10:00:00.000Z';

function given(events: LegacyReencryptionEvent[]): LegacyReencryptionState {
  return events.reduce(
    (state, event, i) => evolveLegacyReencryption(state, event, AT, BigInt(i)),
    emptyLegacyReencryptionState(),
  );
}

const start: LegacyReencryptionCommand = {
  type: 'StartLegacyReencryption',
  campaign: 'orders-2019',
  ...SCOPE,
  keyId: keyIdFor(SCOPE, 'old'),
  metadataHash: hashFor(SCOPE, 'old'),
  total: 10,
};

function progress(batch: number, lastRecordId: string, failedIds: string[] = []): LegacyReencryptionCommand {
  return {
    type: 'RecordLegacyProgress',
    campaign: 'orders-2019',
    batch,
    lastRecordId,
    reencrypted: 2,
    skipped: 0,
    failedIds,
  };
}

describe('decideLegacyReencryption (given / when / then)', () => {
  it('started, then batches: running totals, failures listed by id; every event fits its schema', () => {
    const started = decideLegacyReencryption(emptyLegacyReencryptionState(), start);
    const first = decideLegacyReencryption(given(started), progress(1, 'r3', ['r2']));
    const second = decideLegacyReencryption(given([...started, ...first]), progress(2, 'r6', ['r5']));
    const state = given([...started, ...first, ...second]);
    const c = state.campaigns.get('orders-2019');
    assert.deepEqual(
      [c?.batches, c?.lastRecordId, c?.reencrypted, c?.failed, c?.failedIds],
      [2, 'r6', 4, 2, ['r2', 'r5']],
    );
    const done = decideLegacyReencryption(state, {
      type: 'CompleteLegacyReencryption',
      campaign: 'orders-2019',
    });
    assert.deepEqual(done[0]?.data, { campaign: 'orders-2019', reencrypted: 4, failed: 2, skipped: 0 });
    for (const e of [...started, ...first, ...second, ...done]) {
      assert.ok(eventDataSchemas[e.type].safeParse(e.data).success, `${e.type} fits its schema`);
    }
    assert.equal(
      given([...started, ...first, ...second, ...done]).campaigns.get('orders-2019')?.completed,
      true,
    );
  });

  it('the same batch recorded again: nothing; a batch out of order: ERR_INVALID_TRANSITION', () => {
    const events = [...decideLegacyReencryption(emptyLegacyReencryptionState(), start)];
    events.push(...decideLegacyReencryption(given(events), progress(1, 'r2')));
    assert.deepEqual(decideLegacyReencryption(given(events), progress(1, 'r2')), []);
    assert.throws(
      () => decideLegacyReencryption(given(events), progress(3, 'r9')),
      (e: unknown) => isKeyledgerError(e, 'ERR_INVALID_TRANSITION'),
    );
  });

  it('refusals: a name used twice, a bad name, an unknown or completed campaign, an empty batch', () => {
    const started = decideLegacyReencryption(emptyLegacyReencryptionState(), start);
    const code = (command: LegacyReencryptionCommand, state: LegacyReencryptionState, expected: string) =>
      assert.throws(
        () => decideLegacyReencryption(state, command),
        (e: unknown) => isKeyledgerError(e) && e.code === expected,
      );
    code(start, given(started), 'ERR_INVALID_ARGUMENT');
    code({ ...start, campaign: '../x' }, emptyLegacyReencryptionState(), 'ERR_INVALID_ARGUMENT');
    code(progress(1, 'r1'), emptyLegacyReencryptionState(), 'ERR_REENCRYPTION_NOT_FOUND');
    code(
      { ...progress(1, 'r1'), reencrypted: 0 } as LegacyReencryptionCommand,
      given(started),
      'ERR_INVALID_ARGUMENT',
    );
    const completed = [
      ...started,
      ...decideLegacyReencryption(given(started), {
        type: 'CompleteLegacyReencryption',
        campaign: 'orders-2019',
      }),
    ];
    code(progress(1, 'r1'), given(completed), 'ERR_REENCRYPTION_COMPLETED');
    code(
      { type: 'CompleteLegacyReencryption', campaign: 'orders-2019' },
      given(completed),
      'ERR_REENCRYPTION_COMPLETED',
    );
  });
});
