import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCustodian } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { EventStore, RecordedEvent } from '../../src/store/eventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * API tokens through the ledger: the token stream is the token store, ledger.tokens checks a
 * presented token against the hash recorded, and every process on the store sees a create or a
 * revoke once it has applied the event. The token's secret is never written anywhere.
 */

const TENANT = parseCustodian(Buffer.from('tenant-1').toString('base64'));
const GRANTS = [
  { role: 'encrypt', custodians: TENANT },
  { role: 'audit', custodians: '*' },
] as const;
const DAY = 86_400_000;

/** A ledger on `store`, initialised (writes need a system key) unless told otherwise. */
async function open(store: EventStore = new MemoryEventStore(), now?: () => Date, initialise = true) {
  const ledger = await Ledger.open({
    store,
    provider: new ScriptedProvider(),
    actor: 'admin-1',
    checkpointEvery: 0,
    now,
  });
  if (initialise && !ledger.isInitialised) await ledger.initialise();
  return ledger;
}

async function everything(store: EventStore): Promise<RecordedEvent[]> {
  const all: RecordedEvent[] = [];
  for await (const event of store.readAll()) all.push(event);
  return all;
}

/** Rejects a promise that should fail with `code`; also checks nothing was written. */
async function refused(store: EventStore, write: () => Promise<unknown>, code: string): Promise<void> {
  const head = await store.headPosition();
  await assert.rejects(write, { code });
  assert.equal(await store.headPosition(), head, 'nothing may be written');
}

describe('ledger.tokens', () => {
  it('create → check answers the principal and its grants (method token); list shows it, without the hash', async () => {
    const ledger = await open();
    const created = await ledger.tokens.create({ principal: 'app-1', grants: GRANTS }, { reason: 'ci' });
    assert.match(created.token, /^klt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.equal(created.token.slice(4, 20), created.tokenId);
    assert.deepEqual(ledger.tokens.check(created.token), {
      ok: true,
      tokenId: created.tokenId,
      principal: { name: 'app-1', grants: GRANTS, method: 'token' },
    });
    const listed = ledger.tokens.list();
    assert.deepEqual(listed, [
      {
        tokenId: created.tokenId,
        principal: 'app-1',
        grants: [`encrypt:${TENANT}`, 'audit:*'],
        createdAt: created.createdAt,
        createdBy: 'admin-1',
        expiresAt: null,
        revokedAt: null,
        revokedBy: null,
      },
    ]);
    assert.ok(!JSON.stringify(listed).includes('hash'));
    await ledger.close();
  });

  it('a wrong secret is unknown, like an unknown id; something not shaped as a token is malformed', async () => {
    const ledger = await open();
    const { token, tokenId } = await ledger.tokens.create({ principal: 'app-1', grants: GRANTS });
    const secret = token.slice(21);
    const otherSecret = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
    assert.deepEqual(ledger.tokens.check(`klt_${tokenId}_${otherSecret}`), { ok: false, reason: 'unknown' });
    assert.deepEqual(ledger.tokens.check(`klt_0000000000000000_${secret}`), { ok: false, reason: 'unknown' });
    for (const bad of ['', 'klt_', token.slice(0, -1), `${token}x`, token.toUpperCase(), `Bearer ${token}`]) {
      assert.deepEqual(ledger.tokens.check(bad), { ok: false, reason: 'malformed' }, bad);
    }
    await ledger.close();
  });

  it('revoke: the token is revoked from then on; revoking again or an unknown id is refused, nothing written', async () => {
    const store = new MemoryEventStore();
    const ledger = await open(store);
    const { token, tokenId } = await ledger.tokens.create({ principal: 'app-1', grants: GRANTS });
    const revoked = await ledger.tokens.revoke(tokenId, { actor: 'admin-2' });
    assert.equal(revoked.revokedBy, 'admin-2');
    assert.deepEqual(ledger.tokens.check(token), { ok: false, reason: 'revoked' });
    await refused(store, () => ledger.tokens.revoke(tokenId), 'ERR_TOKEN_REVOKED');
    await refused(store, () => ledger.tokens.revoke('0000000000000000'), 'ERR_TOKEN_NOT_FOUND');
    await refused(store, () => ledger.tokens.revoke('not-an-id'), 'ERR_INVALID_ARGUMENT');
    await ledger.close();
  });

  it('an expired token checks as expired from its expiry on; a duration counts from the ledger’s clock', async () => {
    let now = new Date('2026-12-03T08:00:00.000Z');
    const ledger = await open(new MemoryEventStore(), () => now);
    const { token, expiresAt } = await ledger.tokens.create({
      principal: 'app-1',
      grants: GRANTS,
      expiresInMs: 90 * DAY,
    });
    assert.equal(expiresAt, '2027-03-03T08:00:00.000Z');
    const expiry = new Date(expiresAt ?? '');
    assert.equal(ledger.tokens.check(token, new Date(expiry.getTime() - 1)).ok, true);
    assert.deepEqual(ledger.tokens.check(token, expiry), { ok: false, reason: 'expired' });
    now = new Date('2027-04-01T00:00:00.000Z');
    assert.deepEqual(ledger.tokens.check(token, now), { ok: false, reason: 'expired' });
    await ledger.close();
  });

  it('bad requests are refused with ERR_INVALID_ARGUMENT and write nothing', async () => {
    const store = new MemoryEventStore();
    const ledger = await open(store);
    await refused(
      store,
      () => ledger.tokens.create({ principal: '', grants: GRANTS }),
      'ERR_INVALID_ARGUMENT',
    );
    await refused(
      store,
      () => ledger.tokens.create({ principal: 'a\u0007b', grants: GRANTS }),
      'ERR_INVALID_ARGUMENT',
    );
    await refused(
      store,
      () => ledger.tokens.create({ principal: 'app', grants: [] }),
      'ERR_INVALID_ARGUMENT',
    );
    await refused(
      store,
      () => ledger.tokens.create({ principal: 'app', grants: GRANTS, expiresAt: new Date(Date.now() - 1) }),
      'ERR_INVALID_ARGUMENT',
    );
    await refused(
      store,
      () => ledger.tokens.create({ principal: 'app', grants: GRANTS, expiresInMs: 0 }),
      'ERR_INVALID_ARGUMENT',
    );
    assert.deepEqual(ledger.tokens.list(), []);
    await ledger.close();
  });

  it('a ledger without a system key takes no token write (ERR_LEDGER_NOT_INITIALISED), nothing written', async () => {
    const store = new MemoryEventStore();
    const ledger = await open(store, undefined, false);
    await refused(
      store,
      () => ledger.tokens.create({ principal: 'app', grants: GRANTS }),
      'ERR_LEDGER_NOT_INITIALISED',
    );
    await refused(store, () => ledger.tokens.revoke('0123456789abcdef'), 'ERR_LEDGER_NOT_INITIALISED');
    await ledger.close();
  });

  it('a second ledger on the same store sees a create and a revoke once it has caught up', async () => {
    const store = new MemoryEventStore();
    const writer = await open(store);
    const reader = await open(store);
    const { token, tokenId, position } = await writer.tokens.create({ principal: 'app-1', grants: GRANTS });
    await reader.waitForPosition(position);
    assert.equal(reader.tokens.check(token).ok, true);
    const revoked = await writer.tokens.revoke(tokenId);
    await reader.waitForPosition(revoked.position);
    assert.deepEqual(reader.tokens.check(token), { ok: false, reason: 'revoked' });
    // The reader decides on the stream, not on its view: it cannot revoke twice either.
    await assert.rejects(() => reader.tokens.revoke(tokenId), { code: 'ERR_TOKEN_REVOKED' });
    await writer.close();
    await reader.close();
  });

  it('a ledger opened later knows the tokens, from the events or from the snapshot', async () => {
    const store = new MemoryEventStore();
    const first = await open(store);
    const kept = await first.tokens.create({ principal: 'app-1', grants: GRANTS });
    const gone = await first.tokens.create({
      principal: 'app-2',
      grants: [{ role: 'read', custodians: '*' }],
    });
    await first.tokens.revoke(gone.tokenId);
    await first.close();
    const snapshot = await store.loadSnapshot(first.streamNames.keymetaSnapshot);
    assert.ok(
      snapshot !== null && JSON.stringify(snapshot.state).includes(kept.tokenId),
      'the snapshot holds the tokens',
    );
    const later = await open(store);
    assert.equal(later.tokens.check(kept.token).ok, true);
    assert.deepEqual(later.tokens.check(gone.token), { ok: false, reason: 'revoked' });
    assert.equal(later.tokens.list().length, 2);
    await later.close();
  });

  it('no event and no snapshot holds a token or its secret; the events record who, when and which grants', async () => {
    const store = new MemoryEventStore();
    const ledger = await open(store);
    const created = await ledger.tokens.create({ principal: 'app-1', grants: GRANTS });
    await ledger.tokens.revoke(created.tokenId, { actor: 'admin-2', reason: 'rotated' });
    await ledger.close();
    const secret = created.token.slice(21);
    const events = await everything(store);
    const stored = JSON.stringify(
      [events, await store.loadSnapshot(ledger.streamNames.keymetaSnapshot)],
      (_k, v) => (typeof v === 'bigint' ? v.toString() : v),
    );
    assert.ok(!stored.includes(secret), 'the secret is nowhere in the store');
    assert.ok(!stored.includes(Buffer.from(secret, 'base64url').toString('hex')), 'nor its bytes in hex');
    assert.ok(!stored.includes(Buffer.from(secret, 'base64url').toString('base64')), 'nor in base64');
    const tokenEvents = events.filter((e) => e.streamName === ledger.streamNames.tokens);
    assert.deepEqual(
      tokenEvents.map((e) => [e.type, (e.metadata as { actor: string }).actor]),
      [
        ['ApiTokenCreated', 'admin-1'],
        ['ApiTokenRevoked', 'admin-2'],
      ],
    );
    const createdData = tokenEvents[0]?.data as { grants: string[] } | undefined;
    assert.deepEqual(createdData?.grants, [`encrypt:${TENANT}`, 'audit:*']);
  });
});
